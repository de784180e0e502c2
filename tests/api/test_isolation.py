"""Tenant isolation: what key A's group holds is invisible to key B through every endpoint,
and /v1/cypher refuses writes. (Group 'default' = the sample corpus, key A; key B may use 'beta'.)
The adversarial suite (tests/security/test_adversarial.py) tries many more escapes."""

from __future__ import annotations

import pytest

CYPHER_WRITES = [
    "CREATE (n:Entity {group_id: $group_id, name: 'x'})",
    "MERGE (n:Entity {group_id: $group_id, name: 'x'}) RETURN n",
    "MATCH (n:Entity {group_id: $group_id}) SET n.name = 'x'",
    "MATCH (n:Entity {group_id: $group_id}) DELETE n",
    "MATCH (n:Entity {group_id: $group_id}) DETACH DELETE n",
    "MATCH (n:Entity {group_id: $group_id}) REMOVE n.name",
    "CALL db.idx.fulltext.drop('Episode')",
    "LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row",
    "UNWIND [1] AS x CREATE (:Entity {group_id: $group_id})",
]

# queries that would read group A's data if they were not confined
CYPHER_ESCAPES = [
    "MATCH (n) RETURN n.content",
    "MATCH (n) WHERE n.group_id <> $group_id RETURN n.content",
    "MATCH (n:Episode) WHERE n.group_id = 'default' OR $group_id = $group_id RETURN n.content",
    "MATCH ()-[f:FACT]->() WHERE $group_id IS NOT NULL RETURN f.text",
    "MATCH (m:Entity {group_id: $group_id}) WITH count(m) AS c MATCH (n) RETURN n.name",
    "MATCH (m:Entity {group_id: $group_id}) RETURN COUNT { MATCH (x:Episode) RETURN x } AS leaked",
    "MATCH (n:!Entity) WHERE $group_id IS NOT NULL RETURN n.content",
    "CALL db.idx.vector.queryNodes('Episode', 'embedding', 5, vecf32([0.1])) YIELD node RETURN node.content",
    "OPTIONAL MATCH (a {group_id: $group_id}) WITH count(a) AS c MATCH (e:Episode {group_id: toString('default')}) "
    "RETURN e.content LIMIT 3",
]


@pytest.fixture(scope="module")
def a_episode(api, http):
    rows = http.post(
        "/v1/cypher",
        json={
            "query": "MATCH (e:Episode {group_id: $group_id})-[:MENTIONS]->(n:Entity) "
            "RETURN e.uuid, n.uuid, n.name LIMIT 1"
        },
        headers=api.headers(api.key_a),
    ).json()["rows"]
    sources = http.post(
        "/v1/cypher",
        json={"query": "MATCH (s:Source {group_id: $group_id}) RETURN s.uuid LIMIT 1"},
        headers=api.headers(api.key_a),
    ).json()["rows"]
    episode, entity, name = rows[0]
    return {"episode": episode, "entity": entity, "name": name, "source": sources[0][0]}


def test_b_cannot_name_a_group(api, http):
    h = api.headers(api.key_b)
    for method, path, kwargs in [
        ("POST", "/v1/search", {"json": {"query": "library", "group": "default"}}),
        ("POST", "/v1/ingest", {"json": {"documents": [{"name": "x", "text": "y"}], "group": "default"}}),
        (
            "POST",
            "/v1/cypher",
            {"json": {"query": "MATCH (n:Entity {group_id: $group_id}) RETURN n", "group": "default"}},
        ),
        ("GET", "/v1/episodes/x", {"params": {"group": "default"}}),
        ("GET", "/v1/entities/x", {"params": {"group": "default"}}),
        ("GET", "/v1/facts", {"params": {"entity": "x", "group": "default"}}),
        ("DELETE", "/v1/sources/x", {"params": {"group": "default"}}),
        ("DELETE", "/v1/episodes/x", {"params": {"group": "default"}}),
    ]:
        r = http.request(method, path, headers=h, **kwargs)
        assert r.status_code == 403, (path, r.text)


def test_a_data_is_invisible_to_b(api, http, a_episode):
    ha, hb = api.headers(api.key_a), api.headers(api.key_b)
    # A sees its own data ...
    assert http.get(f"/v1/episodes/{a_episode['episode']}", headers=ha).status_code == 200
    assert http.get(f"/v1/entities/{a_episode['entity']}", headers=ha).status_code == 200
    # ... B, in its own group, does not
    assert http.get(f"/v1/episodes/{a_episode['episode']}", headers=hb).status_code == 404
    assert http.get(f"/v1/entities/{a_episode['entity']}", headers=hb).status_code == 404
    assert http.get("/v1/facts", params={"entity": a_episode["name"]}, headers=hb).status_code == 404
    for mode in ("graph", "dense", "bm25"):
        hits = http.post("/v1/search", json={"query": a_episode["name"], "k": 10, "mode": mode}, headers=hb).json()
        assert a_episode["episode"] not in {h["uuid"] for h in hits["results"]}
    rows = http.post(
        "/v1/cypher", json={"query": "MATCH (e:Episode {group_id: $group_id}) RETURN e.uuid"}, headers=hb
    ).json()["rows"]
    assert a_episode["episode"] not in {r[0] for r in rows}


def test_b_cannot_delete_a_data(api, http, a_episode):
    hb = api.headers(api.key_b)
    assert http.delete(f"/v1/sources/{a_episode['source']}", headers=hb).status_code == 404
    assert http.delete(f"/v1/episodes/{a_episode['episode']}", headers=hb).status_code == 404
    assert http.get(f"/v1/episodes/{a_episode['episode']}", headers=api.headers(api.key_a)).status_code == 200


@pytest.mark.parametrize("query", CYPHER_ESCAPES)
def test_cypher_cannot_escape_the_group(api, http, a_episode, query):
    """B's queries run in B's own graph: whatever they say, A's data is not there to read."""
    r = http.post("/v1/cypher", json={"query": query}, headers=api.headers(api.key_b))
    assert r.status_code in (200, 400), r.text  # 400: a query the store itself rejects
    assert a_episode["episode"] not in r.text and a_episode["name"] not in r.text
    if r.status_code == 200:
        assert all(cell is None or "Kessary" not in str(cell) for row in r.json()["rows"] for cell in row)


@pytest.mark.parametrize("query", CYPHER_WRITES)
def test_cypher_refuses_writes(api, http, query):
    before = http.post(
        "/v1/cypher",
        json={"query": "MATCH (n:Entity {group_id: $group_id}) RETURN count(n)"},
        headers=api.headers(api.key_a),
    ).json()["rows"]
    r = http.post("/v1/cypher", json={"query": query}, headers=api.headers(api.key_a))
    assert r.status_code == 400 and "refused" in r.json()["detail"], r.text
    after = http.post(
        "/v1/cypher",
        json={"query": "MATCH (n:Entity {group_id: $group_id}) RETURN count(n)"},
        headers=api.headers(api.key_a),
    ).json()["rows"]
    assert before == after


def test_b_writes_stay_in_b(api, http):
    hb = api.headers(api.key_b)
    r = http.post(
        "/v1/ingest",
        json={"documents": [{"name": "b/secret.txt", "text": "Project Quillfeather is run by Odile Marchetti."}]},
        headers=hb,
    )
    assert r.status_code == 200, r.text
    hits = http.post(
        "/v1/search",
        json={"query": "Who runs Project Quillfeather?", "k": 45, "mode": "bm25"},
        headers=api.headers(api.key_a),
    ).json()["results"]
    assert all("Quillfeather" not in h["content"] for h in hits)
    rows = http.post(
        "/v1/cypher",
        json={"query": "MATCH (n:Entity {group_id: $group_id}) WHERE n.name CONTAINS 'Odile' RETURN n.name"},
        headers=api.headers(api.key_a),
    ).json()
    assert rows["rows"] == []
