"""``graphmem mcp --http``: streamable HTTP with the API keys of ``graphmem serve``, on a real
uvicorn on 127.0.0.1, driven by the MCP SDK's client. Each key sees only its own group."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.api.conftest import free_port, run_uvicorn
from tests.mcp.conftest import SyncClient, http_transport, sync_client

pytestmark = pytest.mark.slow


@dataclass
class Served:
    url: str
    key_a: str  # group alpha
    key_b: str  # group beta
    key_ab: str  # both groups


@pytest.fixture(scope="module")
def served(tmp_path_factory, embedder, extractor) -> Iterator[Served]:
    from graphmem.api.auth import KeyStore
    from graphmem.config import Settings
    from graphmem.mcp.server import build_server, http_app

    tmp = tmp_path_factory.mktemp("mcp-http")
    keys = KeyStore(tmp / "keys.json", env={})
    key_a, _ = keys.add(["alpha"], name="A")
    key_b, _ = keys.add(["beta"], name="B")
    key_ab, _ = keys.add(["alpha", "beta"], name="AB")
    server = build_server(Settings.from_env(home=tmp / "home"), keys)
    port = free_port()
    with run_uvicorn(http_app(server), port) as url:
        yield Served(f"{url}/mcp", key_a, key_b, key_ab)


@pytest.fixture(scope="module")
def alice(served) -> Iterator[SyncClient]:
    with sync_client(http_transport(served.url, served.key_a)) as client:
        yield client


@pytest.fixture(scope="module")
def bruno(served) -> Iterator[SyncClient]:
    with sync_client(http_transport(served.url, served.key_b)) as client:
        yield client


def test_a_request_without_a_valid_key_is_refused_before_its_body_is_read(served):
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    for headers in ({}, {"Authorization": "Bearer gm_not-a-key"}):
        answer = httpx.post(served.url, json=body, headers=headers, timeout=30)
        assert answer.status_code == 401, answer.text
        assert "API key" in answer.json()["detail"]


def test_a_payload_over_the_rest_api_body_limit_is_refused_with_413(served):
    text = "x" * (20 * 1024 * 1024 + 100 * 1024)
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "add_memory", "arguments": {"text": text}},
    }
    answer = httpx.post(served.url, json=body, headers={"Authorization": f"Bearer {served.key_a}"}, timeout=60)
    assert answer.status_code == 413 and "larger than" in answer.json()["detail"]


def test_each_key_sees_only_its_own_group(alice, bruno):
    a = alice.call("add_memory", text="Orla Quist founded the Pelham Kite Club.", source="alpha-note").data
    b = bruno.call("add_memory", text="Tomas Brandt repairs clocks in Ostend.", source="beta-note").data
    assert (a["group"], b["group"]) == ("alpha", "beta")

    assert [s["name"] for s in alice.call("list_sources").data["sources"]] == ["alpha-note"]
    assert [s["name"] for s in bruno.call("list_sources").data["sources"]] == ["beta-note"]
    for who, theirs, other in ((alice, "Orla Quist", "Tomas Brandt"), (bruno, "Tomas Brandt", "Orla Quist")):
        hits = who.call("search_memory", query=f"What does {other} do?", k=5).data["hits"]
        assert hits and all(other not in h["content"] for h in hits), hits
        assert not who.call("get_entity", entity=theirs).error
        refused = who.call("get_entity", entity=other)
        assert refused.error and "no entity" in refused.text
        assert who.call("get_facts", entity=other).error
    assert bruno.call("forget", source="alpha-note").error  # not B's to forget
    assert alice.read("graphmem://stats")["sources"] == 1
    assert alice.read("graphmem://episodes/recent")["episodes"][0]["uuid"] == a["episodes"][0]


def test_a_key_of_several_groups_names_one_and_cannot_leave_them(served, alice):
    with sync_client(http_transport(served.url, served.key_ab)) as both:
        unnamed = both.call("list_sources")
        assert unnamed.error and "name one" in unnamed.text, unnamed.text
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {served.key_ab}", "X-Graphmem-Group": "beta"}
    transport = streamable_http_client(served.url, http_client=httpx2.AsyncClient(headers=headers, timeout=60))
    with sync_client(transport) as beta:
        assert [s["name"] for s in beta.call("list_sources").data["sources"]] == ["beta-note"]
    headers = {"Authorization": f"Bearer {served.key_a}", "X-Graphmem-Group": "beta"}
    transport = streamable_http_client(served.url, http_client=httpx2.AsyncClient(headers=headers, timeout=60))
    with sync_client(transport) as intruder:
        refused = intruder.call("list_sources")
        assert refused.error and "may not use group 'beta'" in refused.text, refused.text


def test_paths_are_not_read_over_http(alice, tmp_path):
    secret = tmp_path / "server-side.txt"
    secret.write_text("A file on the server's disk.")
    answer = alice.call("add_document", path=str(secret))
    assert answer.error and "send 'text'" in answer.text
    doc = alice.call("add_document", text="Orla Quist moved the Pelham Kite Club to Dunmore.", name="club-history")
    assert doc.data["source"] == "club-history" and doc.data["group"] == "alpha"
