"""Dialogue turns, fact timelines (as_of), and forgetting through HTTP and graphmem.Client.

They go through Memory.facts, Memory.forget and dialogue ingestion."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.api.conftest import free_port, run_uvicorn, start_server

S1, S2 = "2021-03-01T10:00:00", "2023-06-15T18:30:00"
CHAT = {
    "name": "ana-ben",
    "title": "Ana and Ben",
    "turns": [
        {"speaker": "Ana", "text": "Hi Ben! I live in Lisbon now, near the river.", "time": S1, "session": 1},
        {"speaker": "Ben", "text": "Nice! Are you still at the robotics company?", "time": S1, "session": 1},
        {"speaker": "Ana", "text": "Yes, I work at Orvalis Robotics as a data engineer.", "time": S1, "session": 1},
        {"speaker": "Ben", "text": "Long time no see! What's new?", "time": S2, "session": 2},
        {"speaker": "Ana", "text": "I moved to Berlin last month.", "time": S2, "session": 2, "id": "D2:2"},
        {"speaker": "Ana", "text": "I started working at Kestrel Labs two weeks ago.", "time": S2, "session": 2},
    ],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory, embedder, extractor):
    tmp = tmp_path_factory.mktemp("temporal")
    from graphmem.api.auth import KeyStore

    keys = KeyStore(tmp / "keys.json", env={})
    key, _ = keys.add(["chats"])
    other, _ = keys.add(["elsewhere"])
    app, _ = start_server(tmp / "home", tmp / "keys.json")
    with run_uvicorn(app, free_port()) as url:
        yield url, key, other


@pytest.fixture(scope="module")
def client(server):
    from graphmem import Client

    url, key, _ = server
    with Client(url, api_key=key) as c:
        report = c._request("POST", "/v1/ingest", json={"conversations": [CHAT]})["report"]
        assert report["passages"] == 6
        yield c


def test_turns_are_episodes_with_speakers(client):
    hits = client.search("Where did Ana move?", k=3, mode="dense")
    top = hits[0]
    assert top.content == "I moved to Berlin last month." and top.speaker == "Ana"
    assert top.occurred_at == datetime.fromisoformat(S2 + "+00:00")


def test_fact_timeline_as_of_and_history(client):
    now = {(f.predicate, f.object) for f in client.facts("Ana")}
    assert ("move to", "Berlin") in now and ("live in", "Lisbon") not in now
    before = {(f.predicate, f.object) for f in client.facts("Ana", as_of=datetime(2022, 1, 1))}
    assert ("live in", "Lisbon") in before and ("move to", "Berlin") not in before
    history = client.facts("Ana", history=True)
    lisbon = next(f for f in history if f.object == "Lisbon")
    assert lisbon.invalid_at is not None and lisbon.episodes


def test_facts_errors_and_isolation(server, client):
    import httpx

    url, key, other = server
    r = httpx.get(f"{url}/v1/facts", params={"entity": "Nobody Atall"}, headers={"X-API-Key": key})
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    r = httpx.get(f"{url}/v1/facts", params={"entity": "Ana", "as_of": "not a date"}, headers={"X-API-Key": key})
    assert r.status_code == 422 and "as_of" in r.json()["detail"]
    r = httpx.get(f"{url}/v1/facts", params={"entity": "Ana"}, headers={"X-API-Key": other})
    assert r.status_code == 404  # Ana lives in another tenant's group


def test_search_as_of(client):
    old = client.search("Where does Ana live?", k=6, as_of=datetime(2022, 1, 1))
    assert old and all(h.occurred_at is None or h.occurred_at.year >= 2021 for h in old)


def test_forget_through_the_client(server, client):
    import httpx

    url, key, other = server
    assert httpx.delete(f"{url}/v1/sources/ana-ben", headers={"X-API-Key": other}).status_code == 404
    episode = client.search("Kestrel Labs", k=1, mode="bm25")[0].uuid
    removed = client.forget(episode=episode)
    assert removed["episodes"] == 1
    assert episode not in {h.uuid for h in client.search("Kestrel Labs", k=6, mode="bm25")}
    removed = client.forget(source="ana-ben")
    assert removed["episodes"] == 5
    assert client.search("Berlin", k=3, mode="bm25") == []
    with pytest.raises(Exception, match="no source"):
        client.forget(source="ana-ben")
