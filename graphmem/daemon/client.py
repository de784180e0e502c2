"""The command line's side of the search process: ask it, start it, stop it.

Every function here is cheap to import (no numpy, no models): ``graphmem search``
asks the process first and only imports :mod:`graphmem.memory` (and loads the
models) itself when no process answers for its home and store.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphmem.daemon import daemon_dir, socket_path
from graphmem.errors import ConfigError, InputError, StoreError

if TYPE_CHECKING:
    from graphmem.config import Settings
    from graphmem.memory import SearchMode, SearchResult

#: connecting to a live process takes microseconds; one that does not accept in this long is not used
CONNECT_TIMEOUT_S = 1.0
#: the longest a search may take in the process before the command searches itself instead
SEARCH_TIMEOUT_S = 300.0
#: how long ``db start`` waits for the process to load the models and the projection
START_TIMEOUT_S = 300.0
#: how long ``db stop`` waits for the process to exit
STOP_TIMEOUT_S = 10.0
#: errors the process reports that are the request's fault: raised as the same class here
RAISED = {"InputError": InputError, "ConfigError": ConfigError}


def _trusted(path: Path) -> bool:
    """True when ``path`` is a socket of this user's in a directory only this user can use:
    nothing another local user made is ever talked to."""
    try:
        info, folder = os.lstat(path), os.lstat(path.parent)
    except OSError:
        return False
    uid = os.geteuid()
    return (
        stat.S_ISSOCK(info.st_mode)
        and info.st_uid == uid
        and stat.S_ISDIR(folder.st_mode)
        and folder.st_uid == uid
        and not folder.st_mode & 0o077
    )


def ask(home: str | Path, request: dict[str, Any], timeout: float) -> dict[str, Any] | None:
    """The process's answer to ``request``, or None when no process answers (no socket, a
    stale one, a refused or timed-out connection, a garbled answer)."""
    path = socket_path(home)
    if not _trusted(path):
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(CONNECT_TIMEOUT_S)
            conn.connect(str(path))
            conn.settimeout(timeout)
            conn.sendall(json.dumps(request, ensure_ascii=False).encode() + b"\n")
            with conn.makefile("rb") as reader:
                line = reader.readline()
        answer = json.loads(line)
    except (OSError, ValueError):
        return None
    return answer if isinstance(answer, dict) else None


def ping(home: str | Path) -> dict[str, Any] | None:
    """``{"pid", "home"}`` of the live process of ``home``, or None."""
    answer = ask(home, {"op": "ping"}, CONNECT_TIMEOUT_S * 5)
    return answer if answer and answer.get("ok") else None


def request_settings(settings: Settings) -> dict[str, Any]:
    """``settings`` as the process rebuilds them: the explicitly set fields only (so the
    group's recipe fills the rest there as it would here), the home made absolute."""
    fields = settings.model_dump(mode="json", exclude_unset=True)
    fields["home"] = str(Path(settings.home).resolve())
    return fields


def warm_search(
    settings: Settings, queries: Sequence[str], k: int, *, mode: str, as_of: datetime | None
) -> list[list[SearchResult]] | None:
    """The search's results from the home's process, or None when none answers for this
    store (the caller then searches in-process). An input error is raised as here."""
    request = {
        "op": "search",
        "settings": request_settings(settings),
        "cwd": os.getcwd(),
        "queries": list(queries),
        "k": k,
        "mode": mode,
        "as_of": as_of.isoformat() if as_of is not None else None,
    }
    answer = ask(settings.home, request, SEARCH_TIMEOUT_S)
    if answer is None:
        return None
    if not answer.get("ok"):
        raised = RAISED.get(str(answer.get("error")))
        if raised is not None:
            raise raised(str(answer.get("message")))
        return None  # another store, or a failure there: the in-process search says what is wrong
    from graphmem.memory import SearchResult

    return [[SearchResult.model_validate(hit) for hit in row] for row in answer["results"]]


def search_many(
    settings: Settings, queries: Sequence[str], k: int, *, mode: SearchMode, as_of: datetime | None
) -> list[list[SearchResult]]:
    """Search through the home's warm process when one runs, else in this process; the
    results are the same either way."""
    results = warm_search(settings, queries, k, mode=mode, as_of=as_of)
    if results is not None:
        return results
    from graphmem.memory import Memory

    with Memory(settings) as memory:
        return memory.search_many(list(queries), k, mode=mode, as_of=as_of)


def start(settings: Settings, timeout: float = START_TIMEOUT_S) -> bool:
    """Start the search process of ``settings``' home (False: one already runs) and wait
    until it has loaded the models and the projection of ``settings``' group and listens."""
    if ping(settings.home) is not None:
        return False
    from graphmem.fileperm import open_private, private_dir

    folder = private_dir(daemon_dir(settings.home))
    log_path = folder / "daemon.log"
    with open_private(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "graphmem.daemon", "--warm", json.dumps(request_settings(settings))],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # a Ctrl-C in the terminal that ran `db start` leaves it running
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ping(settings.home) is not None:
            return True
        code = process.poll()
        if code == 3:  # another `db start` won the race: that one serves
            return False
        if code is not None:
            raise StoreError(f"the search process exited with status {code}; see {log_path}:\n{_tail(log_path)}")
        time.sleep(0.1)
    raise StoreError(f"the search process did not answer within {timeout:.0f} s; see {log_path}")


def _tail(path: Path, lines: int = 15) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def stop(home: str | Path) -> bool:
    """Stop the search process of ``home``: asked over its socket, else by SIGTERM to the
    pid its pid file names (only when that pid is a graphmem search process). False: none ran."""
    pid = _pid(home)
    asked = ask(home, {"op": "stop"}, STOP_TIMEOUT_S)
    if asked is None and pid is None:
        return False
    if asked is None and pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while pid is not None and _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return True


def _pid(home: str | Path) -> int | None:
    """The pid in ``<home>/daemon/daemon.pid`` when that process runs ``graphmem.daemon``."""
    try:
        pid = int((daemon_dir(home) / "daemon.pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"graphmem.daemon" in cmdline else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):  # a zombie (exited, not yet reaped) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


__all__ = ["ask", "ping", "search_many", "start", "stop", "warm_search"]
