"""The production store: Neo4j 5 over Bolt with the official ``neo4j`` driver.

Every statement runs in a *managed* transaction (``execute_read`` /
``execute_write``), so the driver retries transient failures (deadlocks,
leader changes, dropped connections) with backoff; the statements are the
named queries of ``cypher/`` (shared ones plus ``cypher/neo4j/``), so the
embedded store and Neo4j run the same text. Batched writes send ``$rows`` to
an UNWIND query, one transaction per batch: a batch is all-or-nothing and,
because every write MERGEs on a deterministic uuid, replaying one is harmless.

Connection: ``neo4j://user:pass@host:7687/dbname`` (also ``bolt://``,
``neo4j+s://`` ...). Credentials missing from the URI come from
``NEO4J_USERNAME`` / ``NEO4J_PASSWORD``; none at all means no auth.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import numpy as np

from graphmem.errors import ConfigError, StoreError
from graphmem.store import user_cypher
from graphmem.store.base import Isolation, Row, batched, check_group_id
from graphmem.store.queries import load_queries

SCHEMES = {"neo4j", "neo4j+s", "neo4j+ssc", "bolt", "bolt+s", "bolt+ssc"}
#: Clauses that make a statement a write; a named query without them runs in
#: a read transaction (which a Neo4j cluster can route to a follower).
_WRITE_CLAUSE = re.compile(r"\b(CREATE|MERGE|SET|DELETE|REMOVE|DROP)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Neo4jTarget:
    """A parsed store URI: what the driver needs, and a printable form without the password."""

    uri: str
    user: str | None
    password: str | None
    database: str | None

    @property
    def display(self) -> str:
        parts = urlsplit(self.uri)
        who = f"{self.user}@" if self.user else ""
        return urlunsplit((parts.scheme, who + parts.netloc, f"/{self.database}" if self.database else "", "", ""))

    @classmethod
    def parse(cls, uri: str) -> Neo4jTarget:
        """Split ``scheme://user:pass@host:port/db`` into driver URI, auth and database."""
        parts = urlsplit(uri.strip())
        if parts.scheme.lower() not in SCHEMES:
            raise ConfigError(f"not a Neo4j URI: {uri!r} (use neo4j://user:pass@host:7687/dbname)")
        if not parts.hostname:
            raise ConfigError(f"Neo4j URI without a host: {uri!r}")
        try:
            port = parts.port
        except ValueError as exc:
            raise ConfigError(f"bad port in Neo4j URI {uri!r}: {exc}") from None
        netloc = parts.hostname + (f":{port}" if port else "")
        user = unquote(parts.username) if parts.username else os.environ.get("NEO4J_USERNAME")
        password = unquote(parts.password) if parts.password else os.environ.get("NEO4J_PASSWORD")
        database = unquote(parts.path.strip("/")) or None
        if database and "/" in database:
            raise ConfigError(f"Neo4j URI path must be one database name, got {database!r}")
        return cls(urlunsplit((parts.scheme.lower(), netloc, "", parts.query, "")), user, password, database)


def _wire(value: Any) -> Any:
    """Parameters for the driver: numpy vectors become float lists (Bolt has no arrays)."""
    if isinstance(value, np.ndarray):
        return value.astype(float).tolist()
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_wire(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    """Driver values -> plain Python: nodes and relationships become their
    properties (without the bulky ``embedding``), paths a dict of both,
    temporal and spatial values their ISO/WKT-like string."""
    from neo4j.graph import Node, Path, Relationship

    if isinstance(value, (Node, Relationship)):
        return {k: _plain(v) for k, v in value.items() if k != "embedding"}
    if isinstance(value, Path):
        return {"nodes": [_plain(n) for n in value.nodes], "relationships": [_plain(r) for r in value.relationships]}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "iso_format"):  # neo4j.time.Date/DateTime/Time/Duration
        return value.iso_format()
    if value is None or isinstance(value, (str, int, float, bool, bytes)):
        return value
    return str(value)  # spatial points and anything newer


class Neo4jStore:
    """:class:`~graphmem.store.base.GraphStore` on Neo4j 5 (or any Bolt server).

    ``dialect`` picks the query folder; it is 'neo4j' except in the contract
    tests, which drive FalkorDB's Bolt endpoint through this class with the
    'falkordb' queries to exercise the driver path without a Neo4j.
    """

    def __init__(
        self,
        uri: str,
        auth: tuple[str, str] | None = None,
        database: str | None = None,
        *,
        dialect: str = "neo4j",
        pool_size: int = 50,
        connect_timeout_s: float = 15.0,
        retry_time_s: float = 30.0,
        display: str | None = None,
        database_per_group: bool = False,
    ) -> None:
        """``database_per_group``: keep each group in its own database (named from
        ``database`` or 'graphmem', the group and a hash; see :meth:`database_of`),
        created on first use. It needs an edition with several databases (Enterprise,
        Aura Business Critical); there user Cypher of one tenant cannot reach another.
        Without it every group shares ``database`` (:attr:`isolation` 'property')."""
        try:
            import neo4j
        except ImportError as exc:  # pragma: no cover - the neo4j extra is missing
            raise ConfigError("the Neo4j store needs the driver: pip install 'graphmem[neo4j]'") from exc
        self._neo4j = neo4j
        self.dialect = dialect
        self.database = database
        self.database_per_group = database_per_group
        self.isolation: Isolation = "database" if database_per_group else "property"
        self._databases: set[str] = set()  # per-group databases known to exist
        self.display = display or uri
        self._queries = load_queries(dialect)
        self._is_write = {name: bool(_WRITE_CLAUSE.search(text)) for name, text in self._queries.items()}
        try:
            self._driver = neo4j.GraphDatabase.driver(
                uri,
                auth=auth,
                max_connection_pool_size=pool_size,
                connection_timeout=connect_timeout_s,
                max_transaction_retry_time=retry_time_s,
                user_agent="graphmem",
            )
            self._driver.verify_connectivity()
        except neo4j.exceptions.AuthError as exc:
            self._close_quietly()
            raise StoreError(f"Neo4j at {self.display} refused the credentials: {exc.message}") from exc
        except (neo4j.exceptions.DriverError, neo4j.exceptions.Neo4jError, OSError, ValueError) as exc:
            self._close_quietly()
            raise StoreError(f"cannot connect to Neo4j at {self.display}: {exc}") from exc

    @classmethod
    def from_uri(cls, uri: str, **kwargs: Any) -> Neo4jStore:
        """Open ``neo4j://user:pass@host:7687/dbname`` (see :class:`Neo4jTarget`)."""
        target = Neo4jTarget.parse(uri)
        auth = (target.user, target.password or "") if target.user else None
        return cls(target.uri, auth, target.database, display=target.display, **kwargs)

    # -- plumbing ------------------------------------------------------------------
    def database_of(self, group_id: str | None) -> str | None:
        """The database holding ``group_id``: ``database`` unless groups have their own."""
        if not self.database_per_group or group_id is None:
            return self.database
        check_group_id(group_id)
        slug = re.sub(r"[^a-z0-9.-]+", "-", group_id.lower()).strip(".-")[:30] or "g"
        digest = hashlib.sha1(group_id.encode()).hexdigest()[:8]
        return f"{self.database or 'graphmem'}-{slug}-{digest}"

    def _session(self, read: bool, database: str | None = None) -> Any:
        mode = self._neo4j.READ_ACCESS if read else self._neo4j.WRITE_ACCESS
        # one bookmark manager for all sessions: in a cluster a read routed to a
        # follower still sees the writes this store made before it (causal consistency)
        return self._driver.session(
            database=database or self.database,
            default_access_mode=mode,
            bookmark_manager=self._driver.execute_query_bookmark_manager,
        )

    def _database(self, group_id: Any, *, create: bool) -> str | None:
        """The database a query of ``group_id`` runs in, created first when ``create``."""
        if not self.database_per_group:
            return self.database
        if not isinstance(group_id, str):
            raise StoreError("a query was run without a group_id: every query is confined to one group")
        name = self.database_of(group_id)
        if create and name is not None and name not in self._databases:
            self._execute(self._queries["database_create"], {"name": name}, read=False, database="system")
            self._databases.add(name)
        return name

    def _execute(
        self,
        text: str,
        params: dict[str, Any],
        *,
        read: bool,
        timeout_ms: int | None = None,
        max_rows: int | None = None,
        database: str | None = None,
    ) -> tuple[list[str], list[list[Any]]]:
        """Run one statement in a managed transaction (retried on transient errors)."""
        neo4j = self._neo4j

        def work(tx: Any) -> tuple[list[str], list[list[Any]]]:
            result = tx.run(text, _wire(params))
            columns = list(result.keys())
            records = result.fetch(max_rows) if max_rows is not None else list(result)
            # consume so that errors raised late (at commit) surface here, inside the retry
            result.consume()
            return columns, [[_plain(v) for v in record.values()] for record in records]

        if timeout_ms is not None:
            work = neo4j.unit_of_work(timeout=timeout_ms / 1000.0)(work)
        try:
            with self._session(read, database) as session:
                return session.execute_read(work) if read else session.execute_write(work)
        except neo4j.exceptions.ClientError as exc:
            code = exc.code or ""
            if "AccessMode" in code or "ForbiddenDueToTransactionType" in code:
                raise StoreError("this query writes; pass --write to allow it") from exc
            if "TransactionTimedOut" in code or "Timeout" in code:
                raise StoreError(f"the query ran past its timeout of {(timeout_ms or 0) / 1000:g} s") from exc
            raise StoreError(f"Neo4j rejected the query: {exc.message or exc}") from exc
        except (neo4j.exceptions.Neo4jError, neo4j.exceptions.DriverError) as exc:
            raise StoreError(f"Neo4j at {self.display} failed: {getattr(exc, 'message', None) or exc}") from exc

    # -- GraphStore ----------------------------------------------------------------
    def run(self, query: str, /, **params: Any) -> list[Row]:
        read = not self._is_write[query]
        database = self._database(params.get("group_id"), create=not read) if query != "groups_in_graph" else None
        try:
            columns, rows = self._execute(self._queries[query], params, read=read, database=database)
        except StoreError as exc:
            if read and self.database_per_group and "DatabaseNotFound" in str(exc):
                return []  # a group never written holds nothing
            raise
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def run_rows(self, query: str, rows: Sequence[Row], /, batch_size: int = 500, **params: Any) -> None:
        text = self._queries[query]
        database = self._database(params.get("group_id"), create=True)
        for chunk in batched(rows, batch_size):
            self._execute(text, {**params, "rows": list(chunk)}, read=False, database=database)

    def cypher(
        self,
        text: str,
        params: dict[str, Any] | None = None,
        *,
        group_id: str,
        write: bool = False,
        timeout_ms: int = 30_000,
        max_rows: int | None = None,
        budget: user_cypher.Budget = user_cypher.Budget(),
    ) -> tuple[list[str], list[list[Any]]]:
        """User Cypher in a read transaction (Neo4j refuses writes there) unless ``write``,
        in ``group_id``'s database; checked against ``budget`` and limited to ``max_rows``
        rows in the query itself first. With one shared database (:attr:`isolation`
        'property') nothing confines it to the group: the API offers it to admins only."""
        text = user_cypher.prepare(text, params, write=write, max_rows=max_rows, budget=budget)
        database = self._database(check_group_id(group_id), create=write)
        return self._execute(
            text, params or {}, read=not write, timeout_ms=timeout_ms, max_rows=max_rows, database=database
        )

    def groups(self) -> list[str]:
        if not self.database_per_group:
            return sorted(r["group_id"] for r in self.run("groups_in_graph") if isinstance(r["group_id"], str))
        _, names = self._execute(
            self._queries["databases_list"], {"prefix": f"{self.database or 'graphmem'}-"}, read=True, database="system"
        )
        found: set[str] = set()
        for (name,) in names:
            _, rows = self._execute(self._queries["groups_in_graph"], {}, read=True, database=name)
            found.update(row[0] for row in rows if isinstance(row[0], str) and self.database_of(row[0]) == name)
        return sorted(found)

    def drop_group(self, group_id: str) -> bool:
        if not self.database_per_group:
            return bool(self.run("group_delete", group_id=group_id)[0]["deleted"])
        name = self.database_of(group_id)
        existed = group_id in self.groups()
        self._execute(self._queries["database_drop"], {"name": name}, read=False, database="system")
        self._databases.discard(name)
        return existed

    def ensure_schema(self, dim: int, group_id: str | None = None) -> None:
        """Create constraints and indexes (IF NOT EXISTS), then wait until they are
        online: a vector index still populating cannot be queried. With a database per
        group: in ``group_id``'s (every group's when None)."""
        targets = (
            (
                [self._database(group_id, create=True)]
                if group_id is not None
                else [self._database(g, create=True) for g in self.groups()]
            )
            if self.database_per_group
            else [self.database]
        )
        for database in targets:
            for name, text in self._queries.items():
                if name.startswith("schema_"):
                    self._execute(text.replace("{dim}", str(int(dim))), {}, read=False, database=database)
            if "indexes_await" in self._queries:
                self._execute(self._queries["indexes_await"], {}, read=True, database=database)

    def close(self) -> None:
        self._close_quietly()

    def _close_quietly(self) -> None:
        driver = getattr(self, "_driver", None)
        if driver is not None:
            with contextlib.suppress(Exception):
                driver.close()
