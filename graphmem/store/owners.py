"""Who is writing: owner tokens for sources in state 'writing', and whether
their writer is still alive.

An owner is ``host|pid|token``. A writer on this host is dead when its
process is gone, or when it is this very process but the token is no longer
active (an ingestion that raised and left its sources half-written). A writer
on another host is dead once its lease (renewed after every batch) is older
than ``GRAPHMEM_LEASE_S`` seconds (default 600).
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterable

_ACTIVE: set[str] = set()


def new_owner() -> str:
    """A fresh owner token for one ingestion run of this process (mark it active)."""
    owner = f"{socket.gethostname()}|{os.getpid()}|{uuid.uuid4().hex[:12]}"
    _ACTIVE.add(owner)
    return owner


def release(owner: str) -> None:
    _ACTIVE.discard(owner)


def lease_s() -> float:
    try:
        return float(os.environ.get("GRAPHMEM_LEASE_S", "600"))
    except ValueError:
        return 600.0


def now_ms() -> int:
    return int(time.time() * 1000)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_dead(owner: str, lease_at: int | None) -> bool:
    """True when the writer named by ``owner`` can no longer finish its sources."""
    parts = owner.split("|")
    if len(parts) != 3 or not parts[1].isdigit():
        return True  # written before owners existed, or garbage: nobody can finish it
    host, pid, _ = parts[0], int(parts[1]), parts[2]
    if host == socket.gethostname():
        if pid == os.getpid():
            return owner not in _ACTIVE
        return not _pid_alive(pid)
    return lease_at is None or now_ms() - int(lease_at) > lease_s() * 1000


def dead_owners(rows: Iterable[dict]) -> list[str]:
    """The owners among ``rows`` (``owner``, ``lease_at``) that are dead, plus '' (no owner)."""
    dead = {""}
    for row in rows:
        owner = row.get("owner") or ""
        if owner and is_dead(owner, row.get("lease_at")):
            dead.add(owner)
    return sorted(dead)
