"""The explorer's JSON endpoints (/v1/ui/*) and its static files, over HTTP: paging caps,
group confinement of a second key, bad input, the page's headers."""

from __future__ import annotations

import pytest


def test_the_page_and_its_vendored_library_are_served_with_a_strict_policy(explorer):
    import httpx

    page = httpx.get(explorer.url + "/ui/")  # no key needed: the page holds no data
    assert page.status_code == 200 and "graphmem explorer" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert httpx.get(explorer.url + "/ui", follow_redirects=True).url.path == "/ui/"
    library = httpx.get(explorer.url + "/ui/static/vendor/cytoscape.min.js")
    assert library.status_code == 200 and library.headers["content-type"].startswith("text/javascript")
    assert "The Cytoscape Consortium" in httpx.get(explorer.url + "/ui/static/vendor/cytoscape.LICENSE").text
    for escape in ("../__init__.py", "..%2F__init__.py", "%2e%2e/explore.py"):
        assert httpx.get(explorer.url + "/ui/static/" + escape).status_code == 404


def test_neighbours_come_a_capped_page_at_a_time(explorer):
    first = explorer.get("/v1/ui/neighbours", entity="Marlow Trading").json()
    assert first["total"] > 50 and len(first["nodes"]) == 50 and first["limit"] == 50
    rest = explorer.get("/v1/ui/neighbours", entity="Marlow Trading", skip=50).json()
    assert len(rest["nodes"]) == first["total"] - 50
    assert not {n["uuid"] for n in first["nodes"]} & {n["uuid"] for n in rest["nodes"]}
    assert {e["predicate"] for e in first["edges"]} == {"own"}
    assert explorer.get("/v1/ui/neighbours", entity="Marlow Trading", limit=51).status_code == 422


def test_neighbours_and_timeline_follow_as_of(explorer):
    then = explorer.get("/v1/ui/neighbours", entity="Ana", as_of="2021-06-01").json()
    now = explorer.get("/v1/ui/neighbours", entity="Ana").json()
    assert "Lisbon" in {n["name"] for n in then["nodes"]} and "Berlin" not in {n["name"] for n in then["nodes"]}
    assert "Berlin" in {n["name"] for n in now["nodes"]} and "Lisbon" not in {n["name"] for n in now["nodes"]}
    every = explorer.get("/v1/ui/neighbours", entity="Ana", history="true").json()
    assert {"Lisbon", "Berlin"} <= {n["name"] for n in every["nodes"]}
    facts = {f["object"]: f for f in explorer.get("/v1/ui/timeline", entity="Ana", as_of="2021-06-01").json()["facts"]}
    assert facts["Lisbon"]["holds"] and not facts["Berlin"]["holds"]
    assert facts["Lisbon"]["superseded_by"] == facts["Berlin"]["uuid"]
    assert facts["Berlin"]["supersedes"] == facts["Lisbon"]["uuid"]
    assert facts["Lisbon"]["invalid_at"] == facts["Berlin"]["valid_at"]
    assert explorer.get("/v1/ui/timeline", entity="Ana", as_of="not a date").status_code == 422


def test_entity_lookup_and_passages(explorer):
    found = explorer.get("/v1/ui/entities", q="kessary").json()["entities"]
    assert found[0]["name"] == "Kessary Bridge"
    passages = explorer.get("/v1/ui/passages", entity="Kessary Bridge").json()
    assert passages["total"] == len(passages["passages"]) >= 2
    assert any("Halvane Steelworks" in p["content"] for p in passages["passages"])
    assert explorer.get("/v1/ui/passages", entity="nobody at all").status_code == 404


@pytest.mark.parametrize(
    "path",
    ["/v1/ui/neighbours", "/v1/ui/timeline", "/v1/ui/passages"],
)
def test_a_second_key_cannot_read_the_first_group(explorer, path):
    assert explorer.get(path, entity="Kessary Bridge").status_code == 200
    assert explorer.get(path, key=explorer.key_b, entity="Kessary Bridge").status_code == 404
    refused = explorer.get(path, key=explorer.key_b, entity="Kessary Bridge", group="default")
    assert refused.status_code == 403
    assert explorer.get(path, key="not-a-key", entity="Kessary Bridge").status_code == 401
    assert explorer.get(path, entity="Orrin Lighthouse").status_code == 404  # and A cannot read B's


def test_a_second_key_finds_and_counts_only_its_group(explorer):
    assert explorer.get("/v1/ui/entities", key=explorer.key_b, q="kessary").json()["entities"] == []
    info = explorer.get("/v1/ui/info", key=explorer.key_b).json()
    assert info["group"] == "beta" and info["stats"]["episodes"] == 1
    cypher = explorer.post("/v1/cypher", {"query": "MATCH (e:Episode) RETURN count(e) AS n"}, key=explorer.key_b)
    assert cypher.json()["rows"] == [[1]]
