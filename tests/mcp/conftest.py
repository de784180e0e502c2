"""MCP clients for the tests: the SDK's own client, driven from synchronous tests through
an anyio portal (one event loop thread per client session)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass
class Answer:
    """A tool call's answer: ``error`` (isError) and the JSON it returned, or the error text."""

    error: bool
    text: str

    @property
    def data(self) -> Any:
        assert not self.error, self.text
        return json.loads(self.text)


class SyncClient:
    def __init__(self, portal: Any, client: Any) -> None:
        self.portal, self.client = portal, client

    def call(self, tool: str, **arguments: Any) -> Answer:
        result = self.portal.call(self.client.call_tool, tool, arguments)
        text = "".join(getattr(block, "text", "") for block in result.content)
        return Answer(bool(result.is_error), text)

    def read(self, uri: str) -> Any:
        result = self.portal.call(self.client.read_resource, uri)
        return json.loads(result.contents[0].text)

    def tools(self) -> dict[str, Any]:
        return {t.name: t for t in self.portal.call(self.client.list_tools).tools}

    def resources(self) -> list[str]:
        return [str(r.uri) for r in self.portal.call(self.client.list_resources).resources]


@contextmanager
def sync_client(server: AbstractAsyncContextManager[Any] | Any) -> Iterator[SyncClient]:
    """A connected SDK client of ``server`` (a transport, a StdioServerParameters or a URL)."""
    from anyio.from_thread import start_blocking_portal
    from mcp import Client

    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(Client(server, read_timeout_seconds=300)) as client,
    ):
        yield SyncClient(portal, client)


def http_transport(url: str, key: str | None) -> AbstractAsyncContextManager[Any]:
    """The streamable HTTP transport to ``url``, sending ``key`` as a bearer token."""
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    client = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=300.0))
    return streamable_http_client(url, http_client=client)
