"""The search process: ``python -m graphmem.daemon --home HOME --warm SETTINGS_JSON``.

One process per home (an exclusive lock on ``<home>/daemon/daemon.lock`` keeps a
second one out), serving one request at a time over its private unix socket (see
:mod:`graphmem.daemon` for the protocol). It opens the store of ``--warm``'s
settings once, loads the models and the projection of that group before it
listens (so ``graphmem db start`` returns once searches are fast), and keeps one
:class:`~graphmem.memory.Memory` per group and settings over that one connection.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import signal
import socket
import struct
import sys
from collections import OrderedDict
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from graphmem.config import Settings
from graphmem.daemon import MAX_REQUEST_BYTES, daemon_dir, socket_path
from graphmem.errors import GraphmemError, InputError
from graphmem.fileperm import open_private, private_dir, write_private
from graphmem.memory import Memory
from graphmem.query_limits import query_problem
from graphmem.store import open_store

#: Memory objects (one per group and settings) kept at most; the least recently used goes
MAX_MEMORIES = 8
#: a connection that sends nothing for this long is dropped (the next client is not kept waiting)
IDLE_READ_S = 30.0
#: the search limits of the CLI (and the REST API): passages per query, modes
MAX_K = 1000
MODES = ("graph", "dense", "bm25")
#: the settings that name the store: a request for another store is not this process's to answer
STORE_FIELDS = ("home", "store", "graph", "neo4j_database_per_group")


def store_identity(settings: Settings) -> tuple[Any, ...]:
    """What makes two settings' stores the same one (the home resolved)."""
    return tuple(str(Path(settings.home).resolve()) if f == "home" else getattr(settings, f) for f in STORE_FIELDS)


class SearchDaemon:
    """The state the process keeps warm: the store connection and the memories over it."""

    def __init__(self, warm: Settings) -> None:
        self.warm = warm
        self.identity = store_identity(warm)
        self.store = open_store(warm)
        self.memories: OrderedDict[str, Memory] = OrderedDict()
        self.searches = 0  # answered (ping reports it: tests and `db status` see the process at work)

    def memory(self, settings: Settings) -> Memory:
        """The memory for ``settings`` from the current directory (made on first use; the
        least recently used beyond :data:`MAX_MEMORIES` is closed). Its store is the shared
        connection, so closing it leaves the store open."""
        fields = settings.model_dump(mode="json", exclude_unset=True)
        key = json.dumps([os.getcwd(), fields], sort_keys=True)  # a relative model folder is the cwd's
        found = self.memories.pop(key, None)
        if found is None:
            found = Memory(settings, store=self.store)
        self.memories[key] = found
        while len(self.memories) > MAX_MEMORIES:
            self.memories.popitem(last=False)[1].close()
        return found

    def warm_up(self) -> None:
        """Load the embedding model, spaCy and the projection of the warm group, and run one
        search (which builds the BM25 index and the walk's structures)."""
        self.memory(self.warm).search("warm up", k=1)

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """The answer to one request (never raises: failures are ``ok: false`` answers)."""
        op = request.get("op")
        try:
            if op == "ping":
                return {"ok": True, "pid": os.getpid(), "home": self.identity[0], "searches": self.searches}
            if op == "search":
                return self.search(request)
            if op == "stop":
                return {"ok": True}
            return {"ok": False, "error": "InputError", "message": f"unknown op {op!r}"}
        except GraphmemError as exc:
            return {"ok": False, "error": type(exc).__name__, "message": str(exc)}
        except Exception as exc:  # a bug: the client searches in-process instead
            return {"ok": False, "error": "internal", "message": f"{type(exc).__name__}: {exc}"}

    def search(self, request: dict[str, Any]) -> dict[str, Any]:
        """Search as ``graphmem search`` does, with the request's settings and the CLI's limits."""
        settings = Settings.model_validate(request.get("settings") or {})
        if store_identity(settings) != self.identity:
            return {"ok": False, "error": "elsewhere", "message": "another store than this process's"}
        queries, k, mode = request.get("queries"), request.get("k", 5), request.get("mode", "graph")
        if not isinstance(queries, list) or not queries or not all(isinstance(q, str) for q in queries):
            raise InputError("queries: a non-empty list of strings")
        for query in queries:
            problem = query_problem(query)
            if problem is not None:
                raise InputError(f"query: {problem}")
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
            raise InputError(f"k: an integer from 1 to {MAX_K}")
        if mode not in MODES:
            raise InputError(f"mode: one of {', '.join(MODES)}")
        cwd = request.get("cwd")
        if isinstance(cwd, str) and os.path.isdir(cwd):
            os.chdir(cwd)  # relative paths in the settings (a model folder) mean what they mean there
        as_of = request.get("as_of")
        when = datetime.fromisoformat(as_of) if isinstance(as_of, str) else None
        rows = self.memory(settings).search_many(queries, k, mode=mode, as_of=when)
        self.searches += 1
        return {"ok": True, "results": [[hit.model_dump(mode="json") for hit in row] for row in rows]}

    def close(self) -> None:
        for memory in self.memories.values():
            memory.close()
        self.memories.clear()
        self.store.close()


def peer_uid(conn: socket.socket) -> int:
    """The user id of the process at the other end of a unix socket (Linux ``SO_PEERCRED``)."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def listen(path: Path) -> socket.socket:
    """A unix socket listening on ``path``, created 0600 (never readable by others, even briefly)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # stale: the lock says no live process serves it
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        listener.bind(str(path))
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    listener.listen(16)
    return listener


def serve_connection(daemon: SearchDaemon, conn: socket.socket) -> bool:
    """Answer the requests of one connection, a JSON line each; True when asked to stop."""
    conn.settimeout(IDLE_READ_S)
    with conn.makefile("rb") as reader, conn.makefile("wb") as writer:
        for line in iter(lambda: reader.readline(MAX_REQUEST_BYTES + 1), b""):
            if len(line) > MAX_REQUEST_BYTES:
                _reply(writer, {"ok": False, "error": "InputError", "message": "request too large"})
                return False
            try:
                request = json.loads(line)
            except ValueError:
                _reply(writer, {"ok": False, "error": "InputError", "message": "not a JSON line"})
                return False
            request = request if isinstance(request, dict) else {}
            _reply(writer, daemon.handle(request))
            if request.get("op") == "stop":
                return True
    return False


def _reply(writer: IO[bytes], answer: dict[str, Any]) -> None:
    writer.write(json.dumps(answer, ensure_ascii=False).encode() + b"\n")
    writer.flush()


def serve(daemon: SearchDaemon, listener: socket.socket) -> None:
    """Accept connections until a ``stop`` request (or SIGTERM); other users' are closed unread."""
    while True:
        conn, _ = listener.accept()
        with conn:
            if peer_uid(conn) != os.geteuid():
                continue
            try:
                if serve_connection(daemon, conn):
                    return
            except OSError:  # the client went away or timed out: serve the next one
                continue


@contextlib.contextmanager
def single_instance(home: Path) -> Iterator[bool]:
    """Hold ``<home>/daemon/daemon.lock`` (True) or find another process holding it (False)."""
    folder = private_dir(daemon_dir(home))
    with open_private(folder / "daemon.lock", "ab") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            write_private(folder / "daemon.pid", f"{os.getpid()}\n")
            yield True
        finally:
            with contextlib.suppress(FileNotFoundError):
                (folder / "daemon.pid").unlink()


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(0)


def run(warm: Settings) -> int:
    """The process's life: lock, load, listen, serve, clean up. 0 on a clean stop, 3 when
    another process already serves this home."""
    home = Path(warm.home).resolve()
    signal.signal(signal.SIGTERM, _terminate)
    with single_instance(home) as mine:
        if not mine:
            print("another search process already serves this home", file=sys.stderr)
            return 3
        daemon = SearchDaemon(warm)
        path = socket_path(home)
        try:
            daemon.warm_up()
            listener = listen(path)
            print(f"ready: {path}", file=sys.stderr, flush=True)
            with listener:
                serve(daemon, listener)
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            daemon.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m graphmem.daemon", description=__doc__)
    parser.add_argument("--warm", required=True, help="JSON of the explicitly set settings to load first.")
    args = parser.parse_args(argv)
    return run(Settings.model_validate(json.loads(args.warm)))
