"""The embedded default store: FalkorDB over a unix socket in the data directory."""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import re
import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from graphmem.errors import StoreError, StoreStoppedDuringQuery, StoreUnavailable
from graphmem.store import user_cypher
from graphmem.store.base import Isolation, Row, batched, check_group_id
from graphmem.store.falkordb_server import PROBE_TIMEOUT_S, SEEN, EmbeddedServer, probe, within
from graphmem.store.queries import load_queries

_EXISTS = ("already indexed", "already exists", "already created")
T = TypeVar("T")

#: Named queries whose row vectors are stored packed: base64 of little-endian float32,
#: one string property instead of a list of floats. For vectors nothing searches in
#: the store (entities and facts: resolution and retrieval hold them in memory): the
#: server stores one string instead of parsing 384 numbers, much cheaper on both sides
#: (benchmarks/README.md, vector writes).
#: :meth:`FalkorDBStore.run` hands them back as float32 arrays.
_PACKED_VECTORS = frozenset({"entity_embeddings_set", "fact_embeddings_set", "entities_upsert", "facts_upsert"})


def pack_vector(vector: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode("ascii")


def unpack_vector(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32)


def _unpacked(row: dict[str, Any]) -> dict[str, Any]:
    """A result row with packed vectors (an ``embedding`` column, or the ``embedding``
    of a property map) turned back into arrays."""
    for key, value in row.items():
        if isinstance(value, str):
            if key == "embedding":
                row[key] = unpack_vector(value)
        elif isinstance(value, dict) and isinstance(value.get("embedding"), str):
            row[key] = {**value, "embedding": unpack_vector(value["embedding"])}
    return row


def _plain(value: Any) -> Any:
    """FalkorDB returns nodes/edges/OrderedDicts; hand plain Python values upward."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    props = getattr(value, "properties", None)
    if isinstance(props, dict):
        return {k: _plain(v) for k, v in props.items() if k != "embedding"}
    return value


def _vector_literal(vector: np.ndarray) -> str:
    """A float vector as a Cypher list literal, written fast.

    FalkorDB takes parameters as Cypher text; ``repr`` of 384 floats in Python costs
    more than the server spends storing the vector. Here the values become integers
    scaled by a power of ten chosen so the largest has ten digits (``123456789e-10``),
    which numpy and json print in C, and which keeps more precision than the float32
    the store keeps.
    """
    values = np.asarray(vector, dtype=np.float64).ravel()
    largest = float(np.max(np.abs(values))) if values.size else 0.0
    if largest == 0.0 or not math.isfinite(largest):
        return json.dumps(values.tolist())  # zeros, or NaN/inf that the server will refuse
    exponent = 9 - math.floor(math.log10(largest))
    scaled = np.rint(values * 10.0**exponent).astype(np.int64)
    suffix = f"e{-exponent}"
    return json.dumps(scaled.tolist(), separators=(",", ":")).replace(",", suffix + ",").replace("]", suffix + "]")


def _literal(value: Any) -> str:
    """One parameter value as Cypher text, as the falkordb client writes it, except
    that numpy vectors take the fast path above."""
    from falkordb.helpers import stringify_param_value

    if isinstance(value, np.ndarray):
        return _vector_literal(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(map(_literal, value)) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_name(key)}:{_literal(v)}" for key, v in value.items()) + "}"
    return stringify_param_value(value)


def _name(key: Any) -> str:
    """A parameter or map key, backticked; FalkorDB cannot escape a backtick inside one."""
    text = key.decode() if isinstance(key, bytes) else str(key)
    if not text or "`" in text:
        raise StoreError(f"parameter name {text!r} cannot be used: it is empty or holds a backtick")
    return f"`{text}`"


_IDENTIFIER = re.compile(r"\w+")


def _json_literal(value: Any) -> str | None:
    """``value`` as Cypher text by way of ``json.dumps`` (in C: a batch of rows costs a
    fraction of :func:`_literal`), or None where JSON and FalkorDB's Cypher differ.

    Taken for scalars, lists, and a map or a list of maps whose values hold no further
    maps (what ingestion sends). Outside strings such JSON is Cypher but for the map
    keys, which are backticked here: a quote that opens a key follows ``{`` or ``,``
    directly, which inside a JSON string it never does (it is escaped there).
    FalkorDB reads the escapes json writes (\\n, \\", \\\\ ...) except ``\\uXXXX``, so
    text with one goes the slow way; so do numpy values (vectors), NaN and infinities.
    """
    # maps counts the maps that open with '{"' (an empty one does not), for the check below
    if isinstance(value, dict):
        maps, keys = int(bool(value)), set(value)
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        if not all(isinstance(row, dict) for row in value):
            return None
        maps, keys = sum(1 for row in value if row), set().union(*value)
    else:
        maps, keys = 0, set()
    if not all(isinstance(key, str) and _IDENTIFIER.fullmatch(key) for key in keys):
        return None
    # packed vectors (long base64 strings, nothing to escape) are spliced in after the
    # rest is formatted, so json and the key replacements skip nine tenths of the text
    packed = None
    if maps > 1 and "embedding" in keys:
        vectors = [row.get("embedding") for row in value]
        if all(isinstance(v, str) and '"' not in v and "\\" not in v for v in vectors):
            packed = vectors
            value = [{"embedding": 0, **{k: v for k, v in row.items() if k != "embedding"}} for row in value]
            keys = keys - {"embedding"}
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return None
    # every map that has keys opens with '{"': more of them than maps means nested maps
    if "\\u" in text or text.count('{"') > maps:
        return None
    for key in keys:
        text = text.replace(f'{{"{key}":', f"{{`{key}`:").replace(f',"{key}":', f",`{key}`:")
    if packed is not None:
        parts = text.split('{"embedding":0,')
        if len(parts) != len(packed) + 1:  # a row with nothing but its vector
            return None
        text = parts[0] + "".join(f'{{`embedding`:"{v}",{rest}' for v, rest in zip(packed, parts[1:], strict=True))
    return text


def _with_parameters(text: str, params: dict[str, Any] | None) -> str:
    """``text`` behind a ``CYPHER name=value ...`` header (how FalkorDB takes parameters)."""
    if not params:
        return text
    parts = []
    for name, value in params.items():
        literal = _json_literal(value)
        parts.append(f"{_name(name)}={_literal(value) if literal is None else literal}")
    return "CYPHER " + " ".join(parts) + " " + text


class FalkorDBStore:
    """:class:`~graphmem.store.base.GraphStore` on the embedded FalkorDB.

    Each tenant group is its own FalkorDB graph, ``<graph>:<group_id>``, so a query
    physically cannot reach another group's data (see :mod:`graphmem.store.base`).
    Named queries go to the graph of their ``group_id`` parameter; a store written by
    an older graphmem (every group in the one graph ``<graph>``) is moved group by
    group on open, counts compared before the old graph is dropped.

    When the embedded server dies (killed, out of memory), the next query restarts it
    from its append-only file and reconnects; a read is then retried once, a write
    fails with :class:`StoreError` (its caller decides whether to run it again).
    """

    dialect = "falkordb"
    isolation: Isolation = "graph"

    def __init__(self, home: str | Path, graph: str = "graphmem", *, socket: str | None = None) -> None:
        import redis

        if not graph or ":" in graph:
            raise StoreError(f"graph name {graph!r} cannot be used: it must be non-empty and hold no ':'")
        self._prefix = graph
        # names this store's connections, so close() can tell them from other processes'
        self._client_name = f"graphmem:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._server: EmbeddedServer | None = None
        self._started_here = False
        if socket is None:
            self._server = EmbeddedServer(Path(home))
            self._started_here = self._server.start()
            socket = str(self._server.socket)
        self._socket = socket
        self._redis_errors = (redis.RedisError, OSError)
        self._lock = threading.Lock()  # guards reconnection and the caches below
        #: set by close(): a query still running in another thread (one its caller gave up
        #: waiting for) must not start the server again once this store stopped it
        self._closed = False
        self._graphs: dict[str, Any] = {}
        self._schema: dict[str, int | None] = {}  # group -> vector size its schema was made for
        self._default_dim: int | None = None  # the vector size of groups made later (ensure_schema)
        self._connect()
        self._queries = load_queries(self.dialect)
        self._writes = {name: bool(_WRITE_CLAUSE.search(text)) for name, text in self._queries.items()}
        if self._server is not None:
            self._migrate_single_graph(Path(home))

    def _connect(self) -> None:
        """Open the client. Bounded: a server that accepts but never answers is a
        :class:`StoreUnavailable` within seconds, not a hang (the client library reads its
        handshake without a timeout, so it runs under one here)."""
        import redis
        from falkordb import FalkorDB

        state = probe(self._socket)
        try:
            if state != "ready":
                raise TimeoutError(SEEN[state])

            def connect() -> Any:
                db = FalkorDB(
                    unix_socket_path=self._socket, socket_connect_timeout=PROBE_TIMEOUT_S, client_name=self._client_name
                )
                db.connection.ping()
                return db

            self._db = within(5 * PROBE_TIMEOUT_S, connect)
        except (redis.RedisError, OSError) as exc:  # TimeoutError is an OSError
            if self._server is not None and self._started_here:
                # not left behind: stopped, or killed when it does not answer
                with contextlib.suppress(StoreError):
                    self._server.stop(timeout=PROBE_TIMEOUT_S)
                self._started_here = False
            raise StoreUnavailable(self._unreachable(exc)) from exc
        self._graphs = {}

    def _unreachable(self, cause: BaseException) -> str:
        """Why the store cannot be used, and what to do."""
        if self._server is None:
            return f"cannot connect to the store at {self._socket}: {cause}"
        return (
            f"cannot connect to the embedded store in {self._server.home}: {cause}. Its log is "
            f"{self._server.logfile}; stop it with `graphmem db stop` (a server that does not answer "
            "is killed) and run the command again"
        )

    # -- groups ----------------------------------------------------------------
    def graph_name(self, group_id: str) -> str:
        """The FalkorDB graph that holds ``group_id``."""
        return f"{self._prefix}:{check_group_id(group_id)}"

    def _graph(self, group_id: str) -> Any:
        name = self.graph_name(group_id)
        graph = self._graphs.get(name)
        if graph is None:
            graph = self._graphs[name] = self._db.select_graph(name)
        return graph

    def groups(self) -> list[str]:
        """Every group this store holds (one graph each), sorted."""
        prefix = self._prefix + ":"
        names = self._call(lambda: self._db.list_graphs(), read=True)
        return sorted(
            n[len(prefix) :] for n in (x.decode() if isinstance(x, bytes) else x for x in names) if n.startswith(prefix)
        )

    def drop_group(self, group_id: str) -> bool:
        """Delete a group's graph and everything in it; True if it existed."""
        import redis

        name = self.graph_name(group_id)
        try:
            self._call(lambda: self._db.connection.execute_command("GRAPH.DELETE", name), read=False)
        except StoreError as exc:
            if isinstance(exc.__cause__, redis.ResponseError):
                return False  # no such graph
            raise
        with self._lock:
            self._graphs.pop(name, None)
            self._schema.pop(group_id, None)
        return True

    # -- GraphStore ---------------------------------------------------------
    def _call(self, action: Callable[[], T], *, read: bool, user: bool = False) -> T:
        """Run ``action`` against the server; after a lost connection, bring the server
        back (restarting an embedded one) and retry a read once. A user query is never
        retried: it may be what stopped the server, and it would stop it again."""
        try:
            return action()
        except self._redis_errors as exc:
            if not _lost(exc):
                raise StoreError(str(exc)) from exc
            self._revive(exc)
            if user:
                raise StoreStoppedDuringQuery(
                    f"the embedded store stopped while this query ran ({exc}); it was restarted "
                    "and the query was not run again"
                ) from exc
            if not read:
                raise StoreUnavailable(
                    f"the embedded store stopped during a write ({exc}); it was restarted and the "
                    "write may not have been applied: run it again"
                ) from exc
            try:
                return action()
            except self._redis_errors as again:
                raise (StoreUnavailable if _lost(again) else StoreError)(str(again)) from again

    def _revive(self, cause: BaseException) -> None:
        if self._closed:
            raise StoreUnavailable(f"the store was closed while a query ran ({cause})")
        with self._lock:
            if probe(self._socket) == "ready":
                return  # another thread restarted it already; the client reconnects on its own
            try:
                if self._server is not None and self._server.start():
                    self._started_here = True
                self._connect()
            except StoreError as exc:
                raise StoreUnavailable(f"lost the embedded store ({cause}) and could not restart it: {exc}") from exc
            self._schema.clear()

    def _query(
        self,
        text: str,
        params: dict[str, Any] | None,
        group_id: str,
        *,
        read_only: bool = False,
        timeout_ms: int | None = None,
        read: bool | None = None,
        user: bool = False,
    ) -> tuple[list[str], list[list[Any]]]:
        text = _with_parameters(text, params)
        reads = read_only if read is None else read

        def action() -> Any:
            graph = self._graph(group_id)
            if read_only:
                return graph.ro_query(text, None, timeout=timeout_ms)
            return graph.query(text, None, timeout=timeout_ms)

        try:
            result = self._call(action, read=reads, user=user)
        except StoreError as exc:
            if reads and _missing_graph(exc):
                return [], []  # a group never written holds nothing
            raise
        columns = [h[1] if isinstance(h, (list, tuple)) else str(h) for h in (result.header or [])]
        return columns, [[_plain(v) for v in row] for row in result.result_set]

    def _group_of(self, query: str, params: dict[str, Any]) -> str:
        group = params.get("group_id")
        if not isinstance(group, str):
            raise StoreError(f"query {query!r} was run without a group_id: every query is confined to one group")
        return group

    def run(self, query: str, /, **params: Any) -> list[Row]:
        text = self._queries[query]
        group = self._group_of(query, params)
        writes = self._writes[query]
        if writes:
            self._ensure_graph(group)
        # reads run read-only: then a group without a graph yet answers "empty key"
        # (no rows) instead of getting an empty graph made for it
        columns, rows = self._query(text, params, group, read_only=not writes)
        return [_unpacked(dict(zip(columns, row, strict=True))) for row in rows]

    def run_rows(self, query: str, rows: Sequence[Row], /, batch_size: int = 500, **params: Any) -> None:
        text = self._queries[query]
        group = self._group_of(query, params)
        self._ensure_graph(group)
        if query in _PACKED_VECTORS:
            rows = [
                {**row, "embedding": pack_vector(row["embedding"])} if row.get("embedding") is not None else row
                for row in rows
            ]
        for chunk in batched(rows, batch_size):
            self._query(text, {**params, "rows": list(chunk)}, group)

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
        """User Cypher on ``group_id``'s graph: checked against ``budget`` first, at most
        ``max_rows`` rows (the limit is part of the query the server runs), read-only
        (GRAPH.RO_QUERY) unless ``write``."""
        text = user_cypher.prepare(text, params, write=write, max_rows=max_rows, budget=budget)
        # a group never written has no graph yet, and FalkorDB refuses even reads on a
        # missing graph: make it (empty, with its indexes) so the query runs as on any other
        self._ensure_graph(group_id)
        try:
            columns, rows = self._query(
                text, params or {}, group_id, read_only=not write, timeout_ms=timeout_ms, user=True
            )
        except StoreError as exc:
            message = str(exc)
            if "read-only" in message:
                raise StoreError("this query writes; pass --write to allow it") from exc
            if "timed out" in message.lower() or "timeout" in message.lower():
                raise StoreError(f"the query ran past its timeout of {timeout_ms / 1000:g} s") from exc
            raise
        return columns, rows if max_rows is None else rows[:max_rows]

    def ensure_schema(self, dim: int, group_id: str | None = None) -> None:
        """Create the indexes of ``group_id``'s graph (of every group when None; a group
        created later gets them on its first write)."""
        self._default_dim = int(dim)
        for group in [group_id] if group_id is not None else self.groups():
            self._make_schema(group, int(dim))

    def _ensure_graph(self, group_id: str) -> None:
        """Before the first write to a group in this process: its graph and indexes exist."""
        if group_id not in self._schema or (self._schema[group_id] is None and self._default_dim is not None):
            self._make_schema(group_id, self._default_dim)

    def _make_schema(self, group_id: str, dim: int | None) -> None:
        if group_id in self._schema and (dim is None or self._schema[group_id] == dim):
            return
        for name, text in self._queries.items():
            if not name.startswith("schema_") or ("{dim}" in text and dim is None):
                continue
            try:
                self._query(text.replace("{dim}", str(dim)), None, group_id)
            except StoreError as exc:
                if not any(marker in str(exc).lower() for marker in _EXISTS):
                    raise
        with self._lock:
            self._schema[group_id] = dim

    def close(self) -> None:
        self._closed = True
        try:
            if self._started_here and self._server is not None and self._sole_client():
                self._server.stop()
        finally:
            with contextlib.suppress(Exception):
                self._db.connection.close()

    def _sole_client(self) -> bool:
        """True when no other client is connected (then stopping the server is safe); False
        when the server does not answer within seconds (it is left as it is)."""
        assert self._server is not None
        names = self._server.client_names()
        return names is not None and all(name == self._client_name for name in names)

    @property
    def server(self) -> EmbeddedServer | None:
        return self._server

    # -- stores of older graphmem versions ------------------------------------------
    def _migrate_single_graph(self, home: Path) -> None:
        """Move a store that kept every group in the one graph ``<graph>`` to a graph
        per group (see :mod:`graphmem.store.split_groups`)."""
        names = self._call(lambda: self._db.list_graphs(), read=True)
        if self._prefix not in {x.decode() if isinstance(x, bytes) else x for x in names}:
            return
        from graphmem.store.split_groups import split_single_graph

        split_single_graph(self, SingleGraph(self, self._prefix), home)


class SingleGraph:
    """Named queries on one fixed graph, whatever their ``group_id``: how a store of an
    older graphmem (all groups in one graph) is read while it is split up."""

    dialect = "falkordb"

    def __init__(self, store: FalkorDBStore, name: str) -> None:
        self.store, self.name = store, name

    def _run(self, text: str, params: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
        def action() -> Any:
            return self.store._db.select_graph(self.name).query(_with_parameters(text, params), None)

        result = self.store._call(action, read=True)
        columns = [h[1] if isinstance(h, (list, tuple)) else str(h) for h in (result.header or [])]
        return columns, [[_plain(v) for v in row] for row in result.result_set]

    def run(self, query: str, /, **params: Any) -> list[Row]:
        columns, rows = self._run(self.store._queries[query], params)
        return [_unpacked(dict(zip(columns, row, strict=True))) for row in rows]

    def run_rows(self, query: str, rows: Sequence[Row], /, batch_size: int = 500, **params: Any) -> None:
        text = self.store._queries[query]
        if query in _PACKED_VECTORS:
            rows = [
                {**row, "embedding": pack_vector(row["embedding"])} if row.get("embedding") is not None else row
                for row in rows
            ]
        for chunk in batched(rows, batch_size):
            self._run(text, {**params, "rows": list(chunk)})

    def groups(self) -> list[str]:
        return sorted(row["group_id"] for row in self.run("groups_in_graph") if isinstance(row["group_id"], str))

    def delete(self) -> None:
        self.store._call(lambda: self.store._db.connection.execute_command("GRAPH.DELETE", self.name), read=False)


_WRITE_CLAUSE = re.compile(r"\b(CREATE|MERGE|SET|DELETE|REMOVE|DROP)\b", re.IGNORECASE)


def _lost(exc: BaseException) -> bool:
    """True for a lost connection (as opposed to an error the server answered with)."""
    import redis

    return isinstance(exc, (OSError, redis.ConnectionError, redis.TimeoutError)) or "Connection" in type(exc).__name__


def _missing_graph(exc: StoreError) -> bool:
    return "empty key" in str(exc).lower()
