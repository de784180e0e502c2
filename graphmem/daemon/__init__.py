"""The warm search process: a per-home background process that ``graphmem db start``
starts and ``graphmem db stop`` stops, so repeated ``graphmem search`` commands skip
loading the embedding model, spaCy and the projection.

It holds one store connection, the models and, per group and settings, a
:class:`~graphmem.memory.Memory` with its projection. Every search re-reads the
group's revision and recipe, as an in-process search does, so an ingestion by
another process is seen by the next search (never a stale projection).

Where it listens: a unix socket ``<home>/daemon/search.sock`` in a 0700 directory,
the socket itself 0600 (a deep home's socket goes into the same private directory
as the embedded store's, see :func:`graphmem.store.falkordb_server.fallback_socket`).
The process also refuses a connection from any other user (``SO_PEERCRED``).

The protocol is one JSON object per line each way:

* ``{"op": "ping"}`` -> ``{"ok": true, "pid": N, "home": "..."}``
* ``{"op": "search", "settings": {...}, "queries": [...], "k": 5, "mode": "graph",
  "as_of": "ISO 8601" | null}`` -> ``{"ok": true, "results": [[SearchResult, ...], ...]}``;
  ``settings`` are the command's explicitly set :class:`~graphmem.config.Settings`
  fields (``model_dump(exclude_unset=True)``), so the process answers for the group
  and knobs the command asks, with the same recipe rules.
* ``{"op": "stop"}`` -> ``{"ok": true}``, then the process exits.

A failure is ``{"ok": false, "error": "InputError", "message": "..."}``. The client
(:mod:`graphmem.daemon.client`) re-raises input errors and answers everything else
(no process, a dead or stale socket, another store, a bug) by searching in-process.
"""

from __future__ import annotations

from pathlib import Path

#: longest socket path used as is (the kernel's limit is 107 bytes)
SOCKET_MAX = 100
#: the largest request line the process reads (a batch of queries from --file fits)
MAX_REQUEST_BYTES = 16 * 1024 * 1024


def daemon_dir(home: str | Path) -> Path:
    """``<home>/daemon``: the process's pid, lock and log files (and socket, when it fits)."""
    return Path(home).resolve() / "daemon"


def socket_path(home: str | Path) -> Path:
    """The unix socket of ``home``'s search process (a short private path for a deep home)."""
    path = daemon_dir(home) / "search.sock"
    if len(str(path)) <= SOCKET_MAX:
        return path
    from graphmem.store.falkordb_server import fallback_socket

    short = fallback_socket(Path(home).resolve())
    return short.with_name(f"{short.stem}-search.sock")


__all__ = ["MAX_REQUEST_BYTES", "daemon_dir", "socket_path"]
