"""The API outlives its embedded store: kill -9 of redis-server under load, and requests
succeed again without restarting the API (503 only while the store is down)."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time

import httpx

from tests.api.conftest import free_port, run_uvicorn, start_server


def test_requests_succeed_again_after_the_store_is_killed(sample_home, tmp_path, embedder, extractor):
    from graphmem.api.auth import KeyStore
    from graphmem.store.falkordb_server import EmbeddedServer

    home = tmp_path / "home"
    shutil.copytree(sample_home, home, ignore=shutil.ignore_patterns("*.sock", "*.pid"))
    keys = KeyStore(tmp_path / "keys.json", env={})
    key, _ = keys.add(["default"], name="t")
    app, _ = start_server(home, tmp_path / "keys.json")
    headers = {"Authorization": f"Bearer {key}"}
    statuses: list[tuple[float, int]] = []
    stop = threading.Event()

    with run_uvicorn(app, free_port()) as url, httpx.Client(base_url=url, timeout=60) as http:
        def load() -> None:  # searches and Cypher reads, back to back, until told to stop
            i = 0
            while not stop.is_set() and i < 2000:
                i += 1
                if i % 2:
                    r = http.post("/v1/search", json={"query": "Who built the Kessary Bridge?", "k": 3}, headers=headers)
                else:
                    r = http.post("/v1/cypher", json={"query": "MATCH (e:Episode) RETURN count(e)"}, headers=headers)
                statuses.append((time.monotonic(), r.status_code))

        assert http.post("/v1/search", json={"query": "Kessary Bridge", "k": 3}, headers=headers).status_code == 200
        worker = threading.Thread(target=load)
        worker.start()
        time.sleep(1.0)
        server = EmbeddedServer(home)
        killed_at = time.monotonic()
        os.kill(server._pid(), signal.SIGKILL)
        time.sleep(4.0)
        stop.set()
        worker.join(60)

        after = [status for at, status in statuses if at > killed_at + 3.0]
        assert after and all(status == 200 for status in after), after
        assert {status for _, status in statuses} <= {200, 503}
        assert server.ping()  # the API brought the store back
        r = http.post("/v1/cypher", json={"query": "MATCH (e:Episode) RETURN count(e)"}, headers=headers)
        assert r.json()["rows"] == [[45]]  # nothing lost: the append-only file was replayed
