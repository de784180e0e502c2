"""The driver interface every graph store implements.

A store runs the named queries of ``cypher/`` (see :mod:`graphmem.store.queries`)
and raw Cypher typed by a user; everything above it (ingestion, retrieval, the
CLI) speaks only this protocol, so the embedded FalkorDB and Neo4j are
interchangeable.

Tenants are isolated by the store, not by inspecting query text: every named
query and every user query names one ``group_id``, and the store runs it where
only that group's data lives. How, per store (its :attr:`GraphStore.isolation`):

- ``graph``: the embedded FalkorDB keeps each group in its own graph;
- ``database``: Neo4j with ``database_per_group`` keeps each group in its own
  database (an edition with several databases);
- ``property``: Neo4j with one database: groups share it and are told apart by
  their ``group_id`` property. Graphmem's own queries all filter on it, but user
  Cypher could reach past it, so the API refuses user Cypher to tenant keys there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from graphmem.errors import ConfigError

Row = dict[str, Any]
Isolation = Literal["graph", "database", "property"]

#: what a group name may hold: it becomes part of a graph or database name and of a
#: cache folder's path, so it starts with a letter, digit or '_' (never '.' or '..',
#: never a '-' a command line would read as an option)
GROUP_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}")


def check_group_id(group_id: str) -> str:
    """``group_id`` if it is a valid group name, else :class:`ConfigError`."""
    if not isinstance(group_id, str) or not GROUP_ID.fullmatch(group_id):
        raise ConfigError(
            f"invalid group {group_id!r}: use 1-64 letters, digits, '_', '.', ':' or '-', "
            "starting with a letter, digit or '_'"
        )
    return group_id


@runtime_checkable
class GraphStore(Protocol):
    """A Cypher graph database holding one or more tenant groups.

    Parameter values are what Cypher takes (strings, numbers, lists, maps,
    None), and also 1-D numpy arrays for vectors: each store sends those in its
    own fastest form, and they reach the query as a list of floats.
    """

    #: 'falkordb' or 'neo4j': picks the dialect folder of ``cypher/``.
    dialect: str
    #: how groups are kept apart (see the module docstring)
    isolation: Isolation

    def run(self, query: str, /, **params: Any) -> list[Row]:
        """Run the named query with ``params`` (``group_id`` among them: the group it
        runs in); rows as dicts keyed by column."""
        ...

    def run_rows(self, query: str, rows: Sequence[Row], /, batch_size: int = 500, **params: Any) -> None:
        """Run the named UNWIND query over ``rows`` in batches (passed as ``$rows``),
        in the group of ``params['group_id']``."""
        ...

    def cypher(
        self,
        text: str,
        params: dict[str, Any] | None = None,
        *,
        group_id: str,
        write: bool = False,
        timeout_ms: int = 30_000,
        max_rows: int | None = None,
    ) -> tuple[list[str], list[list[Any]]]:
        """Run user Cypher in ``group_id``: checked against the budgets of
        :mod:`graphmem.store.user_cypher` first, read-only unless ``write``, stopped
        after ``timeout_ms``; returns (columns, rows), at most ``max_rows`` rows (the
        limit is pushed into the query the store runs)."""
        ...

    def groups(self) -> list[str]:
        """The groups the store holds."""
        ...

    def drop_group(self, group_id: str) -> bool:
        """Delete everything of ``group_id``; True if it held anything."""
        ...

    def ensure_schema(self, dim: int, group_id: str | None = None) -> None:
        """Create indexes (range, vector of ``dim`` floats, full-text) if missing, for
        ``group_id`` (every group when None, and groups created later)."""
        ...

    def close(self) -> None:
        """Release connections (and stop an embedded server this process started)."""
        ...


def batched(rows: Sequence[Row], size: int) -> Iterable[Sequence[Row]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]
