"""The driver interface every graph store implements.

A store runs the named queries of ``cypher/`` (see :mod:`graphmem.store.queries`)
and raw Cypher typed by a user; everything above it (ingestion, retrieval, the
CLI) speaks only this protocol, so the embedded FalkorDB and Neo4j are
interchangeable.
"""

from __future__ import annotations

from typing import Any, Iterable, Protocol, Sequence, runtime_checkable

Row = dict[str, Any]


@runtime_checkable
class GraphStore(Protocol):
    """A Cypher graph database holding one or more tenant groups.

    Parameter values are what Cypher takes (strings, numbers, lists, maps,
    None), and also 1-D numpy arrays for vectors: each store sends those in its
    own fastest form, and they reach the query as a list of floats.
    """

    #: 'falkordb' or 'neo4j': picks the dialect folder of ``cypher/``.
    dialect: str

    def run(self, query: str, /, **params: Any) -> list[Row]:
        """Run the named query with ``params``; rows as dicts keyed by column."""
        ...

    def run_rows(self, query: str, rows: Sequence[Row], /, batch_size: int = 500, **params: Any) -> None:
        """Run the named UNWIND query over ``rows`` in batches (passed as ``$rows``)."""
        ...

    def cypher(self, text: str, params: dict[str, Any] | None = None, *, write: bool = False,
               timeout_ms: int = 30_000, max_rows: int | None = None) -> tuple[list[str], list[list[Any]]]:
        """Run user Cypher: read-only unless ``write``, stopped after ``timeout_ms``;
        returns (columns, rows), at most ``max_rows`` rows when given."""
        ...

    def ensure_schema(self, dim: int) -> None:
        """Create indexes (range, vector of ``dim`` floats, full-text) if missing."""
        ...

    def close(self) -> None:
        """Release connections (and stop an embedded server this process started)."""
        ...


def batched(rows: Sequence[Row], size: int) -> Iterable[Sequence[Row]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]
