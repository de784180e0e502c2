"""The ASGI middleware in front of every route (pure ASGI: it sees every request, streamed
bodies included): request ids, the Host check of local mode, the API key check before a body
is read, body size limits and one structured access-log line per request."""

import ipaddress
import json
import logging
import re
import time
import uuid as uuidlib
from collections.abc import Awaitable, Callable
from typing import Any

from graphmem.api.auth import KeyStore
from graphmem.api.errors import PROBLEM, problem_bytes

access_log = logging.getLogger("graphmem.api.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
#: endpoints whose bodies are a query and its parameters (the smaller body limit)
QUERY_PATHS = frozenset({"/v1/search", "/v1/cypher"})

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]


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
        host, sep, port_text = value.partition(":")
        port = port_text if sep else None
    if port is not None and not (port.isdigit() and len(port) <= 5):
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def presented_key(headers: dict[str, str]) -> str:
    """The API key a request carries (``Authorization: Bearer`` or ``X-API-Key``), or ''."""
    header = headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else headers.get("x-api-key", "")


class _Exchange:
    """One request's id, status and replies (each response carries ``X-Request-ID``)."""

    def __init__(self, scope: dict[str, Any], send: Send) -> None:
        self.headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        given = self.headers.get("x-request-id", "")
        self.request_id = given if _REQUEST_ID.match(given) else uuidlib.uuid4().hex
        self.status = 500
        self._send = send

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            message["headers"] = list(message.get("headers", [])) + [(b"x-request-id", self.request_id.encode())]
        await self._send(message)

    async def reply(self, status: int, detail: str, headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        await self.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", PROBLEM.encode()), *headers],
            }
        )
        await self.send({"type": "http.response.body", "body": problem_bytes(status, detail, self.request_id)})


async def _read_body(receive: Receive, limit: int) -> list[Message] | None:
    """The body as one message to replay (or the disconnect that ended it); None past ``limit``.
    A client sending it in millions of tiny chunks costs one list of parts, not millions of
    messages to replay."""
    parts, received = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return [message]
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            return None
        parts.append(chunk)
        if not message.get("more_body", False):
            return [{"type": "http.request", "body": b"".join(parts), "more_body": False}]


class RequestContext:
    """Request ids, the body size limit, the Host check of local mode and one structured
    access-log line per request.

    The body is read (up to the limit) before the app sees the request and then replayed to
    it, so a body too large is a 413 whether or not it announced its length (a chunked body
    that overflowed inside the app's JSON parsing would be a 400).
    """

    def __init__(
        self,
        app: App,
        max_body_bytes: int,
        local_mode: Callable[[], bool] | None = None,
        keys: KeyStore | None = None,
        query_body_bytes: int | None = None,
    ) -> None:
        self.app, self.max_body_bytes = app, max_body_bytes
        #: callable: True while the server runs in local mode (no keys)
        self.local_mode = local_mode or (lambda: False)
        #: the server's keys: a request to /v1/ without a valid one is answered 401 before its
        #: body is read (parsing a large body on the event loop would slow every tenant)
        self.keys = keys
        #: the smaller body limit of the query endpoints (search, Cypher), whose bodies are a
        #: query and a few parameters: megabytes there are only ever an attack on the parser
        self.query_body_bytes = min(query_body_bytes or max_body_bytes, max_body_bytes)

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        exchange = _Exchange(scope, send)
        state = scope.setdefault("state", {})
        state["request_id"] = exchange.request_id
        started = time.perf_counter()
        try:
            await self._handle(scope, receive, exchange)
        finally:
            access_log.info(
                json.dumps(
                    {
                        "request_id": exchange.request_id,
                        "method": scope.get("method"),
                        "path": scope.get("path"),
                        "status": exchange.status,
                        "ms": round((time.perf_counter() - started) * 1000, 2),
                        "key": state.get("key_id"),
                        "group": state.get("group"),
                        "client": (scope.get("client") or ["", 0])[0],
                    }
                )
            )

    async def _handle(self, scope: dict[str, Any], receive: Receive, exchange: _Exchange) -> None:
        headers, path = exchange.headers, scope.get("path", "")
        limit = self.query_body_bytes if path in QUERY_PATHS else self.max_body_bytes
        too_large = f"the request body is larger than {limit} bytes; split it"
        host = headers.get("host", "")
        if self.local_mode() and not loopback_host_header(host):
            return await exchange.reply(
                421,
                f"local mode (no API keys configured) answers only requests addressed to "
                f"127.0.0.1, localhost or [::1], not Host {host[:100]!r}: this protects "
                "against DNS rebinding (a web page pointing its own name at this "
                "machine). To serve other host names, configure API keys",
            )
        key = presented_key(headers)
        if (
            path.startswith("/v1/")
            and self.keys is not None
            and self.keys.configured
            and (not key or self.keys.lookup(key) is None)
        ):
            detail = (
                "unknown or revoked API key"
                if key
                else "an API key is required: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"
            )
            # connection: close, so the server drops the unread body instead of reading it
            # off the socket to keep the connection alive
            return await exchange.reply(401, detail, ((b"www-authenticate", b"Bearer"), (b"connection", b"close")))
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return await exchange.reply(413, too_large)
        messages = await _read_body(receive, limit)
        if messages is None:
            return await exchange.reply(413, too_large)

        async def replay() -> Message:
            return messages.pop() if messages else await receive()

        await self.app(scope, replay, exchange.send)
