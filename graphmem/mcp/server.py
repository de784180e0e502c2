"""The MCP server: graphmem's memory as tools and resources for agents.

Over stdio (desktop and IDE agents start ``graphmem mcp`` themselves) it serves one group,
``--group`` or ``GRAPHMEM_GROUP_ID``. Over streamable HTTP (``--http HOST:PORT``) it takes
the API keys of ``graphmem serve`` (``--keys FILE``, ``GRAPHMEM_API_KEYS``...): every HTTP
request carries one (``Authorization: Bearer KEY`` or ``X-API-Key``), each tool call works
in that key's group (a key of several groups names one in the ``X-Graphmem-Group`` header),
and a request without a valid key is answered 401 before its body is read.

Every failure reaches the agent as a tool error (``isError``) that says what happened:
bad input, a store that stopped (it restarts on its own; try again), or a bug. A write is
answered only after it was read back from the store.
"""

from __future__ import annotations

import contextvars
import json
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import Field

from graphmem.errors import GraphmemError, InputError, StoreError
from graphmem.mcp import service

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer
    from starlette.types import ASGIApp

    from graphmem.api.auth import KeyStore
    from graphmem.api.server import Groups
    from graphmem.config import Settings
    from graphmem.memory import Memory
    from graphmem.store.base import GraphStore

log = logging.getLogger("graphmem.mcp")
#: the header naming the group, for a key bound to several
GROUP_HEADER = "x-graphmem-group"
#: the HTTP request of the message being handled (None over stdio)
_REQUEST: contextvars.ContextVar[Any] = contextvars.ContextVar("graphmem_mcp_request", default=None)
T = TypeVar("T")

INSTRUCTIONS = """\
graphmem is a long-term memory: a temporal knowledge graph of everything it was given.
Store what is worth remembering with add_memory (a note, or a dialogue turn with speaker
and time) or add_document; find it again with search_memory, which answers multi-hop
questions with passages and the facts that led to them. get_facts gives an entity's facts
as a timeline (now, or as of a date); get_entity its names, neighbours and passages.
forget removes a source or an episode; list_sources shows what is stored.
Times are ISO 8601 (2024-05-01 or 2024-05-01T10:00:00+02:00; no zone = UTC)."""


class Tenancy:
    """Which group's Memory a message works on: the server's group (stdio), or the group of
    the API key the HTTP request carries, each with its lock (one writer per group)."""

    def __init__(self, settings: Settings, keys: KeyStore | None, store: GraphStore | None = None) -> None:
        self.settings, self.keys = settings, keys
        self._given_store = store
        self._groups: Groups | None = None
        self._store: GraphStore | None = None
        self._open_lock = threading.Lock()

    @property
    def over_http(self) -> bool:
        return self.keys is not None

    def groups(self) -> Groups:
        with self._open_lock:
            if self._groups is None:
                from graphmem.api.server import Groups
                from graphmem.store import open_store

                self._store = self._given_store if self._given_store is not None else open_store(self.settings)
                self._groups = Groups(self.settings, self._store)
            return self._groups

    def group_of(self, request: Any) -> str:
        """The group of this message: the key's (HTTP) or the server's (stdio)."""
        if self.keys is None:
            return self.settings.group_id
        from graphmem.api.errors import ApiError
        from graphmem.api.middleware import presented_key
        from graphmem.api.server import Principal

        headers: Mapping[str, str] = request.headers if request is not None else {}
        requested = headers.get(GROUP_HEADER) or None
        try:
            if not self.keys.configured:  # local mode: loopback only (graphmem.api.app.check_bind)
                return Principal("local", None, True, local=True).group(requested, self.settings.group_id)
            record = self.keys.lookup(presented_key({k: headers.get(k, "") for k in ("authorization", "x-api-key")}))
            if record is None:
                raise PermissionError("unknown or revoked API key")
            return Principal(record.id, set(record.groups), record.admin).group(requested, self.settings.group_id)
        except ApiError as exc:
            raise PermissionError(exc.detail) from None

    def close(self) -> None:
        with self._open_lock:
            if self._groups is not None:
                self._groups.close()
            if self._store is not None and self._given_store is None:
                self._store.close()
            self._groups = self._store = None

    def preload(self) -> None:
        """Open the store and load the models before the first call, so it is not slow (under
        the group's lock: a call that comes meanwhile waits for it instead of loading twice)."""
        memory, lock = self.groups().get(self.settings.group_id)
        with lock:
            _ = memory.embedder, memory.extractor

    def preload_in_background(self) -> None:
        """:meth:`preload` in a thread; a failure is logged (the first call then reports it)."""

        def load() -> None:
            try:
                self.preload()
            except Exception:
                log.exception("graphmem mcp: could not open the store or load the models ahead of the first call")

        threading.Thread(target=load, name="graphmem-mcp-preload", daemon=True).start()


async def _run(tenancy: Tenancy, work: Callable[[Memory, str], T]) -> T:
    """``work(memory, group)`` in a worker thread under the group's lock, failures as tool errors."""
    import anyio
    from mcp.server.mcpserver.exceptions import ToolError

    request = _REQUEST.get()

    def call() -> T:
        group = tenancy.group_of(request)
        memory, lock = tenancy.groups().get(group)
        with lock:
            return work(memory, group)

    try:
        return await anyio.to_thread.run_sync(call)
    except PermissionError as exc:
        raise ToolError(f"not allowed: {exc}") from None
    except InputError as exc:
        raise ToolError(f"invalid input: {exc}") from None
    except StoreError as exc:
        raise ToolError(
            f"the graph store failed: {exc}. Nothing is acknowledged from this call; "
            "an embedded store restarts on its own, so try again shortly"
        ) from None
    except GraphmemError as exc:
        raise ToolError(str(exc)) from None
    except Exception as exc:  # a bug: the agent hears of it, the log has the traceback
        log.exception("MCP tool call failed")
        raise ToolError(f"internal error ({type(exc).__name__}): {exc}") from None


async def _remember_request(ctx: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
    """Middleware: keep the HTTP request of the message for the tools (they read its key)."""
    token = _REQUEST.set(ctx.request)
    try:
        return await call_next(ctx)
    finally:
        _REQUEST.reset(token)


Text = Annotated[str, Field(description="what to remember (plain text)")]
When = Annotated[str | None, Field(description="ISO 8601 date or date-time, e.g. 2024-05-01 or 2024-05-01T10:00:00Z")]
SourceName = Annotated[
    str | None,
    Field(
        max_length=1000,
        description="name identifying this memory (a new unique one when left out); "
        "adding again under the same name replaces what it held",
    ),
]


def build_server(settings: Settings, keys: KeyStore | None = None, store: GraphStore | None = None) -> MCPServer:
    """The MCP server over one store. ``keys``: serve over HTTP with these API keys
    (None: stdio, one group: ``settings.group_id``)."""
    from mcp.server.mcpserver import MCPServer

    tenancy = Tenancy(settings, keys, store)
    server: MCPServer = MCPServer(
        "graphmem",
        title="graphmem memory",
        instructions=INSTRUCTIONS,
        middleware=[_remember_request],
        log_level="WARNING",
    )
    server.graphmem_tenancy = tenancy  # type: ignore[attr-defined]
    _add_write_tools(server, tenancy)
    _add_read_tools(server, tenancy)
    _add_resources(server, tenancy)
    return server


def _add_write_tools(server: MCPServer, tenancy: Tenancy) -> None:
    @server.tool(structured_output=True)
    async def add_memory(
        text: Text,
        speaker: Annotated[
            str | None, Field(max_length=80, description="who said it: stores the text as a dialogue turn")
        ] = None,
        time: When = None,
        source: SourceName = None,
        title: Annotated[str, Field(max_length=1000, description="a short title")] = "",
    ) -> dict[str, Any]:
        """Remember a note, or a dialogue turn (give speaker, and time when it was said).

        Entities and facts are extracted from the text; `time` dates the facts (their
        valid_at). Answers only once the memory is stored: with its source name and
        episode uuids (what forget takes). Errors say what to fix."""
        return await _run(
            tenancy,
            lambda m, g: service.add_memory(m, g, text, speaker=speaker, time=time, source=source, title=title),
        )

    @server.tool(structured_output=True)
    async def add_document(
        path: Annotated[
            str | None,
            Field(description="a .txt, .md or .jsonl file on the server's machine (stdio only); or give text"),
        ] = None,
        text: Annotated[str | None, Field(description="the document's text; or give path")] = None,
        name: SourceName = None,
        title: Annotated[str, Field(max_length=1000, description="the document's title")] = "",
        date: When = None,
    ) -> dict[str, Any]:
        """Ingest a whole document, split into passages: a file (path) or its text.

        `date` is when it was written (the default valid_at of its facts). Answers once
        stored, with the source name and episode uuids."""
        return await _run(
            tenancy,
            lambda m, g: service.add_document(
                m,
                g,
                path=path,
                text=text,
                name=name,
                title=title,
                date=date,
                paths_allowed=not tenancy.over_http,
            ),
        )

    @server.tool(structured_output=True)
    async def forget(
        source: Annotated[str | None, Field(description="a source name or uuid (see list_sources)")] = None,
        episode: Annotated[str | None, Field(description="one episode uuid (from add_memory or search)")] = None,
    ) -> dict[str, Any]:
        """Delete a source or one episode (exactly one of them), and every fact only it supports.

        Facts other episodes also assert stay; a fact the forgotten one had superseded
        becomes current again. Answers with counts of what was removed."""
        return await _run(tenancy, lambda m, g: service.forget(m, g, source=source, episode=episode))


def _add_read_tools(server: MCPServer, tenancy: Tenancy) -> None:
    @server.tool(structured_output=True)
    async def search_memory(
        query: Annotated[str, Field(min_length=1, max_length=4000, description="the question, in words")],
        k: Annotated[int, Field(ge=1, le=100, description="passages to return")] = 5,
        as_of: Annotated[
            str | None, Field(description="ISO date/time: answer as the memory stood then (facts valid at that time)")
        ] = None,
    ) -> dict[str, Any]:
        """Find the passages that best answer a question, multi-hop through the knowledge graph.

        Each hit has its text (content), score, provenance (source, title, occurred_at,
        speaker, turn_id, uuid) and the entities and facts that led to it."""
        return await _run(tenancy, lambda m, g: service.search(m, g, query, k, as_of))

    @server.tool(structured_output=True)
    async def get_facts(
        entity: Annotated[str, Field(min_length=1, max_length=1000, description="an entity's name, alias or uuid")],
        as_of: Annotated[str | None, Field(description="ISO date/time: the facts true then (default: now)")] = None,
        history: Annotated[bool, Field(description="also the facts that were later superseded")] = False,
    ) -> dict[str, Any]:
        """The facts about an entity as a timeline, oldest first: subject, predicate, object,
        text, valid_at / invalid_at (world time) and the episodes asserting each."""
        return await _run(tenancy, lambda m, g: service.facts(m, g, entity, as_of, history))

    @server.tool(structured_output=True)
    async def get_entity(
        entity: Annotated[str, Field(min_length=1, max_length=1000, description="an entity's name, alias or uuid")],
        passages: Annotated[int, Field(ge=0, le=service.MAX_PASSAGES, description="mentioning passages")] = 5,
    ) -> dict[str, Any]:
        """One entity: its name, type, aliases, summary, its neighbours through current facts
        (with the predicate and direction) and the newest passages that mention it."""
        return await _run(tenancy, lambda m, g: service.entity(m, g, entity, passages))

    @server.tool(structured_output=True)
    async def list_sources() -> dict[str, Any]:
        """Every source stored in this memory: name, uuid, kind, state and episode count."""
        return await _run(tenancy, service.sources)


def _add_resources(server: MCPServer, tenancy: Tenancy) -> None:
    from mcp.server.mcpserver.exceptions import ResourceError, ToolError

    async def read(work: Callable[[Memory, str], dict[str, Any]]) -> str:
        try:
            return json.dumps(await _run(tenancy, work), indent=1)
        except ToolError as exc:
            raise ResourceError(str(exc)) from None

    @server.resource("graphmem://stats", name="stats", mime_type="application/json")
    async def stats() -> str:
        """Counts of this memory: sources, episodes, entities, facts, mentions, synonyms."""
        return await read(service.stats)

    @server.resource("graphmem://episodes/recent", name="recent_episodes", mime_type="application/json")
    async def recent_episodes() -> str:
        """The 20 most recently stored episodes, newest first, with their provenance."""
        return await read(lambda m, g: service.recent_episodes(m, g, 20))


# -- HTTP -----------------------------------------------------------------------------------------
class KeyCheck:
    """ASGI middleware: with keys configured, a request without a valid one is answered 401
    before its body is read (as ``graphmem serve`` answers /v1/)."""

    def __init__(self, app: ASGIApp, keys: KeyStore) -> None:
        self.app, self.keys = app, keys

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from graphmem.api.middleware import presented_key

        if scope["type"] == "http" and self.keys.configured:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            key = presented_key(headers)
            if not key or self.keys.lookup(key) is None:
                detail = (
                    "unknown or revoked API key"
                    if key
                    else "an API key is required: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"
                )
                body = json.dumps({"title": "Unauthorized", "status": 401, "detail": detail}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/problem+json"),
                            (b"www-authenticate", b"Bearer"),
                            (b"connection", b"close"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def http_app(server: MCPServer, host: str = "127.0.0.1", max_body_bytes: int = service.MAX_TEXT_BYTES) -> ASGIApp:
    """The streamable HTTP app at ``/mcp``: the key check, the REST API's request context
    (request ids, body limit, the Host check of local mode, access log) and the SDK's app."""
    from graphmem.api.middleware import RequestContext

    tenancy: Tenancy = server.graphmem_tenancy  # type: ignore[attr-defined]
    assert tenancy.keys is not None, "build_server(..., keys=...) for HTTP"
    keys = tenancy.keys
    inner = server.streamable_http_app(host=host, max_request_body_size=max_body_bytes + 64 * 1024)
    guarded = KeyCheck(inner, keys)
    app = RequestContext(guarded, max_body_bytes + 64 * 1024, local_mode=lambda: not keys.configured)
    outer = _Lifespan(app, inner, tenancy)
    return outer


class _Lifespan:
    """Passes lifespan events to the SDK's app (its session manager) and closes the store after."""

    def __init__(self, app: Any, inner: Any, tenancy: Tenancy) -> None:
        self.app, self.inner, self.tenancy = app, inner, tenancy

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            try:
                await self.inner(scope, receive, send)
            finally:
                self.tenancy.close()
            return
        await self.app(scope, receive, send)


Transport = Literal["stdio", "http"]


def run_stdio(settings: Settings) -> None:
    """Serve one group over stdin/stdout until the client closes them."""
    import anyio

    server = build_server(settings)
    tenancy: Tenancy = server.graphmem_tenancy  # type: ignore[attr-defined]
    try:
        tenancy.preload_in_background()  # the client's handshake is answered at once meanwhile
        anyio.run(server.run_stdio_async)
    finally:
        tenancy.close()


def run_http(settings: Settings, keys: KeyStore, host: str, port: int, log_level: str = "warning") -> None:
    """Serve streamable HTTP at http://HOST:PORT/mcp until SIGINT/SIGTERM."""
    import uvicorn

    from graphmem.api.app import check_bind

    check_bind(host, keys)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    server = build_server(settings, keys)
    server.graphmem_tenancy.preload()  # type: ignore[attr-defined]
    uvicorn.run(http_app(server, host), host=host, port=port, log_level=log_level, access_log=False)
