"""The REST API end to end: a real uvicorn on 127.0.0.1, the real store and models."""

from __future__ import annotations

import time

import pytest

from tests.conftest import example_doc_name

DOCS = [
    {
        "name": "notes/ferry.txt",
        "title": "Ferry",
        "text": "The Orvik ferry was built by Marta Lindqvist in 1931. The ferry crosses the Saltfjord every hour.",
    },
    {
        "name": "notes/lighthouse.txt",
        "title": "Lighthouse",
        "date": "1950-06-01",
        "text": "Marta Lindqvist later designed the Skarvholm lighthouse, which guards the mouth of the Saltfjord.",
    },
]


def problem(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["detail"] and body["request_id"]
    return body


def test_health_ready_and_openapi(http):
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz").json()
    assert ready["status"] == "ready" and ready["auth"] == "keys"
    schema = http.get("/openapi.json").json()
    assert {
        "/v1/search",
        "/v1/ingest",
        "/v1/jobs/{job_id}",
        "/v1/episodes/{uuid}",
        "/v1/entities/{uuid}",
        "/v1/facts",
        "/v1/sources/{uuid}",
        "/v1/cypher",
    } <= set(schema["paths"])
    assert http.get("/docs").status_code == 200


def test_keys_are_required_and_checked(api, http):
    problem(http.post("/v1/search", json={"query": "x"}), 401)
    problem(http.post("/v1/search", json={"query": "x"}, headers={"X-API-Key": "gm_wrong"}), 401)
    body = problem(http.post("/v1/search", json={"query": "x", "group": "beta"}, headers=api.headers(api.key_a)), 403)
    assert "beta" in body["detail"]
    ok = http.post("/v1/search", json={"query": "library"}, headers={"X-API-Key": api.key_a})
    assert ok.status_code == 200 and ok.json()["group"] == "default"


def test_search_finds_the_gold_passage_with_provenance(api, http, sample_questions):
    found = 0
    for question in sample_questions[:6]:
        r = http.post("/v1/search", json={"query": question["question"], "k": 5}, headers=api.headers(api.key_a))
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert [h["rank"] for h in results] == list(range(1, len(results) + 1))
        names = {example_doc_name(h["source"]) for h in results}
        found += bool(names & set(question["supporting"]))
    assert found >= 4
    top = http.post(
        "/v1/search", json={"query": sample_questions[0]["question"], "k": 3}, headers=api.headers(api.key_a)
    ).json()["results"]
    assert any(h["facts"] or h["entities"] for h in top)  # provenance: why the graph ranked it


@pytest.mark.parametrize("mode", ["dense", "bm25"])
def test_search_modes(api, http, mode):
    r = http.post("/v1/search", json={"query": "Halvard Library", "k": 3, "mode": mode}, headers=api.headers(api.key_a))
    assert r.status_code == 200 and r.json()["mode"] == mode and len(r.json()["results"]) == 3


def test_ingest_then_search_read_and_cypher(api, http):
    h = api.headers(api.key_b)
    r = http.post("/v1/ingest", json={"documents": DOCS}, headers=h)
    assert r.status_code == 200, r.text
    report = r.json()["report"]
    assert r.json()["group"] == "beta" and report["documents"] == 2 and report["passages"] >= 2
    hits = http.post(
        "/v1/search", json={"query": "Who designed the Skarvholm lighthouse?", "k": 2, "mode": "dense"}, headers=h
    ).json()["results"]
    assert hits and hits[0]["source"] == "notes/lighthouse.txt"
    episode = http.get(f"/v1/episodes/{hits[0]['uuid']}", headers=h).json()
    assert "Skarvholm" in episode["content"] and episode["occurred_at"].startswith("1950-06-01")
    rows = http.post(
        "/v1/cypher",
        json={
            "query": "MATCH (n:Entity {group_id: $group_id}) WHERE n.name = $name RETURN n.uuid AS uuid",
            "params": {"name": "Marta Lindqvist"},
        },
        headers=h,
    ).json()["rows"]
    assert len(rows) == 1
    entity = http.get(f"/v1/entities/{rows[0][0]}", headers=h).json()
    assert entity["name"] == "Marta Lindqvist" and entity["mentions"] == 2
    # re-sending the same documents is a no-op (sources are identified by name)
    again = http.post("/v1/ingest", json={"documents": DOCS}, headers=h).json()["report"]
    assert again["skipped"] == 2 and again["passages"] == 0


def test_background_ingest_reports_progress(api, http):
    h = api.headers(api.key_b)
    docs = [
        {"name": f"bulk/{i}.txt", "text": f"Harbour log {i}: the tug Brisk{i} towed a barge to Orvik."}
        for i in range(5)
    ]
    r = http.post("/v1/ingest", json={"documents": docs, "background": True}, headers=h)
    assert r.status_code == 202, r.text
    job_id = r.json()["job"]
    assert r.headers["location"] == f"/v1/jobs/{job_id}"
    deadline = time.time() + 120
    while True:
        job = http.get(f"/v1/jobs/{job_id}", headers=h).json()
        if job["state"] in {"succeeded", "failed"} or time.time() > deadline:
            break
        assert 0 <= job["done"] <= job["total"] == 5
        time.sleep(0.2)
    assert job["state"] == "succeeded", job
    assert job["done"] == 5 and job["report"]["documents"] == 5
    problem(http.get(f"/v1/jobs/{job_id}", headers=api.headers(api.key_a)), 404)  # another tenant's job
    problem(http.get("/v1/jobs/job_nope", headers=h), 404)


def test_cypher_limits_and_refusals(api, http):
    h = api.headers(api.key_a)
    r = http.post(
        "/v1/cypher", json={"query": "MATCH (e:Episode {group_id: $group_id}) RETURN e.uuid", "limit": 3}, headers=h
    ).json()
    assert len(r["rows"]) == 3 and r["truncated"] is True
    for query in [
        "MATCH (n:Entity {group_id: $group_id}) SET n.name = 'x'",
        "CREATE (n:Entity {group_id: $group_id})",
        "MATCH (n:Entity {group_id: $group_id}) DETACH DELETE n",
        "CALL dbms.procedures()",
        "LOAD CSV FROM 'file:///etc/passwd' AS r RETURN r",
        "RETURN " + "[" * 11 + "1" + "]" * 11,
    ]:
        body = problem(http.post("/v1/cypher", json={"query": query}, headers=h), 400)
        assert "refused" in body["detail"]
    # the group is its own graph: unanchored patterns and read procedures see the group alone
    labels = http.post("/v1/cypher", json={"query": "CALL db.labels()"}, headers=h).json()["rows"]
    assert {"Episode", "Entity", "Source"} <= {row[0] for row in labels}
    everything = http.post("/v1/cypher", json={"query": "MATCH (n:Episode) RETURN count(n)"}, headers=h).json()
    assert everything["rows"] == [[45]]
    # a syntax error is the caller's, not a 5xx
    query = "MATCH (n:Entity {group_id: $group_id}) RETURN n."
    problem(http.post("/v1/cypher", json={"query": query}, headers=h), 400)
    problem(
        http.post(
            "/v1/cypher",
            json={"query": "MATCH (n:Entity {group_id: $group_id}) RETURN n", "params": {"group_id": "beta"}},
            headers=h,
        ),
        422,
    )
    stats = http.post(
        "/v1/cypher", json={"query": "MATCH (e:Episode {group_id: $group_id}) RETURN count(e)"}, headers=h
    ).json()
    assert stats["rows"][0][0] == 45  # the sample corpus, untouched by the refused writes


def test_errors_are_problem_json(api, http):
    h = api.headers(api.key_a)
    body = problem(http.post("/v1/search", json={"query": "", "k": 5}, headers=h), 422)
    assert "query" in body["detail"]
    problem(http.post("/v1/search", json={"query": "x", "k": 0}, headers=h), 422)
    problem(http.post("/v1/search", content=b"{not json", headers={**h, "content-type": "application/json"}), 422)
    problem(http.get("/v1/episodes/nope", headers=h), 404)
    problem(http.get("/v1/entities/nope", headers=h), 404)
    big = {"documents": [{"name": "big.txt", "text": "word " * 500_000}]}
    problem(http.post("/v1/ingest", json=big, headers=h), 413)
    problem(http.post("/v1/ingest", json={"documents": [DOCS[0], DOCS[0]]}, headers=h), 422)
    r = http.get("/healthz", headers={"X-Request-ID": "trace-123"})
    assert r.headers["x-request-id"] == "trace-123"


def test_admin_manages_keys(api, http):
    problem(http.get("/v1/admin/keys", headers=api.headers(api.key_a)), 403)
    created = http.post("/v1/admin/keys", json={"groups": ["gamma"], "name": "ci"}, headers=api.headers(api.admin))
    assert created.status_code == 201, created.text
    new = created.json()
    listed = http.get("/v1/admin/keys", headers=api.headers(api.admin)).json()
    assert new["id"] in {k["id"] for k in listed} and all("key" not in k or k["key"] is None for k in listed)
    assert http.post("/v1/search", json={"query": "x"}, headers=api.headers(new["key"])).json()["group"] == "gamma"
    assert http.delete(f"/v1/admin/keys/{new['id']}", headers=api.headers(api.admin)).status_code == 200
    problem(http.post("/v1/search", json={"query": "x"}, headers=api.headers(new["key"])), 401)
    assert new["key"] not in (api.home.parent / "keys.json").read_text()  # stored hashed
