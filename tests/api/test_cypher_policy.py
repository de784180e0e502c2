"""Who may run user Cypher where groups share one database (Neo4j without a database per
group): admin keys, local mode and single-tenant deployments; tenant keys of a shared
server get 403 with the reason. Also: one query per key at a time (429)."""

from __future__ import annotations

import shutil
import threading
import time

import httpx
import pytest

from graphmem.store.falkordb import FalkorDBStore
from tests.api.conftest import free_port, run_uvicorn


class SharedDatabaseStore(FalkorDBStore):
    """The embedded store, declaring the isolation of a shared Neo4j database: what the
    API decides from (the store's own data layout does not matter to that decision)."""

    isolation = "property"


def _serve(home, keys, **config):
    from graphmem.api.app import ApiConfig, create_app
    from graphmem.config import Settings

    store = SharedDatabaseStore(home)
    app = create_app(Settings.from_env(home=home), keys, ApiConfig(**config), store=store)
    return app, store


@pytest.fixture
def home(sample_home, tmp_path):
    target = tmp_path / "home"
    shutil.copytree(sample_home, target, ignore=shutil.ignore_patterns("*.sock", "*.pid"))
    return target


QUERY = {"query": "MATCH (e:Episode) RETURN count(e)"}


def test_tenant_keys_of_a_shared_database_get_403(home, tmp_path, embedder, extractor):
    from graphmem.api.auth import KeyStore

    keys = KeyStore(tmp_path / "keys.json", env={})
    tenant, _ = keys.add(["default"], name="tenant")
    keys.add(["other"], name="another tenant")
    admin, _ = keys.add(["default"], admin=True, name="admin")
    app, store = _serve(home, keys, preload=False)
    try:
        with run_uvicorn(app, free_port()) as url, httpx.Client(base_url=url, timeout=60) as http:
            r = http.post("/v1/cypher", json=QUERY, headers={"Authorization": f"Bearer {tenant}"})
            assert r.status_code == 403 and "one database per group" in r.json()["detail"]
            r = http.post("/v1/cypher", json=QUERY, headers={"Authorization": f"Bearer {admin}"})
            assert r.status_code == 200 and r.json()["rows"] == [[45]]
            # every other endpoint still serves the tenant, confined to its group
            r = http.post(
                "/v1/search", json={"query": "Kessary Bridge", "k": 2}, headers={"Authorization": f"Bearer {tenant}"}
            )
            assert r.status_code == 200 and r.json()["results"]
    finally:
        store.close()


def test_a_single_tenant_deployment_keeps_cypher(home, tmp_path, embedder, extractor):
    from graphmem.api.auth import KeyStore

    keys = KeyStore(tmp_path / "keys.json", env={})
    only, _ = keys.add(["default"], name="the one tenant")
    app, store = _serve(home, keys, preload=False)
    try:
        with run_uvicorn(app, free_port()) as url, httpx.Client(base_url=url, timeout=60) as http:
            r = http.post("/v1/cypher", json=QUERY, headers={"Authorization": f"Bearer {only}"})
            assert r.status_code == 200 and r.json()["rows"] == [[45]]
    finally:
        store.close()


def test_one_cypher_query_per_key_at_a_time(home, tmp_path, embedder, extractor):
    from graphmem.api.app import ApiConfig, create_app
    from graphmem.api.auth import KeyStore
    from graphmem.config import Settings

    keys = KeyStore(tmp_path / "keys.json", env={})
    key, _ = keys.add(["default"], name="k")
    other, _ = keys.add(["default"], name="other")
    app = create_app(Settings.from_env(home=home), keys, ApiConfig(preload=False, cypher_wait_s=0.2))
    # 100 million rows: runs until its 2 s timeout whatever the machine
    slow = {"query": "UNWIND range(1, 10000) AS a UNWIND range(1, 10000) AS b RETURN count(*)", "timeout_ms": 2000}
    with run_uvicorn(app, free_port()) as url, httpx.Client(base_url=url, timeout=60) as http:
        answers: list[httpx.Response] = []
        first = threading.Thread(
            target=lambda: answers.append(
                http.post("/v1/cypher", json=slow, headers={"Authorization": f"Bearer {key}"})
            )
        )
        first.start()
        time.sleep(0.3)
        second = http.post("/v1/cypher", json=QUERY, headers={"Authorization": f"Bearer {key}"})
        third = http.post("/v1/cypher", json=QUERY, headers={"Authorization": f"Bearer {other}"})
        first.join(30)
        assert answers[0].status_code == 400 and "timeout" in answers[0].json()["detail"]
        assert second.status_code == 429 and second.headers["retry-after"]
        assert "already has" in second.json()["detail"]
        assert third.status_code == 429  # the one shared slot was taken
        r = http.post("/v1/cypher", json=QUERY, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200  # and the slot was given back
