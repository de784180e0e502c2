"""Backup and restore of the embedded store: a consistent snapshot as one file.

``backup`` asks the running server for a ``BGSAVE``: redis forks and writes the
whole dataset as it was at that instant (an RDB file), while writers go on, so
the snapshot is consistent even mid-ingestion (a source caught in 'writing' is
swept by the next ``graphmem ingest``). The file is copied to PATH atomically,
readable by its owner only (0600).

``restore`` loads such a file into a fresh data directory: it starts a server
there without the append-only file so it loads the snapshot, turns append-only
persistence on (redis rewrites the AOF from memory) and stops it cleanly; from
then on the home is an ordinary one. Refused when the home already has data.
The Neo4j store has its own tools (neo4j-admin dump/load); for moving between
stores use ``graphmem export/import``.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from graphmem.errors import InputError, StoreError
from graphmem.fileperm import open_private
from graphmem.store.falkordb_server import EmbeddedServer

RDB_MAGIC = b"REDIS"
SNAPSHOT = "dump.rdb"


def _client(server: EmbeddedServer, timeout: float = 600.0) -> Any:
    import redis

    return redis.Redis(unix_socket_path=str(server.socket), socket_timeout=timeout)


def _wait(client: Any, key: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        info = client.info("persistence")
        if info.get(key) == 0:
            return info
        if time.monotonic() > deadline:
            raise StoreError(f"the embedded store did not finish ({key}) within {timeout:.0f} s")
        time.sleep(0.05)


def _copy_private(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` as a file only this user can read (it holds every passage), fsynced."""
    with open(source, "rb") as src, open_private(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 1024 * 1024)
        dst.flush()
        os.fsync(dst.fileno())


def backup(home: str | Path, path: str | Path, timeout: float = 3600.0) -> int:
    """Write a consistent snapshot of the embedded store in ``home`` to ``path``; returns its size."""
    import redis

    server = EmbeddedServer(Path(home))
    started = server.start()
    target = Path(path)
    try:
        client = _client(server)
        try:
            # one already running would not include now
            saves = _wait(client, "rdb_bgsave_in_progress", timeout).get("rdb_saves", 0)
            client.bgsave()
            info = _wait(client, "rdb_bgsave_in_progress", timeout)
            # rdb_saves counts snapshots (LASTSAVE has one-second resolution: a save in the
            # second the server started would look like none)
            if info.get("rdb_last_bgsave_status") != "ok" or info.get("rdb_saves", 0) <= saves:
                raise StoreError(f"the snapshot failed; see {server.logfile}")
            snapshot = Path(client.config_get("dir")["dir"]) / client.config_get("dbfilename")["dbfilename"]
        except redis.RedisError as exc:
            raise StoreError(f"backup failed: {exc}") from exc
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        try:
            _copy_private(snapshot, tmp)
            tmp.replace(target)
            snapshot.unlink(missing_ok=True)  # the live home keeps its data in the AOF
        except OSError as exc:
            raise StoreError(f"cannot write the backup to {target}: {exc.strerror or exc}") from exc
        return target.stat().st_size
    finally:
        if started:
            server.stop()


def restore(path: str | Path, home: str | Path, timeout: float = 3600.0) -> None:
    """Load the snapshot at ``path`` into the fresh data directory ``home``."""
    import redis

    source = Path(path)
    try:
        with open(source, "rb") as handle:
            magic = handle.read(len(RDB_MAGIC))
    except OSError as exc:
        raise InputError(f"cannot read the backup: {exc.strerror or exc}", path=source) from None
    if magic != RDB_MAGIC:
        raise InputError("not a graphmem backup (no redis snapshot header)", path=source)
    server = EmbeddedServer(Path(home))
    if server.ping():
        raise StoreError(f"the store in {home} is running; restore needs a fresh home (or stop it and remove it)")
    if server.dir.exists() and any(p.name not in {"start.lock", "redis.log"} for p in server.dir.iterdir()):
        raise StoreError(f"{server.dir} already holds data; restore into a fresh home")
    server.prepare()
    _copy_private(source, server.dir / SNAPSHOT)
    shutil.rmtree(Path(home) / "cache", ignore_errors=True)  # projections of another graph
    server.start(aof=False)
    try:
        client = _client(server)
        client.config_set("appendonly", "yes")  # rewrites the append-only file from memory
        deadline = time.monotonic() + timeout
        while True:
            info = client.info("persistence")
            if (
                info.get("aof_enabled") == 1
                and info.get("aof_rewrite_in_progress") == 0
                and info.get("aof_rewrite_scheduled") == 0
            ):
                break
            if time.monotonic() > deadline:
                raise StoreError("the restored store did not finish writing its append-only file")
            time.sleep(0.05)
        if info.get("aof_last_bgrewrite_status") != "ok":
            raise StoreError(f"restore failed writing the append-only file; see {server.logfile}")
    except redis.RedisError as exc:
        raise StoreError(f"restore failed: {exc}") from exc
    finally:
        server.stop()
    (server.dir / SNAPSHOT).unlink(missing_ok=True)  # the AOF holds the data now
