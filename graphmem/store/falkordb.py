"""The embedded default store: FalkorDB over a unix socket in the data directory."""

from __future__ import annotations

import base64
import json
import math
import re
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
    if isinstance(value, dict):
        maps, keys = 1, value.keys()
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        if not all(isinstance(row, dict) for row in value):
            return None
        maps, keys = len(value), set().union(*value)
    else:
        maps, keys = 0, ()
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
        text = parts[0] + "".join(f'{{`embedding`:"{v}",{rest}' for v, rest in zip(packed, parts[1:]))
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
            rows = [{**row, "embedding": pack_vector(row["embedding"])} if row.get("embedding") is not None else row
                    for row in rows]
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
