"""Shared helpers of the embedding tests: a real uvicorn on 127.0.0.1 in a thread, requests,
and an encoder gate that holds a batch "on the device" until the test lets it go, so a test
knows exactly what is being computed and what waits in the queue (no sleeping, no races)."""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import uvicorn

WORDS = [
    "river",
    "library",
    "archive",
    "bridge",
    "harbour",
    "mill",
    "tower",
    "garden",
    "engine",
    "lantern",
    "market",
    "orchard",
    "quarry",
    "chapel",
    "station",
    "meadow",
    "ferry",
    "foundry",
]

#: the longest any test waits for a condition that, the test's own sequencing says, must come
DEADLINE_S = 60.0


def passage(i: int, words: int = 12) -> str:
    rng = np.random.default_rng(i)
    return f"Passage {i}: " + " ".join(rng.choice(WORDS, size=words))


def wait_for(predicate: Callable[[], bool], timeout: float = DEADLINE_S, what: str = "condition") -> None:
    """Return once ``predicate()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout:g} s")
        time.sleep(0.01)


class GatedEncoder:
    """A batching encoder around a real one whose batches wait at :attr:`gate` before they
    start. :attr:`entered` is set when a batch arrives there and :attr:`held` counts the
    texts waiting at the gate, so a test can hold the device busy, fill the queue behind
    it, look at the service, and then let everything through."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.dim, self.device = inner.dim, inner.device
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.held = 0
        self._lock = threading.Lock()

    def start(self, texts: list[str]) -> Any:
        with self._lock:
            self.held += len(texts)
        self.entered.set()
        try:
            if not self.gate.wait(DEADLINE_S):
                raise RuntimeError("the test never opened the gate")
        finally:
            with self._lock:
                self.held -= len(texts)
        return self.inner.start(texts)

    def memory_bytes(self) -> int:
        return 0


class Server:
    """A real uvicorn serving ``app`` on a free port of 127.0.0.1, in a thread."""

    def __init__(self, app: Any) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", timeout_graceful_shutdown=120, access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        wait_for(lambda: self.server.started or not self.thread.is_alive(), 30, "uvicorn start")
        if not self.server.started:
            raise RuntimeError("uvicorn did not start")
        return self

    def stop(self, timeout: float = 30) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def accepting(self) -> bool:
        """Whether the server still accepts connections (it stops first when shutting down)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def metrics(self) -> dict[str, float]:
        text = httpx.get(self.url + "/metrics").text
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, value = line.rsplit(" ", 1)
                values[key] = float(value)
        return values


def post(url: str, body: Any, **kw: Any) -> httpx.Response:
    if isinstance(body, (bytes, str)):
        return httpx.post(
            url + "/v1/embeddings",
            content=body,
            headers={"content-type": "application/json"},
            timeout=DEADLINE_S * 2,
            **kw,
        )
    return httpx.post(url + "/v1/embeddings", json=body, timeout=DEADLINE_S * 2, **kw)


def vectors_of(response: httpx.Response) -> np.ndarray:
    data = response.json()["data"]
    assert [d["index"] for d in data] == list(range(len(data)))
    return np.array(
        [
            np.frombuffer(base64.b64decode(d["embedding"]), "<f4")
            if isinstance(d["embedding"], str)
            else d["embedding"]
            for d in data
        ],
        dtype=np.float32,
    )
