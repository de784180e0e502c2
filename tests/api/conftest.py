"""A real uvicorn on 127.0.0.1 serving the API over a copy of the sample corpus.

The sample corpus (examples/docs, ingested once per session) is served as group
``default``; key A may use ``default``, key B only ``beta``, the admin key
manages keys. Models are the session's (get_embedder and the spaCy extractor are
process-wide caches, so the server in this process reuses them).
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import pytest


@dataclass
class Server:
    url: str
    key_a: str
    key_b: str
    admin: str
    home: object

    def headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def run_uvicorn(app, port: int):
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.time() + 120
    while not server.started:
        if not thread.is_alive() or time.time() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(60)


def start_server(home, key_file, **config):
    from graphmem.api.app import ApiConfig, create_app
    from graphmem.api.auth import KeyStore
    from graphmem.config import Settings

    keys = KeyStore(key_file, env={})
    return create_app(Settings.from_env(home=home), keys, ApiConfig(**config)), keys


@pytest.fixture(scope="module")
def api(sample_home, tmp_path_factory, embedder, extractor):
    tmp = tmp_path_factory.mktemp("api")
    home = tmp / "home"
    shutil.copytree(sample_home, home, ignore=shutil.ignore_patterns("*.sock", "*.pid"))
    from graphmem.api.auth import KeyStore

    keys = KeyStore(tmp / "keys.json", env={})
    key_a, _ = keys.add(["default"], name="A")
    key_b, _ = keys.add(["beta"], name="B")
    admin, _ = keys.add([], admin=True, name="admin")
    app, _ = start_server(home, tmp / "keys.json", max_body_bytes=2_000_000, background_items=64)
    with run_uvicorn(app, free_port()) as url:
        yield Server(url, key_a, key_b, admin, home)


@pytest.fixture(scope="module")
def http(api):
    import httpx

    with httpx.Client(base_url=api.url, timeout=120) as client:
        yield client
