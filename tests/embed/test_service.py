"""The embedding service (`graphmem embed-serve`), on CPU with the real MiniLM.

Every service here is a real uvicorn on 127.0.0.1 with a free port, run in a
thread; the model is loaded once per session and shared by the local embedder
(the reference) and the service replicas. Tests that need a batch to stay on the
device hold it at a :class:`~tests.embed.helpers.GatedEncoder` around the real
encoder, so what is queued behind it is known, not hoped for.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

# imported after the skips above (E402): without the server packages the module is skipped, not broken
from graphmem.embed.runner import ModelEncoder  # noqa: E402
from graphmem.embed.service import ServiceConfig, create_app  # noqa: E402
from tests.embed.helpers import DEADLINE_S, GatedEncoder, Server, passage, post, vectors_of, wait_for  # noqa: E402

pytestmark = pytest.mark.slow


def service(local, gated: bool = False, **overrides) -> tuple[Server, GatedEncoder | ModelEncoder]:
    """A service on the session's model; with ``gated`` its batches wait at the encoder's gate."""
    config = ServiceConfig(model="minilm", device="cpu", **overrides)
    encoder: GatedEncoder | ModelEncoder = ModelEncoder("minilm", "cpu", model_obj=local.model)
    if gated:
        encoder = GatedEncoder(encoder)
    return Server(create_app(config, encoders=[encoder])), encoder


@pytest.fixture(scope="module")
def server(local):
    srv, _ = service(local, max_batch=64, max_wait_ms=200, max_texts=32, max_chars=4000)
    with srv:
        yield srv


# -- the service --------------------------------------------------------------------------------
def _post_behind_a_held_batch(srv: Server, gated: GatedEncoder, requests: list[list[str]]) -> list:
    """Send ``requests`` at once while the first batch is held on the device; let the batches
    run only once every text is either held or queued; the responses, in order."""
    total = sum(len(texts) for texts in requests)
    with ThreadPoolExecutor(len(requests)) as pool:
        futures = [pool.submit(post, srv.url, {"input": texts, "encoding_format": "base64"}) for texts in requests]
        assert gated.entered.wait(DEADLINE_S)
        wait_for(lambda: srv.metrics()["graphmem_embed_queue_depth"] + gated.held == total, what="all texts queued")
        gated.gate.set()
        return [future.result() for future in futures]


def test_concurrent_requests_are_merged_and_answered_in_order(local):
    srv, gated = service(local, gated=True, max_batch=64, max_wait_ms=0)
    requests = [[passage(r * 10 + j, words=5 + 3 * j) for j in range(4)] for r in range(16)]
    with srv:
        responses = _post_behind_a_held_batch(srv, gated, requests)
        after = srv.metrics()
    for texts, response in zip(requests, responses, strict=True):
        assert response.status_code == 200, response.text
        np.testing.assert_allclose(vectors_of(response), local.embed(texts), atol=2e-5)
    assert after["graphmem_embed_texts_total"] == 64
    # the held batch, then everything queued behind it (at most 60 texts) in one batch of up to 64
    assert after["graphmem_embed_batches_total"] <= 2, after
    assert after["graphmem_embed_batch_size_count"] - after['graphmem_embed_batch_size_bucket{le="16"}'] >= 1
    assert after['graphmem_embed_requests_total{code="200"}'] == 16


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


@pytest.mark.parametrize(
    "body, status, needle",
    [
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
    ],
)
def test_bad_requests_get_clear_errors(server, body, status, needle):
    response = post(server.url, body)
    assert response.status_code == status, response.text
    assert needle in response.json()["error"]["message"]


def test_full_queue_gets_429_with_retry_after(local):
    long = [passage(i, words=150) for i in range(16)]
    srv, gated = service(local, gated=True, max_batch=16, max_queue=16, max_wait_ms=0)
    with srv, ThreadPoolExecutor(2) as pool:
        first = pool.submit(post, srv.url, {"input": long})
        assert gated.entered.wait(DEADLINE_S)  # the first request is on the device
        second = pool.submit(post, srv.url, {"input": long})  # waits in the queue (16 texts = the limit)
        wait_for(lambda: srv.metrics()["graphmem_embed_queue_depth"] == 16, what="second request queued")
        third = post(srv.url, {"input": ["one more"]})
        gated.gate.set()
        assert third.status_code == 429, third.text
        assert int(third.headers["retry-after"]) >= 1
        assert third.json()["error"]["type"] == "rate_limit_error"
        assert "queue is full" in third.json()["error"]["message"]
        assert first.result(DEADLINE_S).status_code == 200 and second.result(DEADLINE_S).status_code == 200
        metrics = srv.metrics()
    assert metrics['graphmem_embed_requests_total{code="429"}'] == 1
    assert metrics['graphmem_embed_requests_total{code="200"}'] == 2


def test_shutdown_finishes_requests_in_flight(local):
    long = [passage(100 + i, words=150) for i in range(16)]
    srv, gated = service(local, gated=True, max_batch=16, max_wait_ms=0)
    with srv, ThreadPoolExecutor(2) as pool:
        first = pool.submit(post, srv.url, {"input": long})
        assert gated.entered.wait(DEADLINE_S)
        second = pool.submit(post, srv.url, {"input": long[:8]})
        wait_for(lambda: srv.metrics()["graphmem_embed_queue_depth"] == 8, what="second request queued")
        srv.server.should_exit = True  # what SIGTERM does
        wait_for(lambda: not srv.accepting(), what="the server to stop accepting connections")
        gated.gate.set()  # only now, while shutting down, may the two requests finish
        r1, r2 = first.result(DEADLINE_S), second.result(DEADLINE_S)
        srv.thread.join(DEADLINE_S)
        assert not srv.thread.is_alive()
    assert r1.status_code == r2.status_code == 200
    np.testing.assert_allclose(vectors_of(r1), local.embed(long), atol=2e-5)
    np.testing.assert_allclose(vectors_of(r2), local.embed(long[:8]), atol=2e-5)


def test_request_timeout_gets_504(local):
    long = [passage(200 + i, words=150) for i in range(16)]
    srv, gated = service(local, gated=True, max_batch=16, max_wait_ms=0, request_timeout_s=0.05)
    with srv:
        try:
            response = post(srv.url, {"input": long})  # held on the device past its 0.05 s
        finally:
            gated.gate.set()
        assert response.status_code == 504, response.text
        assert "longer than 0.05 s" in response.json()["error"]["message"]
        assert response.json()["error"]["type"] == "timeout_error"
        assert srv.metrics()['graphmem_embed_requests_total{code="504"}'] == 1


def test_ingestion_through_the_service_matches_local(server, local, tmp_path):
    """Service embeddings + parallel extraction (batches overlapped) build the same graph
    as local embeddings + in-process extraction."""
    from graphmem.memory import Memory

    docs = ["examples/docs/brightwater_looms.md", "examples/docs/caskmere_art_gallery.md"]
    question = "Which river flows past the town where the Halvard Library stands?"
    with Memory(
        home=tmp_path / "remote",
        embedder=server.url,
        extract_processes=2,
        batch_size=1,
        chunk_words=40,
        chunk_overlap=5,
    ) as remote_mem:
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
        assert encoder.dim == 384 and encoder.name == "minilm" and encoder.fast_tokenizer
        gated = GatedEncoder(encoder)
        config = ServiceConfig(model="minilm", device="cpu", max_batch=16, max_wait_ms=0)
        requests = [[passage(500 + r * 10 + j, words=4 + 5 * j) for j in range(3)] for r in range(12)]
        with Server(create_app(config, encoders=[gated])) as srv:
            responses = _post_behind_a_held_batch(srv, gated, requests)
            batches = srv.metrics()["graphmem_embed_batches_total"]
        for texts, response in zip(requests, responses, strict=True):
            assert response.status_code == 200, response.text
            np.testing.assert_allclose(vectors_of(response), local.embed(texts), atol=2e-5)
        # the held batch, then at most 33 queued texts in pieces of 3: three batches of up to 16
        assert batches <= 4
    finally:
        encoder.close()
    assert not encoder._process.is_alive()
    with pytest.raises(RuntimeError, match="closed"):
        encoder.start(["after close"])
