"""What every route shares: the server's settings, keys and limits, the groups it serves
(one :class:`~graphmem.memory.Memory` per group over one store), the background jobs, and
the FastAPI dependencies that find who is calling and which group they may use."""

import asyncio
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import Depends, Request

from graphmem.admin import Admin
from graphmem.api.auth import KeyRecord, KeyStore
from graphmem.api.errors import ApiError, log
from graphmem.api.jobs import JobRunner
from graphmem.api.limits import QuerySlots
from graphmem.api.middleware import presented_key
from graphmem.config import Settings
from graphmem.fileperm import private_dir, write_private
from graphmem.store.base import GraphStore

if TYPE_CHECKING:
    from graphmem.memory import Memory

#: local mode: the header that confirms creating a key, and the file (in the home) holding its value
LOCAL_TOKEN_HEADER = "X-Graphmem-Local-Token"
LOCAL_TOKEN_FILE = "api-local-token"


@dataclass
class ApiConfig:
    """What ``graphmem serve`` runs with; every field is a CLI option."""

    max_body_bytes: int = 20 * 1024 * 1024
    #: body limit of /v1/search and /v1/cypher (a query and its parameters)
    query_body_bytes: int = 2 * 1024 * 1024
    cors_origins: list[str] = field(default_factory=list)
    #: ingest requests with more documents+turns (or characters) than this run as background jobs
    background_items: int = 32
    background_chars: int = 200_000
    #: documents per locked step of a background job (searches of the group run between steps)
    job_step: int = 8
    preload: bool = True
    #: user Cypher: queries running at once over all keys (the embedded store has two query
    #: threads; one stays free for searches and ingestion), how long a query waits for a
    #: slot before 429, and the longest timeout a request may ask for
    cypher_concurrency: int = 1
    cypher_wait_s: float = 2.0
    cypher_timeout_ms: int = 30_000
    #: a key whose query was running when the store stopped may run none for this long
    cypher_crash_pause_s: float = 600.0


@dataclass
class Principal:
    """Who is calling: a key (its groups), or local mode (no keys configured: any group)."""

    key_id: str
    groups: set[str] | None  # None = any group (local mode)
    admin: bool
    local: bool = False  # local mode: no key was sent because none is configured

    def group(self, requested: str | None, default: str) -> str:
        if requested is None:
            if self.groups is None:
                return default
            if len(self.groups) == 1:
                return next(iter(self.groups))
            if not self.groups:
                raise ApiError(403, "this key is bound to no group (an admin key manages keys only)")
            raise ApiError(400, f"this key may use several groups {sorted(self.groups)}: name one in 'group'")
        if self.groups is not None and requested not in self.groups:
            raise ApiError(403, f"this key may not use group {requested!r}")
        return requested


class Groups:
    """One Memory per group over one shared store; a lock per group."""

    def __init__(self, settings: Settings, store: GraphStore) -> None:
        self.settings, self.admin = settings, Admin(settings, store=store)
        self._store = store
        self._memories: dict[str, Memory] = {}
        self._locks: dict[str, threading.RLock] = {}
        self._guard = threading.Lock()

    def get(self, group: str) -> tuple["Memory", threading.RLock]:
        from graphmem.memory import Memory

        with self._guard:
            if group not in self._memories:
                settings = self.settings.model_copy(update={"group_id": group})
                self._memories[group] = Memory(settings, store=self._store)
                self._locks[group] = threading.RLock()
            return self._memories[group], self._locks[group]

    def drop(self, group: str) -> bool:
        """Delete ``group`` from the store (its cached projection too); True if it existed."""
        with self._guard:
            lock = self._locks.setdefault(group, threading.RLock())
        with lock:
            existed = self.admin.drop_group(group)
            with self._guard:
                memory = self._memories.pop(group, None)
            if memory is not None:
                memory.close()
        return existed

    def close(self) -> None:
        with self._guard:
            for memory in self._memories.values():
                memory.close()
            self._memories.clear()


class Server:
    """The state the routes share. Local mode (no keys) is decided at start. It ends for good
    once a key exists (created through the admin API): from then on every request needs a
    key, even if all keys are later revoked, so a server started with keys never falls back
    to serving without them."""

    def __init__(self, settings: Settings, keys: KeyStore, config: ApiConfig, store: GraphStore | None = None) -> None:
        self.settings, self.keys, self.config = settings, keys, config
        self._given_store = store
        self._local = not keys.configured
        #: the one-time token that confirms creating a key in local mode (None with keys)
        self.local_token = _local_token(settings) if self._local else None
        self.local_token_path = settings.home.resolve() / LOCAL_TOKEN_FILE
        self.groups: Groups
        self.jobs: JobRunner
        self.cypher_slots: QuerySlots

    def local_mode(self) -> bool:
        if self._local and self.keys.configured:
            self._local = False
        return self._local

    async def start(self) -> None:
        from graphmem.store import open_store

        store = self._given_store
        self._opened = store if store is not None else await asyncio.to_thread(open_store, self.settings)
        self.groups = Groups(self.settings, self._opened)
        self.jobs = JobRunner()
        self.cypher_slots = QuerySlots(self.config.cypher_concurrency, self.config.cypher_wait_s)
        if self.config.preload:  # load the models before taking requests, so the first search is not slow
            memory, _ = self.groups.get(self.settings.group_id)
            await asyncio.to_thread(lambda: (memory.embedder, memory.extractor))

    def stop(self) -> None:
        self.jobs.close()
        self.groups.close()
        if self._given_store is None:
            self._opened.close()

    def scoped(self, request: Request, who: Principal, requested: str | None) -> tuple[str, "Memory", threading.RLock]:
        """The group a request works in (``requested``, or the key's one group), its Memory and lock."""
        group = who.group(requested, self.settings.group_id)
        request.state.group = group
        memory, lock = self.groups.get(group)
        return group, memory, lock


def _local_token(settings: Settings) -> str:
    """A fresh token confirming key creation in local mode, written to ``<home>/api-local-token``
    (0600, in the 0700 home) so the local user can read it and nobody else can."""
    token = secrets.token_urlsafe(32)
    path = Path(settings.home) / LOCAL_TOKEN_FILE
    try:
        private_dir(settings.home)
        write_private(path, token + "\n")
    except OSError as exc:
        log.warning("cannot write the local-mode token to %s (%s); it is only in this log", path, exc.strerror or exc)
    return token


# -- dependencies ------------------------------------------------------------------------------------------
def server(request: Request) -> Server:
    found: Server = request.app.state.server
    return found


def principal(request: Request, server: Server = Depends(server)) -> Principal:
    """The caller: local mode, or the key the request carries (401 without a valid one)."""
    key = presented_key({name: request.headers.get(name, "") for name in ("authorization", "x-api-key")})
    if server.local_mode():
        request.state.key_id = "local"
        return Principal("local", None, True, local=True)
    if not key:
        raise ApiError(
            401,
            "an API key is required: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    record: KeyRecord | None = server.keys.lookup(key)
    if record is None:
        raise ApiError(401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    request.state.key_id = record.id
    return Principal(record.id, set(record.groups), record.admin)


def admin_key(who: Principal = Depends(principal)) -> Principal:
    """The caller, who must hold an admin key (or run in local mode)."""
    if not who.admin:
        raise ApiError(403, "managing keys and groups needs an admin key")
    return who
