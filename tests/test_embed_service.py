"""The embedding service (`graphmem embed-serve`) and its client, on CPU with the real MiniLM.

Every service here is a real uvicorn on 127.0.0.1 with a free port, run in a
thread; the model is loaded once per session and shared by the local embedder
(the reference) and the service replicas.
"""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

from graphmem.embed import get_embedder  # noqa: E402
from graphmem.embed.batcher import Batcher, FunctionEncoder, QueueFull  # noqa: E402
from graphmem.embed.service import ServiceConfig, create_app  # noqa: E402

pytestmark = pytest.mark.slow

WORDS = ("river library archive bridge harbour mill tower garden engine lantern market orchard "
         "quarry chapel station meadow ferry foundry").split()


def passage(i: int, words: int = 12) -> str:
    rng = np.random.default_rng(i)
    return f"Passage {i}: " + " ".join(rng.choice(WORDS, size=words))


# -- a real uvicorn in a thread ----------------------------------------------------------
class Server:
    def __init__(self, app) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                timeout_graceful_shutdown=120, access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "Server":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 30) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def metrics(self) -> dict[str, float]:
        text = httpx.get(self.url + "/metrics").text
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, value = line.rsplit(" ", 1)
                values[key] = float(value)
        return values


@pytest.fixture(scope="session")
def local():
    """The reference: MiniLM in-process (CPU, fp32)."""
    return get_embedder("minilm", "cpu")


def service(local, **overrides) -> Server:
    from graphmem.embed.runner import ModelEncoder

    config = ServiceConfig(model="minilm", device="cpu", **overrides)
    encoder = ModelEncoder("minilm", "cpu", model_obj=local.model)
    return Server(create_app(config, encoders=[encoder]))


@pytest.fixture(scope="module")
def server(local):
    with service(local, max_batch=64, max_wait_ms=200, max_texts=32, max_chars=4000) as srv:
        yield srv


def post(url: str, body, **kw) -> httpx.Response:
    if isinstance(body, (bytes, str)):
        return httpx.post(url + "/v1/embeddings", content=body, headers={"content-type": "application/json"},
                          timeout=60, **kw)
    return httpx.post(url + "/v1/embeddings", json=body, timeout=60, **kw)


def vectors_of(response: httpx.Response) -> np.ndarray:
    data = response.json()["data"]
    assert [d["index"] for d in data] == list(range(len(data)))
    return np.array([np.frombuffer(base64.b64decode(d["embedding"]), "<f4") if isinstance(d["embedding"], str)
                     else d["embedding"] for d in data], dtype=np.float32)


# -- the batcher alone ------------------------------------------------------------------------
def _slow_identity(delay: float = 0.0):
    def fn(texts):
        time.sleep(delay)
        return np.array([[float(t.split()[0]), 1.0] for t in texts], dtype=np.float32)
    return fn


def test_batcher_merges_concurrent_submits_and_keeps_order():
    sizes: list[int] = []
    batcher = Batcher([FunctionEncoder(_slow_identity(0.01), dim=2)], max_batch=32, max_wait_ms=50,
                      on_batch=lambda n, s: sizes.append(n))
    futures = [batcher.submit([f"{r * 10 + j} x" for j in range(3)]) for r in range(20)]
    for r, future in enumerate(futures):
        vectors, _ = future.result(timeout=10)
        assert vectors[:, 0].tolist() == [r * 10 + j for j in range(3)]
    batcher.close()
    assert sum(sizes) == 60 and max(sizes) <= 32
    assert len(sizes) < 20  # merged across requests


def test_batcher_splits_large_requests_and_bounds_the_queue():
    gate = threading.Event()
    batcher = Batcher([FunctionEncoder(lambda t: (gate.wait(10), _slow_identity()(t))[1], dim=2)],
                      max_batch=4, max_wait_ms=0, max_queue=8)
    first = batcher.submit([f"{i} a" for i in range(4)])  # taken by the worker, which blocks on the gate
    deadline = time.monotonic() + 5
    while batcher.queue_depth and time.monotonic() < deadline:
        time.sleep(0.01)
    second = batcher.submit([f"{i} b" for i in range(8)])  # fills the queue: 8 texts, two pieces
    with pytest.raises(QueueFull) as info:
        batcher.submit(["1 c"])
    assert info.value.retry_after >= 1
    gate.set()
    assert first.result(5)[0][:, 0].tolist() == [0, 1, 2, 3]
    assert second.result(5)[0][:, 0].tolist() == list(range(8))
    batcher.close()


def test_batcher_close_drains_queued_work():
    batcher = Batcher([FunctionEncoder(_slow_identity(0.05), dim=2)], max_batch=2, max_wait_ms=0)
    futures = [batcher.submit([f"{i} z"]) for i in range(6)]
    batcher.close(drain=True, timeout=10)
    assert [f.result(0)[0][0, 0] for f in futures] == list(range(6))


# -- the service --------------------------------------------------------------------------------
def test_concurrent_requests_are_merged_and_answered_in_order(server, local):
    before = server.metrics()
    requests = [[passage(r * 10 + j, words=5 + 3 * j) for j in range(4)] for r in range(16)]
    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(lambda texts: post(server.url, {"input": texts, "model": "minilm",
                                                                  "encoding_format": "base64"}), requests))
    after = server.metrics()
    for texts, response in zip(requests, responses):
        assert response.status_code == 200, response.text
        np.testing.assert_allclose(vectors_of(response), local.embed(texts), atol=2e-5)
    batches = after["graphmem_embed_batches_total"] - before["graphmem_embed_batches_total"]
    texts_done = after["graphmem_embed_texts_total"] - before["graphmem_embed_texts_total"]
    assert texts_done == 64
    assert batches < 16, f"{batches} batches for 16 concurrent requests: nothing was merged"
    big = after['graphmem_embed_batch_size_count'] - after['graphmem_embed_batch_size_bucket{le="4"}']
    assert big >= 1  # at least one batch held texts of several requests


def test_openai_response_shape_float_and_base64(server, local):
    text = "The Halvard Library stands in Brightwater."
    plain = post(server.url, {"input": text})
    packed = post(server.url, {"input": [text], "encoding_format": "base64", "model": "minilm"})
    assert plain.status_code == packed.status_code == 200
    body = plain.json()
    assert body["object"] == "list" and body["model"] == "minilm"
    assert body["data"][0]["object"] == "embedding" and len(body["data"][0]["embedding"]) == 384
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 5
    np.testing.assert_allclose(vectors_of(plain), vectors_of(packed), atol=1e-6)
    np.testing.assert_allclose(vectors_of(plain)[0], local.embed([text])[0], atol=2e-5)
    health = httpx.get(server.url + "/healthz").json()
    assert health["dim"] == 384 and health["model"] == "minilm" and health["devices"] == ["cpu"]
    assert httpx.get(server.url + "/v1/models").json()["data"][0]["id"] == "minilm"


@pytest.mark.parametrize("body, status, needle", [
    (b"{not json", 422, "not valid JSON"),
    ({"model": "minilm"}, 422, "'input' is required"),
    ({"input": 42}, 422, "string or a list of strings"),
    ({"input": []}, 422, "empty list"),
    ({"input": ["ok", 7]}, 422, "input[1]"),
    ({"input": [[101, 2023]]}, 422, "token arrays are not supported"),
    ({"input": ["ok", ""]}, 422, "input[1]' is an empty string"),
    ({"input": "ok", "encoding_format": "int8"}, 422, "encoding_format"),
    ({"input": "ok", "dimensions": 128}, 422, "dimensions"),
    ({"input": "ok", "model": "text-embedding-3-small"}, 404, "not served"),
    ({"input": ["x"] * 33}, 413, "at most 32"),
    ({"input": ["y" * 3000, "z" * 1500]}, 413, "4500 characters"),
])
def test_bad_requests_get_clear_errors(server, body, status, needle):
    response = post(server.url, body)
    assert response.status_code == status, response.text
    assert needle in response.json()["error"]["message"]


def _wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.005)


def test_full_queue_gets_429_with_retry_after(local):
    long = [passage(i, words=150) for i in range(16)]
    with service(local, max_batch=16, max_queue=16, max_wait_ms=0) as srv, ThreadPoolExecutor(2) as pool:
        first = pool.submit(post, srv.url, {"input": long})
        _wait_for(lambda: srv.metrics()["graphmem_embed_busy_batches"] == 1)
        second = pool.submit(post, srv.url, {"input": long})  # waits in the queue (16 texts = the limit)
        _wait_for(lambda: srv.metrics()["graphmem_embed_queue_depth"] == 16)
        third = post(srv.url, {"input": ["one more"]})
        assert third.status_code == 429, third.text
        assert int(third.headers["retry-after"]) >= 1
        assert third.json()["error"]["type"] == "rate_limit_error"
        assert first.result(60).status_code == 200 and second.result(60).status_code == 200
        assert srv.metrics()['graphmem_embed_requests_total{code="429"}'] == 1


def test_shutdown_finishes_requests_in_flight(local):
    long = [passage(100 + i, words=150) for i in range(16)]
    srv = service(local, max_batch=16, max_wait_ms=0)
    with srv, ThreadPoolExecutor(2) as pool:
        first = pool.submit(post, srv.url, {"input": long})
        _wait_for(lambda: srv.metrics()["graphmem_embed_busy_batches"] == 1)
        second = pool.submit(post, srv.url, {"input": long[:8]})
        _wait_for(lambda: srv.metrics()["graphmem_embed_queue_depth"] >= 8)
        srv.server.should_exit = True  # what SIGTERM does
        r1, r2 = first.result(60), second.result(60)
        srv.thread.join(60)
        assert not srv.thread.is_alive()
    assert r1.status_code == r2.status_code == 200
    np.testing.assert_allclose(vectors_of(r1), local.embed(long), atol=2e-5)
    assert len(vectors_of(r2)) == 8


def test_request_timeout_gets_504(local):
    long = [passage(200 + i, words=150) for i in range(16)]
    with service(local, max_batch=16, max_wait_ms=0, request_timeout_s=0.05) as srv:
        response = post(srv.url, {"input": long})
        assert response.status_code == 504, response.text
        assert "longer than 0.05 s" in response.json()["error"]["message"]


# -- the client ----------------------------------------------------------------------------------------
def test_http_embedder_matches_local_vectors(server, local):
    from graphmem.embed.http import HTTPEmbedder

    remote = HTTPEmbedder(server.url, batch_size=5, concurrency=4)
    texts = [passage(300 + i, words=4 + i) for i in range(23)] + [""]
    got = remote.embed(texts)
    assert remote.name == local.name == "minilm" and remote.dim == 384
    assert got.dtype == np.float32 and got.shape == (24, 384)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, local.embed(texts), atol=2e-5)
    assert remote.embed([]).shape == (0, 384)
    remote.close()


def test_http_embedder_retries_when_the_queue_is_full(local):
    from graphmem.embed.http import HTTPEmbedder

    texts = [passage(400 + i, words=30) for i in range(48)]
    with service(local, max_batch=8, max_queue=8, max_wait_ms=0) as srv:
        remote = HTTPEmbedder(srv.url, batch_size=8, concurrency=6, backoff_s=0.05)
        got = remote.embed(texts)
        rejected = srv.metrics().get('graphmem_embed_requests_total{code="429"}', 0)
        remote.close()
    np.testing.assert_allclose(got, local.embed(texts), atol=2e-5)
    assert rejected >= 1  # the retries were exercised, and every text still came back


def test_http_embedder_reports_unreachable_service():
    from graphmem.embed.http import HTTPEmbedder
    from graphmem.errors import ConfigError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConfigError, match="not reachable"):
        HTTPEmbedder(f"http://127.0.0.1:{port}", retries=1, backoff_s=0.01)


def test_ingestion_through_the_service_matches_local(server, local, tmp_path):
    """Service embeddings + parallel extraction (batches overlapped) build the same graph
    as local embeddings + in-process extraction."""
    from graphmem.memory import Memory

    docs = ["examples/docs/brightwater_looms.md", "examples/docs/caskmere_art_gallery.md"]
    question = "Which river flows past the town where the Halvard Library stands?"
    with Memory(home=tmp_path / "remote", embedder=server.url, extract_processes=2, batch_size=1,
                chunk_words=40, chunk_overlap=5) as remote_mem:
        report = remote_mem.ingest(docs)
        assert report.passages > 3 and report.entities > 0
        remote_stats = remote_mem.stats()
        remote_hits = [h.uuid for h in remote_mem.search(question, k=3)]
        query_vector = remote_mem.embedder.embed([question])
    with Memory(home=tmp_path / "local", batch_size=1, chunk_words=40, chunk_overlap=5) as local_mem:
        local_mem.ingest(docs)
        assert local_mem.stats() == remote_stats
        assert [h.uuid for h in local_mem.search(question, k=3)] == remote_hits
    np.testing.assert_allclose(query_vector, local.embed([question]), atol=2e-5)


# -- the model in a worker process (what `embed-serve` does on CUDA) -------------------------
def test_worker_process_serves_the_same_vectors_and_stops(local):
    from graphmem.embed.worker import ProcessEncoder

    encoder = ProcessEncoder("minilm", "cpu")
    try:
        assert encoder.dim == 384 and encoder.fast_tokenizer
        config = ServiceConfig(model="minilm", device="cpu", max_batch=16, max_wait_ms=20)
        requests = [[passage(500 + r * 10 + j, words=4 + 5 * j) for j in range(3)] for r in range(12)]
        with Server(create_app(config, encoders=[encoder])) as srv, ThreadPoolExecutor(12) as pool:
            responses = list(pool.map(lambda texts: post(srv.url, {"input": texts, "encoding_format": "base64"}),
                                      requests))
            batches = srv.metrics()["graphmem_embed_batches_total"]
        for texts, response in zip(requests, responses):
            assert response.status_code == 200, response.text
            np.testing.assert_allclose(vectors_of(response), local.embed(texts), atol=2e-5)
        assert batches < 12  # still merged across requests
    finally:
        encoder.close()
    assert not encoder._process.is_alive()
    with pytest.raises(RuntimeError, match="closed"):
        encoder.start(["after close"])
