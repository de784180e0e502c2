"""The typed ingestion report crosses the API whole: busy, invalidated and appended reach
the HTTP answer (inline and as a job's report) and graphmem.Client's IngestReport."""

from __future__ import annotations

import copy
import time

import httpx
import pytest

from graphmem.ingest.report import IngestReport
from tests.api.conftest import free_port, run_uvicorn, start_server
from tests.api.test_temporal import CHAT

GROUP = "reports"


@pytest.fixture(scope="module")
def served(tmp_path_factory, embedder, extractor):
    tmp = tmp_path_factory.mktemp("reports")
    from graphmem.api.auth import KeyStore

    key, _ = KeyStore(tmp / "keys.json", env={}).add([GROUP])
    app, _ = start_server(tmp / "home", tmp / "keys.json")
    with run_uvicorn(app, free_port()) as url:
        yield url, key, tmp / "home"


def test_invalidated_and_appended_reach_the_answer_and_the_client(served):
    from graphmem import Client

    url, key, _ = served
    answer = httpx.post(f"{url}/v1/ingest", json={"conversations": [CHAT]}, headers={"X-API-Key": key}, timeout=120)
    assert answer.status_code == 200, answer.text
    report = answer.json()["report"]
    assert report["invalidated"] == 2 and report["passages"] == 6  # Lisbon -> Berlin, Orvalis -> Kestrel
    assert report["busy"] == 0 and report["appended"] == 0
    grown = copy.deepcopy(CHAT)
    grown["turns"].append({"speaker": "Ben", "text": "Berlin suits you.", "time": "2023-06-15T18:31:00"})
    from graphmem.ingest.dialogue import Conversation, Turn
    from graphmem.timeutil import parse_when

    conversation = Conversation(
        name=grown["name"],
        title=grown["title"],
        turns=[
            Turn(
                speaker=t["speaker"],
                text=t["text"],
                time=parse_when(t["time"]),
                turn_id=t.get("id", ""),
                session=t.get("session", 0),
            )
            for t in grown["turns"]
        ],
    )
    with Client(url, api_key=key) as client:
        typed = client.ingest_conversations([conversation])
    assert isinstance(typed, IngestReport)
    assert typed.appended == 1 and typed.passages == 1 and typed.invalidated == 0


def test_busy_reaches_the_answer_the_job_and_the_client(served):
    from graphmem import Client, Memory
    from graphmem.config import Settings
    from graphmem.model import stable_uuid
    from graphmem.store.owners import new_owner, release

    url, key, home = served
    owner = new_owner()  # a live writer of this process holds the source
    name = "held.txt"
    with Memory(Settings.from_env(home=home, group_id=GROUP)) as other:
        claims = other._graph.claim_sources(
            [
                {
                    "uuid": stable_uuid(GROUP, "source", name),
                    "name": name,
                    "kind": "doc",
                    "uri": name,
                    "content_hash": "x",
                    "metadata": {},
                }
            ],
            owner,
            [""],
        )
        assert claims[0]["mine"]
    try:
        body = {"documents": [{"name": name, "text": "Odile Marchetti runs Quillfeather."}]}
        inline = httpx.post(f"{url}/v1/ingest", json=body, headers={"X-API-Key": key}, timeout=120).json()["report"]
        assert inline["busy"] == 1 and inline["documents"] == 1 and inline["passages"] == 0
        assert any(name in error for error in inline["errors"])
        queued = httpx.post(f"{url}/v1/ingest", json={**body, "background": True}, headers={"X-API-Key": key})
        job = queued.json()["job"]
        with Client(url, api_key=key) as client:
            while (view := client.job(job))["state"] in ("queued", "running"):
                time.sleep(0.05)
            assert view["state"] == "succeeded" and view["report"]["busy"] == 1
            typed = client.ingest_text("Odile Marchetti runs Quillfeather.", name=name)
        assert typed.busy == 1 and typed.passages == 0
    finally:
        release(owner)
    with Client(url, api_key=key) as client:  # its writer gone, the source is taken over and written
        assert client.ingest_text("Odile Marchetti runs Quillfeather.", name=name).passages == 1
