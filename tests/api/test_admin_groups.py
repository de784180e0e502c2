"""Admins list and drop groups through the API; a dropped group is gone from the store."""

from __future__ import annotations


def test_admin_lists_and_drops_a_group(api, http):
    hb, admin = api.headers(api.key_b), api.headers(api.admin)
    r = http.post(
        "/v1/ingest",
        json={"documents": [{"name": "b/note.txt", "text": "Odile Marchetti runs Quillfeather."}]},
        headers=hb,
    )
    assert r.status_code == 200, r.text
    assert http.get("/v1/admin/groups", headers=hb).status_code == 403
    assert {"default", "beta"} <= set(http.get("/v1/admin/groups", headers=admin).json()["groups"])
    assert http.delete("/v1/admin/groups/beta", headers=hb).status_code == 403
    assert http.delete("/v1/admin/groups/beta", headers=admin).json() == {"dropped": "beta"}
    assert "beta" not in http.get("/v1/admin/groups", headers=admin).json()["groups"]
    assert http.delete("/v1/admin/groups/beta", headers=admin).status_code == 404
    hits = http.post("/v1/search", json={"query": "Who runs Quillfeather?", "k": 5, "mode": "bm25"}, headers=hb).json()
    assert hits["results"] == []  # nothing left of it, not even in a cached projection
    # group 'default' is untouched
    rows = http.post(
        "/v1/cypher", json={"query": "MATCH (e:Episode) RETURN count(e)"}, headers=api.headers(api.key_a)
    ).json()["rows"]
    assert rows == [[45]]
