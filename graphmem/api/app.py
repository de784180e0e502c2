"""``graphmem serve``: the retrieval REST API for RAG pipelines.

One store connection serves every tenant: the server keeps one
:class:`~graphmem.memory.Memory` per ``group_id`` over it, and every request is
confined to the groups its API key is bound to (see :mod:`graphmem.api.auth`).
Operations on one group are serialised by a lock (ingestion, forgetting and the
projection reload must not interleave with searches of that group); different
groups run in parallel.

Errors are RFC 9457 ``application/problem+json`` bodies with a ``detail`` that
says what to fix and the ``request_id`` also logged in the access log.
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations at runtime.

import asyncio
import hmac
import ipaddress
import json
import logging
import re
import secrets
import sys
import threading
import time
import uuid as uuidlib
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Optional

from graphmem.api.auth import KeyRecord, KeyStore
from graphmem.api.limits import Busy, QuerySlots
from graphmem.api.jobs import JobRunner
from graphmem.api.models import (CypherRequest, CypherResponse, Hit, IngestRequest, IngestResponse, JobView,
                                 GROUP_PATTERN, ID_PATTERN, KeyCreate, KeyView, Problem, SearchRequest, SearchResponse)
from graphmem.config import Settings
from graphmem.errors import ConfigError, GraphmemError, InputError, StoreError, StoreStoppedDuringQuery
from graphmem.store.user_cypher import CypherRefused
from graphmem.fileperm import private_dir, write_private

log = logging.getLogger("graphmem.api")
access_log = logging.getLogger("graphmem.api.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
PROBLEM = "application/problem+json"
#: local mode: the header that confirms creating a key, and the file (in the home) holding its value
LOCAL_TOKEN_HEADER = "X-Graphmem-Local-Token"
LOCAL_TOKEN_FILE = "api-local-token"


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    host = host.strip().lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def loopback_host_header(value: str) -> bool:
    """True for a Host header naming this machine by loopback: ``127.0.0.1``, ``localhost``,
    ``[::1]``, each with or without ``:PORT``. A web page that rebinds its own DNS name to
    127.0.0.1 still sends its own name, so it is refused."""
    value = value.strip().lower()
    if value.startswith("["):  # [::1] or [::1]:8000
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
        if rest and port is None:
            return False
    else:
        host, sep, port = value.partition(":")
        port = port if sep else None
    if port is not None and not (port.isdigit() and len(port) <= 5):
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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


class ApiError(Exception):
    def __init__(self, status: int, detail: str, title: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}
        self.title = title or _TITLES.get(status, "Error")


_TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 409: "Conflict",
           413: "Payload too large", 421: "Misdirected request", 422: "Unprocessable request", 500: "Internal error",
           501: "Not implemented", 503: "Unavailable"}


@dataclass
class Principal:
    """Who is calling: a key (its groups), or local mode (no keys configured: any group)."""

    key_id: str
    groups: Optional[set]  # None = any group (local mode)
    admin: bool
    local: bool = False  # local mode: no key was sent because none is configured

    def group(self, requested: Optional[str], default: str) -> str:
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

    def __init__(self, settings: Settings, store) -> None:
        self.settings, self.store = settings, store
        self._memories: dict = {}
        self._locks: dict = {}
        self._guard = threading.Lock()

    def get(self, group: str):
        from graphmem.memory import Memory

        with self._guard:
            if group not in self._memories:
                settings = self.settings.model_copy(update={"group_id": group})
                self._memories[group] = Memory(settings, store=self.store)
                self._locks[group] = threading.RLock()
            return self._memories[group], self._locks[group]

    def drop(self, group: str) -> bool:
        """Delete ``group`` from the store (its cached projection too); True if it existed."""
        from pathlib import Path

        from graphmem.retrieve.projection import remove_group_cache

        with self._guard:
            lock = self._locks.setdefault(group, threading.RLock())
        with lock:
            existed = self.store.drop_group(group)
            with self._guard:
                memory = self._memories.pop(group, None)
            if memory is not None:
                memory.close()
            remove_group_cache(Path(self.settings.home) / "cache", group)
        return existed

    def close(self) -> None:
        with self._guard:
            for memory in self._memories.values():
                memory.close()
            self._memories.clear()


# -- ASGI middleware (pure ASGI: they see every request, streamed bodies included) -----------------------
def _problem_bytes(status: int, detail: str, request_id: Optional[str]) -> bytes:
    return json.dumps({"type": "about:blank", "title": _TITLES.get(status, "Error"), "status": status,
                       "detail": detail, "request_id": request_id}).encode()


class RequestContext:
    """Request ids, the body size limit, the Host check of local mode and one structured
    access-log line per request.

    The body is read (up to the limit) before the app sees the request and then replayed to
    it, so a body too large is a 413 whether or not it announced its length (a chunked body
    that overflowed inside the app's JSON parsing would be a 400).
    """

    def __init__(self, app, max_body_bytes: int, local_mode=None, keys=None,
                 query_body_bytes: Optional[int] = None) -> None:
        self.app, self.max_body_bytes = app, max_body_bytes
        #: callable: True while the server runs in local mode (no keys)
        self.local_mode = local_mode or (lambda: False)
        #: the server's keys: a request to /v1/ without a valid one is answered 401 before its
        #: body is read (parsing a large body on the event loop would slow every tenant)
        self.keys = keys
        #: the smaller body limit of the query endpoints (search, Cypher), whose bodies are a
        #: query and a few parameters: megabytes there are only ever an attack on the parser
        self.query_body_bytes = min(query_body_bytes or max_body_bytes, max_body_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        given = headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.match(given) else uuidlib.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status_seen = {"status": 500}

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status_seen["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-request-id", request_id.encode())]
            await send(message)

        async def reply(status: int, detail: str):
            await send_with_id({"type": "http.response.start", "status": status,
                                "headers": [(b"content-type", PROBLEM.encode())]})
            await send_with_id({"type": "http.response.body", "body": _problem_bytes(status, detail, request_id)})

        path = scope.get("path", "")
        limit = self.query_body_bytes if path in QUERY_PATHS else self.max_body_bytes
        too_large = f"the request body is larger than {limit} bytes; split it"
        try:
            host = headers.get("host", "")
            if self.local_mode() and not loopback_host_header(host):
                await reply(421, f"local mode (no API keys configured) answers only requests addressed to "
                                 f"127.0.0.1, localhost or [::1], not Host {host[:100]!r}: this protects against "
                                 "DNS rebinding (a web page pointing its own name at this machine). To serve other "
                                 "host names, configure API keys")
                return
            presented = _presented_key(headers)
            if path.startswith("/v1/") and self.keys is not None and self.keys.configured \
                    and (not presented or self.keys.lookup(presented) is None):
                detail = ("unknown or revoked API key" if presented else
                          "an API key is required: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'")
                # connection: close, so the server drops the unread body instead of reading it
                # off the socket to keep the connection alive
                await send_with_id({"type": "http.response.start", "status": 401,
                                    "headers": [(b"content-type", PROBLEM.encode()), (b"www-authenticate", b"Bearer"),
                                                (b"connection", b"close")]})
                await send_with_id({"type": "http.response.body", "body": _problem_bytes(401, detail, request_id)})
                return
            length = headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > limit):
                await reply(413, too_large)
                return
            # the body is joined into one message: a client sending it in millions of tiny
            # chunks costs one list of parts, not millions of messages to replay
            parts, received, gone = [], 0, None
            while True:
                message = await receive()
                if message["type"] != "http.request":  # the client went away
                    gone = message
                    break
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > limit:
                    await reply(413, too_large)
                    return
                parts.append(chunk)
                if not message.get("more_body", False):
                    break
            messages = [gone] if gone is not None else [
                {"type": "http.request", "body": b"".join(parts), "more_body": False}]
            del parts

            async def replay():
                return messages.pop() if messages else await receive()

            await self.app(scope, replay, send_with_id)
        finally:
            access_log.info(json.dumps({
                "request_id": request_id, "method": scope.get("method"), "path": scope.get("path"),
                "status": status_seen["status"], "ms": round((time.perf_counter() - started) * 1000, 2),
                "key": state.get("key_id"), "group": state.get("group"),
                "client": (scope.get("client") or ["", 0])[0]}))


#: endpoints whose bodies are a query and its parameters (the smaller body limit)
QUERY_PATHS = frozenset({"/v1/search", "/v1/cypher"})


def _presented_key(headers: dict) -> str:
    """The API key a request carries (``Authorization: Bearer`` or ``X-API-Key``), or ''."""
    header = headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else headers.get("x-api-key", "")


# -- the app ---------------------------------------------------------------------------------------------------
def create_app(settings: Optional[Settings] = None, keys: Optional[KeyStore] = None,
               config: Optional[ApiConfig] = None, store=None):
    """The FastAPI app. ``store``: an open store to serve (else one is opened from ``settings``)."""
    from fastapi import Depends, FastAPI, Path, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.middleware.cors import CORSMiddleware
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    settings = settings or Settings.from_env()
    keys = keys if keys is not None else KeyStore(env={})
    config = config or ApiConfig()
    state: dict = {}
    # Local mode (no keys) is decided at start. It ends for good once a key exists (created
    # through the admin API): from then on every request needs a key, even if all keys are
    # later revoked, so a server started with keys never falls back to serving without them.
    local = {"on": not keys.configured}
    local_token = _local_token(settings) if local["on"] else None

    def local_mode() -> bool:
        if local["on"] and keys.configured:
            local["on"] = False
        return local["on"]

    @asynccontextmanager
    async def lifespan(app):
        from graphmem.store import open_store

        opened = store if store is not None else await asyncio.to_thread(open_store, settings)
        state["groups"] = Groups(settings, opened)
        state["jobs"] = JobRunner()
        state["cypher_slots"] = QuerySlots(config.cypher_concurrency, config.cypher_wait_s)
        if config.preload:  # load the models before taking requests, so the first search is not slow
            memory, _ = state["groups"].get(settings.group_id)
            await asyncio.to_thread(lambda: (memory.embedder, memory.extractor))
        try:
            yield
        finally:
            state["jobs"].close()
            state["groups"].close()
            if store is None:
                opened.close()

    app = FastAPI(title="graphmem", version="1", lifespan=lifespan,
                  summary="Temporal knowledge-graph memory: multi-hop retrieval for RAG pipelines",
                  description="Authenticate with `Authorization: Bearer KEY` or `X-API-Key: KEY`. Every read and "
                              "write is confined to the groups the key is bound to. Errors are "
                              "`application/problem+json`.",
                  responses={400: {"model": Problem}, 401: {"model": Problem}, 403: {"model": Problem},
                             413: {"model": Problem}, 422: {"model": Problem}})
    if config.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=config.cors_origins, allow_methods=["*"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Request-ID"],
                           expose_headers=["X-Request-ID"])
    app.add_middleware(RequestContext, max_body_bytes=config.max_body_bytes, local_mode=local_mode, keys=keys,
                       query_body_bytes=config.query_body_bytes)
    #: the one-time token that confirms creating a key in local mode (None with keys)
    app.state.local_token = local_token
    app.state.local_token_path = settings.home.resolve() / LOCAL_TOKEN_FILE

    # -- errors ---------------------------------------------------------------------------
    def problem(request: Request, status: int, detail: str, title: Optional[str] = None,
                headers: Optional[dict] = None, errors: Optional[list] = None) -> JSONResponse:
        body = {"type": "about:blank", "title": title or _TITLES.get(status, "Error"), "status": status,
                "detail": detail, "request_id": request.scope.get("state", {}).get("request_id")}
        if errors is not None:
            body["errors"] = errors
        return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM)

    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, exc: ApiError):
        return problem(request, exc.status, exc.detail, exc.title, exc.headers)

    @app.exception_handler(Busy)
    async def on_busy(request: Request, exc: Busy):
        return problem(request, 429, str(exc), "Too many requests", {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError):
        errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
                  for e in exc.errors()]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(p for p in first["loc"] if p != "body") or "request"
        return problem(request, 422, f"{where}: {first['msg']}", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException):
        return problem(request, exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(GraphmemError)
    async def on_graphmem(request: Request, exc: GraphmemError):
        if isinstance(exc, StoreError):
            return problem(request, 503, f"the graph store failed: {exc}")
        return problem(request, 422 if isinstance(exc, InputError) else 400, str(exc))

    @app.exception_handler(Exception)
    async def on_bug(request: Request, exc: Exception):
        log.exception("unhandled error (request %s)", request.scope.get("state", {}).get("request_id"))
        return problem(request, 500, f"internal error ({type(exc).__name__}); the request id is in the server log")

    # -- auth -----------------------------------------------------------------------------------
    def principal(request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        key = header[7:].strip() if header.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
        if local_mode():
            request.state.key_id = "local"
            return Principal("local", None, True, local=True)
        if not key:
            raise ApiError(401, "an API key is required: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
                           headers={"WWW-Authenticate": "Bearer"})
        record: Optional[KeyRecord] = keys.lookup(key)
        if record is None:
            raise ApiError(401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
        request.state.key_id = record.id
        return Principal(record.id, set(record.groups), record.admin)

    def scoped(request: Request, who: Principal, requested: Optional[str]):
        group = who.group(requested, settings.group_id)
        request.state.group = group
        memory, lock = state["groups"].get(group)
        return group, memory, lock

    # -- search ------------------------------------------------------------------------------------
    @app.post("/v1/search", response_model=SearchResponse, tags=["retrieval"])
    def search(body: SearchRequest, request: Request, who: Principal = Depends(principal)):
        """The ``k`` passages that best answer ``query``, with the facts and entities that led to them."""
        group, memory, lock = scoped(request, who, body.group)
        started = time.perf_counter()
        with lock:
            results = memory.search(body.query, body.k, mode=body.mode, as_of=_utc(body.as_of))
        hits = [Hit(**r.model_dump()) for r in results]
        return SearchResponse(group=group, mode=body.mode, took_ms=round((time.perf_counter() - started) * 1000, 2),
                              results=hits)

    # -- ingestion ------------------------------------------------------------------------------------
    @app.post("/v1/ingest", response_model=IngestResponse, tags=["ingestion"],
              responses={202: {"model": IngestResponse, "description": "accepted as a background job"}})
    def ingest(body: IngestRequest, request: Request, who: Principal = Depends(principal)):
        """Ingest documents and/or dialogues. Large requests (or ``background: true``) run as a job:
        the answer is 202 with a job id to poll at ``GET /v1/jobs/{id}``."""
        group, memory, lock = scoped(request, who, body.group)
        if not body.documents and not body.conversations:
            raise ApiError(422, "nothing to ingest: give 'documents' and/or 'conversations'")
        _check_unique([d.name for d in body.documents] + [c.name for c in body.conversations])
        documents = [_document(d) for d in body.documents]
        conversations = [_conversation(c) for c in body.conversations]
        items = len(documents) + sum(len(c.turns) for c in conversations)
        chars = sum(len(d.text) for d in documents) + sum(len(t.text) for c in conversations for t in c.turns)
        background = body.background if body.background is not None else (
            items > config.background_items or chars > config.background_chars)

        def work(progress) -> dict:
            total = _empty_report()
            for start in range(0, len(documents), config.job_step):
                chunk = documents[start:start + config.job_step]
                with lock:
                    _add(total, memory.ingest_documents(chunk))
                progress(len(chunk))
            for conversation in conversations:
                with lock:
                    _add(total, _ingest_conversations(memory, [conversation]))
                progress(len(conversation.turns))
            return total

        if background:
            job = state["jobs"].submit(group, len(documents) + sum(len(c.turns) for c in conversations), work)
            return JSONResponse(IngestResponse(group=group, job=job.id).model_dump(), status_code=202,
                                headers={"Location": f"/v1/jobs/{job.id}"})
        return IngestResponse(group=group, report=work(lambda n: None))

    @app.get("/v1/jobs/{job_id}", response_model=JobView, tags=["ingestion"])
    def job_status(job_id: Annotated[str, Path(pattern=ID_PATTERN)], request: Request, who: Principal = Depends(principal)):
        """Progress of a background ingestion (``done``/``total`` documents and turns) and its report."""
        job = state["jobs"].get(job_id)
        if job is None or (who.groups is not None and job.group not in who.groups):
            raise ApiError(404, f"no job {job_id!r} (jobs are kept for an hour after they finish)")
        return job.view()

    # -- reading the graph -------------------------------------------------------------------------------
    @app.get("/v1/episodes/{uuid}", tags=["graph"])
    def episode(uuid: Annotated[str, Path(pattern=ID_PATTERN)], request: Request, group: Optional[str] = Query(None, pattern=GROUP_PATTERN),
                who: Principal = Depends(principal)) -> dict:
        """One episode (a passage or a dialogue turn) exactly as received, with its source."""
        group, memory, lock = scoped(request, who, group)
        found = memory.episodes([uuid]).get(uuid)
        if found is None:
            raise ApiError(404, f"no episode {uuid!r} in group {group!r}")
        return _jsonable({**found, "occurred_at": _iso(found.get("occurred_at")),
                          "ingested_at": _iso(found.get("ingested_at")), "group": group})

    @app.get("/v1/entities/{uuid}", tags=["graph"])
    def entity(uuid: Annotated[str, Path(pattern=ID_PATTERN)], request: Request, group: Optional[str] = Query(None, pattern=GROUP_PATTERN),
               who: Principal = Depends(principal)) -> dict:
        """One entity: name, type, aliases, how many episodes mention it, and its current facts."""
        group, memory, lock = scoped(request, who, group)
        row = memory.entity(uuid)
        if row is None:
            raise ApiError(404, f"no entity {uuid!r} in group {group!r}")
        found = {**row, "group": group}
        with lock:  # its current facts (history: GET /v1/facts?history=true)
            found["facts"] = [json.loads(f.model_dump_json()) for f in memory.facts(uuid)]
        return _jsonable(found)

    @app.get("/v1/facts", tags=["graph"])
    def facts(request: Request, entity: str = Query(..., min_length=1, max_length=1000, pattern=ID_PATTERN),
              as_of: Optional[str] = Query(None, description="ISO date/time: the facts true then"),
              history: bool = Query(False, description="also facts that were later contradicted"),
              group: Optional[str] = Query(None, pattern=GROUP_PATTERN),
              who: Principal = Depends(principal)) -> dict:
        """The facts about an entity (name, alias or uuid) as a timeline, oldest first."""
        group, memory, lock = scoped(request, who, group)
        when = _parse_when(as_of, "as_of")
        try:
            with lock:
                records = memory.facts(entity, as_of=when, history=history)
        except InputError as exc:  # no entity of that name in this group
            raise ApiError(404, str(exc)) from None
        return {"group": group, "entity": entity, "facts": [json.loads(r.model_dump_json()) for r in records]}

    @app.delete("/v1/sources/{uuid:path}", tags=["ingestion"])
    def delete_source(uuid: Annotated[str, Path(pattern=ID_PATTERN)], request: Request, group: Optional[str] = Query(None, pattern=GROUP_PATTERN),
                      who: Principal = Depends(principal)) -> dict:
        """Forget a source (by uuid or name): its episodes, the facts only they support, orphaned entities."""
        group, memory, lock = scoped(request, who, group)
        with lock:
            removed = _forget(memory, source=uuid)
        return {"group": group, "source": uuid, "removed": removed}

    @app.delete("/v1/episodes/{uuid}", tags=["ingestion"])
    def delete_episode(uuid: Annotated[str, Path(pattern=ID_PATTERN)], request: Request, group: Optional[str] = Query(None, pattern=GROUP_PATTERN),
                       who: Principal = Depends(principal)) -> dict:
        """Forget one episode and the facts only it supports."""
        group, memory, lock = scoped(request, who, group)
        with lock:
            removed = _forget(memory, episode=uuid)
        return {"group": group, "episode": uuid, "removed": removed}

    @app.post("/v1/cypher", response_model=CypherResponse, tags=["graph"],
              responses={429: {"model": Problem}})
    def cypher(body: CypherRequest, request: Request, who: Principal = Depends(principal)):
        """Read-only Cypher in the key's group. Each group lives apart in the store (its own
        FalkorDB graph, or its own Neo4j database), so a query sees that group whatever it says;
        ``$group_id`` is bound to it. Before the store sees a query it is checked against budgets
        (at most 20,000 characters and 10 levels of nesting); at most ``limit`` rows are read
        (the limit is written into the query), and it stops after ``timeout_ms``. Writes,
        LOAD CSV, USE and administration commands are refused, and CALL is limited to the
        read procedures the error lists. One query per key runs at a time (429 otherwise)."""
        group, memory, lock = scoped(request, who, body.group)
        if "group_id" in body.params:
            raise ApiError(422, "params: 'group_id' is set by the server from your key; leave it out")
        single_tenant = len({g for record in keys.list() for g in record.groups}) <= 1
        if memory.isolation == "property" and not (who.admin or who.groups is None or single_tenant):
            raise ApiError(403, "user Cypher is off for tenant keys on this store: its groups share one Neo4j "
                                "database, so a query could reach other groups. Use the embedded store or Neo4j "
                                "with one database per group (GRAPHMEM_NEO4J_DATABASE_PER_GROUP=true), or ask an "
                                "admin to run it")
        params = {**body.params, "group_id": group}
        timeout_ms = min(body.timeout_ms, config.cypher_timeout_ms)
        with state["cypher_slots"].take(who.key_id):
            try:
                columns, rows = memory.cypher(body.query, params, write=False, timeout_ms=timeout_ms,
                                              max_rows=body.limit + 1)
            except CypherRefused as exc:
                raise ApiError(400, f"query refused: {exc}") from None
            except StoreStoppedDuringQuery:
                state["cypher_slots"].pause(who.key_id, config.cypher_crash_pause_s)
                raise
            except StoreError as exc:
                raise ApiError(400, f"the query failed: {exc}") from None
        rows = _jsonable(rows)
        return CypherResponse(group=group, columns=[str(c) for c in columns], rows=rows[:body.limit],
                              truncated=len(rows) > body.limit)

    # -- keys ---------------------------------------------------------------------------------------------
    def admin(who: Principal = Depends(principal)) -> Principal:
        if not who.admin:
            raise ApiError(403, "managing keys and groups needs an admin key")
        return who

    @app.get("/v1/admin/keys", response_model=list[KeyView], tags=["admin"])
    def list_keys(who: Principal = Depends(admin)):
        """Every key (id, name, groups, admin); never the key or its hash."""
        return [r.public() for r in keys.list()]

    @app.post("/v1/admin/keys", response_model=KeyView, status_code=201, tags=["admin"])
    def create_key(body: KeyCreate, request: Request, who: Principal = Depends(admin)):
        """Create a key bound to ``groups``; the plain key is in the answer, once.

        In local mode (no keys yet) the first key ends local mode, so it needs the one-time
        token `graphmem serve` printed at start (also in ``<home>/api-local-token``), sent as
        ``X-Graphmem-Local-Token``: a web page the user visits cannot know it."""
        if who.local:
            given = request.headers.get(LOCAL_TOKEN_HEADER, "").encode("utf-8", "replace")
            if local_token is None or not hmac.compare_digest(given, local_token.encode()):
                raise ApiError(403, f"creating a key in local mode needs the one-time token that `graphmem serve` "
                                    f"printed at start and wrote to {app.state.local_token_path}: send it as "
                                    f"'{LOCAL_TOKEN_HEADER}: TOKEN' (or create keys with `graphmem keys add`)")
        key, record = keys.add(body.groups, admin=body.admin, name=body.name)
        return {**record.public(), "key": key}

    @app.get("/v1/admin/groups", tags=["admin"])
    def list_groups(who: Principal = Depends(admin)) -> dict:
        """Every group the store holds."""
        return {"groups": state["groups"].store.groups()}

    @app.delete("/v1/admin/groups/{group}", tags=["admin"])
    def drop_group(group: Annotated[str, Path(pattern=GROUP_PATTERN)], who: Principal = Depends(admin)) -> dict:
        """Delete a group and everything in it (on the embedded store: its graph)."""
        if not state["groups"].drop(group):
            raise ApiError(404, f"no group {group!r}")
        return {"dropped": group}

    @app.delete("/v1/admin/keys/{key_id}", tags=["admin"])
    def revoke_key(key_id: Annotated[str, Path(pattern=ID_PATTERN)], who: Principal = Depends(admin)) -> dict:
        """Revoke a key: requests with it fail from now on."""
        if not keys.revoke(key_id):
            raise ApiError(404, f"no key {key_id!r}")
        return {"revoked": key_id}

    # -- health -------------------------------------------------------------------------------------------
    @app.get("/healthz", tags=["health"])
    def healthz() -> dict:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz(request: Request):
        """Readiness: the store answers (503 otherwise)."""
        try:
            state["groups"].store.run("revision_get", group_id=settings.group_id)
        except Exception as exc:
            return problem(request, 503, f"the graph store is not reachable: {exc}")
        return {"status": "ready", "store": getattr(state["groups"].store, "dialect", "?"),
                "jobs_pending": state["jobs"].pending(), "auth": "keys" if keys.configured else "local"}

    return app


# -- helpers -------------------------------------------------------------------------------------------------------
def _utc(value):
    from graphmem.timeutil import ensure_utc

    return ensure_utc(value) if value is not None else None


def _iso(ms):
    from graphmem.timeutil import from_ms

    value = from_ms(ms) if isinstance(ms, (int, float)) else None
    return value.isoformat() if value else None


def _parse_when(text, field_name: str):
    if text is None:
        return None
    from graphmem.timeutil import parse_when

    try:
        return parse_when(text)
    except ValueError as exc:
        raise ApiError(422, f"{field_name}: {exc}") from None
    except OverflowError:  # a valid date that leaves the calendar in UTC (0001-01-01T00:00+14:00)
        raise ApiError(422, f"{field_name}: {text!r} is out of range: in UTC it falls outside the years 1-9999") from None


def _jsonable(value):
    """Store values as JSON values: nodes are already dicts; NaN/inf become null, anything unknown text."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def _check_unique(names: list[str]) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise ApiError(422, f"source name {name!r} appears twice in one request; names identify sources")
        seen.add(name)


def _document(d):
    from graphmem.ingest.readers import Document

    return Document(name=d.name, text=d.text, title=d.title, date=_utc(d.date), metadata=dict(d.metadata),
                    uri=f"api:{d.name}")


def _conversation(c):
    from graphmem.ingest.dialogue import Conversation, Turn

    turns = [Turn(speaker=t.speaker, text=t.text, time=_utc(t.time), turn_id=t.id, session=t.session) for t in c.turns]
    return Conversation(name=c.name, turns=turns, title=c.title, uri=f"api:{c.name}")


def _ingest_conversations(memory, conversations):
    return memory.ingest_conversations(conversations)


def _forget(memory, *, source=None, episode=None) -> dict:
    try:
        return memory.forget(source=source, episode=episode)
    except InputError as exc:
        raise ApiError(404, str(exc)) from None


def _empty_report() -> dict:
    return {"documents": 0, "skipped": 0, "replaced": 0, "passages": 0, "entities": 0, "facts": 0,
            "seconds": 0.0, "errors": []}


def _add(total: dict, report) -> None:
    for key in ("documents", "skipped", "replaced", "passages", "entities", "facts"):
        total[key] += int(getattr(report, key, 0) or 0)
    total["seconds"] = round(total["seconds"] + float(getattr(report, "seconds", 0.0) or 0.0), 3)
    total["errors"].extend(getattr(report, "errors", []) or [])


def _local_token(settings: Settings) -> str:
    """A fresh token confirming key creation in local mode, written to ``<home>/api-local-token``
    (0600, in the 0700 home) so the local user can read it and nobody else can."""
    token = secrets.token_urlsafe(32)
    path = settings.home / LOCAL_TOKEN_FILE
    try:
        private_dir(settings.home)
        write_private(path, token + "\n")
    except OSError as exc:
        log.warning("cannot write the local-mode token to %s (%s); it is only in this log", path, exc.strerror or exc)
    return token


def check_bind(host: str, keys: KeyStore) -> None:
    """Local mode (no keys) serves loopback only; so do servers whose environment holds a weak key."""
    if not keys.configured:
        if not is_loopback(host):
            raise ConfigError(f"no API keys are configured, so graphmem serve only binds 127.0.0.1 (not {host}); "
                              "create keys with `graphmem keys add --group NAME --keys FILE` and pass --keys FILE")
        log.warning("no API keys configured: local mode, any local process may read and write every group")
        return
    for where, why in keys.weak:
        if not is_loopback(host):
            raise ConfigError(f"{where} is a weak key ({why}), so graphmem serve will not bind {host}: use a key of "
                              "24 or more random characters, e.g. one made by `graphmem keys add --keys FILE "
                              "--group NAME` (or `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
        log.warning("%s is a weak key (%s): fine on loopback, refused beyond it", where, why)


def serve(settings: Settings, keys: KeyStore, config: ApiConfig, host: str = "127.0.0.1", port: int = 8000,
          log_level: str = "info") -> None:
    """Run the API in this process until SIGINT/SIGTERM."""
    import uvicorn

    check_bind(host, keys)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = create_app(settings, keys, config)
    if app.state.local_token is not None:  # on the terminal of who started it, whatever the log level
        print(f"graphmem serve: local mode. To create the first API key through POST /v1/admin/keys, send "
              f"'{LOCAL_TOKEN_HEADER}: {app.state.local_token}' (also in {app.state.local_token_path})",
              file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, timeout_graceful_shutdown=30)
