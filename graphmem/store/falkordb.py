"""The embedded default store: FalkorDB over a unix socket in the data directory."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from graphmem.errors import StoreError
from graphmem.store.base import Row, batched
from graphmem.store.falkordb_server import EmbeddedServer
from graphmem.store.queries import load_queries

_EXISTS = ("already indexed", "already exists", "already created")

#: Named queries whose row vectors are stored packed: base64 of little-endian float32,
#: one string property instead of a list of floats. For vectors nothing searches in
#: the store (entities and facts: resolution and retrieval hold them in memory): the
#: server stores one string instead of parsing 384 numbers, 5-10x cheaper on both sides.
#: :meth:`FalkorDBStore.run` hands them back as float32 arrays.
_PACKED_VECTORS = frozenset({"entity_embeddings_set", "fact_embeddings_set"})


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

    FalkorDB takes parameters as Cypher text; ``repr`` of 384 floats costs about
    0.4 ms per vector in Python, more than the server spends storing it. Here the
    values become integers scaled by a power of ten chosen so the largest has ten
    digits (``123456789e-10``), which numpy and json print in C (0.07 ms), and which
    keeps more precision than the float32 the store keeps.
    """
    values = np.asarray(vector, dtype=np.float64).ravel()
    largest = float(np.max(np.abs(values))) if values.size else 0.0
    if largest == 0.0 or not math.isfinite(largest):
        return json.dumps(values.tolist())  # zeros, or NaN/inf that the server will refuse
    exponent = 9 - math.floor(math.log10(largest))
    scaled = np.rint(values * 10.0 ** exponent).astype(np.int64)
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


def _with_parameters(text: str, params: dict[str, Any] | None) -> str:
    """``text`` behind a ``CYPHER name=value ...`` header (how FalkorDB takes parameters)."""
    if not params:
        return text
    return "CYPHER " + " ".join(f"{_name(name)}={_literal(value)}" for name, value in params.items()) + " " + text


class FalkorDBStore:
    """:class:`~graphmem.store.base.GraphStore` on the embedded FalkorDB."""

    dialect = "falkordb"

    def __init__(self, home: str | Path, graph: str = "graphmem", *, socket: str | None = None) -> None:
        import redis
        from falkordb import FalkorDB

        self._server: EmbeddedServer | None = None
        self._started_here = False
        if socket is None:
            self._server = EmbeddedServer(Path(home))
            self._started_here = self._server.start()
            socket = str(self._server.socket)
        try:
            self._db = FalkorDB(unix_socket_path=socket)
            self._graph = self._db.select_graph(graph)
            self._db.connection.ping()
        except (redis.RedisError, OSError) as exc:
            raise StoreError(f"cannot connect to the embedded store at {socket}: {exc}") from exc
        self._queries = load_queries(self.dialect)
        self._redis_errors = (redis.RedisError, OSError)

    # -- GraphStore ---------------------------------------------------------
    def _query(self, text: str, params: dict[str, Any] | None, *, read_only: bool = False,
               timeout_ms: int | None = None) -> tuple[list[str], list[list[Any]]]:
        try:
            text = _with_parameters(text, params)
            if read_only:
                result = self._graph.ro_query(text, None, timeout=timeout_ms)
            else:
                result = self._graph.query(text, None, timeout=timeout_ms)
        except self._redis_errors as exc:
            message = str(exc)
            if isinstance(exc, OSError) or "Connection" in type(exc).__name__:
                raise StoreError(f"lost the embedded store ({message}); run the command again to restart it") from exc
            raise StoreError(message) from exc
        columns = [h[1] if isinstance(h, (list, tuple)) else str(h) for h in (result.header or [])]
        return columns, [[_plain(v) for v in row] for row in result.result_set]

    def run(self, query: str, /, **params: Any) -> list[Row]:
        text = self._queries[query]
        columns, rows = self._query(text, params)
        return [_unpacked(dict(zip(columns, row))) for row in rows]

    def run_rows(self, query: str, rows: Sequence[Row], /, batch_size: int = 500, **params: Any) -> None:
        text = self._queries[query]
        if query in _PACKED_VECTORS:
            rows = [{**row, "embedding": pack_vector(row["embedding"])} for row in rows]
            batch_size *= 4  # a packed vector is a quarter of the text of a list of floats
        for chunk in batched(rows, batch_size):
            self._query(text, {**params, "rows": list(chunk)})

    def cypher(self, text: str, params: dict[str, Any] | None = None, *, write: bool = False,
               timeout_ms: int = 30_000, max_rows: int | None = None) -> tuple[list[str], list[list[Any]]]:
        """User Cypher; read-only queries (GRAPH.RO_QUERY) unless ``write``."""
        for attempt in (1, 2):
            try:
                columns, rows = self._query(text, params or {}, read_only=not write, timeout_ms=timeout_ms)
                return columns, rows if max_rows is None else rows[:max_rows]
            except StoreError as exc:
                if "read-only" in str(exc):
                    raise StoreError("this query writes; pass --write to allow it") from exc
                if "timed out" in str(exc).lower() or "timeout" in str(exc).lower():
                    raise StoreError(f"the query ran past its timeout of {timeout_ms / 1000:g} s") from exc
                if "empty key" in str(exc) and attempt == 1:
                    # a graph that was never written does not exist yet, and FalkorDB
                    # refuses even reads on it; an index creates it, then retry
                    self._query(self._queries["schema_episode_uuid"], None)
                    continue
                raise
        raise AssertionError("unreachable")

    def ensure_schema(self, dim: int) -> None:
        for name, text in self._queries.items():
            if not name.startswith("schema_"):
                continue
            try:
                self._query(text.replace("{dim}", str(int(dim))), None)
            except StoreError as exc:
                if not any(marker in str(exc).lower() for marker in _EXISTS):
                    raise

    def close(self) -> None:
        try:
            if self._started_here and self._server is not None and self._sole_client():
                self._server.stop()
        finally:
            try:
                self._db.connection.close()
            except Exception:
                pass

    def _sole_client(self) -> bool:
        """True when no other process is connected (then stopping the server is safe)."""
        try:
            clients = self._db.connection.client_list()
        except self._redis_errors:
            return False
        return len(clients) <= 1

    @property
    def server(self) -> EmbeddedServer | None:
        return self._server
