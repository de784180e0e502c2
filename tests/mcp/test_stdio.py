"""``graphmem mcp`` over stdio, driven by the MCP SDK's own client: a subprocess on a fresh
embedded store; writes, search, facts, an entity, forgetting, bad input and a killed store."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator

import pytest

from tests.mcp.conftest import SyncClient, sync_client

pytestmark = pytest.mark.slow

NOTE = "Ilse Varga moved to Tallinn in 2019. Ilse Varga works for Korvex Shipping."
TURN = "I bought a sailboat called the Grey Heron."


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> object:
    return tmp_path_factory.mktemp("mcp-stdio") / "home"


@pytest.fixture(scope="module")
def mcp(home) -> Iterator[SyncClient]:
    from mcp.client.stdio import StdioServerParameters

    env = {**os.environ, "GRAPHMEM_HOME": str(home), "GRAPHMEM_GROUP_ID": "notes", "HF_HUB_OFFLINE": "1"}
    params = StdioServerParameters(command=sys.executable, args=["-m", "graphmem.cli", "mcp"], env=env)
    with sync_client(params) as client:
        yield client
    from graphmem.store.falkordb_server import EmbeddedServer

    EmbeddedServer(home).stop()


def test_the_tools_and_resources_are_listed_with_schemas(mcp):
    tools = mcp.tools()
    assert set(tools) == {
        "add_memory",
        "add_document",
        "search_memory",
        "get_facts",
        "get_entity",
        "forget",
        "list_sources",
    }
    search = tools["search_memory"]
    assert search.description and "provenance" in search.description
    assert search.input_schema["required"] == ["query"]
    assert search.input_schema["properties"]["k"]["maximum"] == 100
    assert set(mcp.resources()) == {"graphmem://stats", "graphmem://episodes/recent"}


def test_add_search_facts_entity_and_forget_round_trip(mcp):
    note = mcp.call("add_memory", text=NOTE, time="2020-02-01", source="ilse-note").data
    assert note["stored"] and note["group"] == "notes" and len(note["episodes"]) == 1
    turn = mcp.call("add_memory", text=TURN, speaker="Ilse Varga", time="2021-06-01T09:30:00Z").data
    assert turn["stored"] and turn["source"] != "ilse-note"

    hits = mcp.call("search_memory", query="Where does Ilse Varga live?", k=3).data["hits"]
    top = next(h for h in hits if h["source"] == "ilse-note")
    assert top["content"] == NOTE and top["uuid"] == note["episodes"][0]
    assert top["occurred_at"].startswith("2020-02-01") and "Ilse Varga" in top["entities"]
    sailing = mcp.call("search_memory", query="sailboat Grey Heron", k=2).data["hits"]
    assert sailing[0]["speaker"] == "Ilse Varga" and sailing[0]["content"] == TURN

    facts = mcp.call("get_facts", entity="ilse varga").data["facts"]
    assert any(f["object"] == "Tallinn" and f["episodes"] == note["episodes"] for f in facts), facts
    card = mcp.call("get_entity", entity="Ilse Varga").data
    assert card["name"] == "Ilse Varga" and card["mentions"] >= 2
    assert "Tallinn" in {n["entity"] for n in card["neighbours"]}
    assert {p["uuid"] for p in card["passages"]} >= set(note["episodes"])

    names = {s["name"] for s in mcp.call("list_sources").data["sources"]}
    assert {"ilse-note", turn["source"]} <= names
    assert mcp.read("graphmem://stats")["episodes"] == 2
    assert mcp.read("graphmem://episodes/recent")["episodes"][0]["uuid"] == turn["episodes"][0]

    removed = mcp.call("forget", source="ilse-note").data["removed"]
    assert removed["episodes"] == 1
    assert all(h["source"] != "ilse-note" for h in mcp.call("search_memory", query="Tallinn", k=5).data["hits"])
    assert not any(f["object"] == "Tallinn" for f in _facts_or_none(mcp, "Ilse Varga"))
    assert mcp.call("forget", episode=turn["episodes"][0]).data["removed"]["episodes"] == 1
    assert mcp.read("graphmem://stats")["episodes"] == 0


def _facts_or_none(mcp: SyncClient, entity: str) -> list[dict]:
    answer = mcp.call("get_facts", entity=entity)
    return [] if answer.error else answer.data["facts"]


@pytest.mark.parametrize(
    ("tool", "arguments", "says"),
    [
        ("add_memory", {"text": "   "}, "text"),
        ("add_memory", {"text": "x" * (20 * 1024 * 1024 + 1)}, "over the limit"),
        ("add_memory", {"text": "a note", "time": "last Tuesday-ish"}, "time"),
        ("add_memory", {"text": "a note", "speaker": "x" * 81}, "speaker"),
        ("add_document", {}, "either 'path' or 'text'"),
        ("add_document", {"path": "/nonexistent/file.txt"}, "no such file"),
        ("search_memory", {"query": ""}, "query"),
        ("search_memory", {"query": "anything", "as_of": "2024-13-45"}, "as_of"),
        ("search_memory", {"query": "anything", "k": 0}, "k"),
        ("get_facts", {"entity": "Nobody Anywhere"}, "no entity"),
        ("get_entity", {"entity": "Nobody Anywhere"}, "no entity"),
        ("forget", {}, "exactly one"),
        ("forget", {"episode": "no-such-episode"}, "no episode"),
    ],
)
def test_bad_input_is_a_tool_error_that_says_what_is_wrong(mcp, tool, arguments, says):
    answer = mcp.call(tool, **arguments)
    assert answer.error, answer.text
    assert says in answer.text, answer.text
    assert mcp.read("graphmem://stats")["group"] == "notes"  # the server is still there


def test_a_killed_store_is_a_clear_tool_error_then_the_server_recovers(mcp, home):
    """Killed, the embedded store restarts on the next call (a write lands and is read back);
    killed and unable to start (its append-only manifest unreadable), every call is a tool
    error naming the store, until it can start again: then the calls succeed, nothing lost."""
    from graphmem.store.falkordb_server import EmbeddedServer

    server = EmbeddedServer(home)
    assert mcp.call("add_memory", text=NOTE, source="before-the-kill").data["stored"]
    os.kill(server._pid(), signal.SIGKILL)
    assert mcp.call("add_memory", text="Written after a kill.", source="after-a-kill").data["stored"]

    (manifest,) = home.rglob("*.manifest")
    saved = manifest.read_bytes()
    os.kill(server._pid(), signal.SIGKILL)
    time.sleep(0.2)
    manifest.write_text("this is not a manifest\n")
    try:
        down = mcp.call("list_sources")
        assert down.error and "graph store" in down.text and "restart" in down.text, down.text
        write = mcp.call("add_memory", text="Written while the store cannot start.", source="lost")
        assert write.error and "graph store" in write.text, write.text
    finally:
        manifest.write_bytes(saved)
    names = {s["name"] for s in mcp.call("list_sources").data["sources"]}
    assert {"before-the-kill", "after-a-kill"} <= names and "lost" not in names
    assert mcp.call("add_memory", text="Written after the store came back.", source="after").data["stored"]


def test_the_readme_client_config_starts_this_command():
    """The README's MCP client config is valid JSON naming `graphmem mcp` and settings it reads."""
    import json
    import re

    from tests.conftest import REPO

    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### MCP: `graphmem mcp`") :]
    config = json.loads(re.search(r"```json\n(.*?)```", section, re.S).group(1))
    entry = config["mcpServers"]["graphmem"]
    assert (entry["command"], entry["args"]) == ("graphmem", ["mcp"])
    assert set(entry["env"]) <= {"GRAPHMEM_HOME", "GRAPHMEM_GROUP_ID", "GRAPHMEM_STORE"}
