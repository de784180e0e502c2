"""The client of the embedding service (HTTPEmbedder) against a real service on 127.0.0.1."""

from __future__ import annotations

import socket
import threading

import numpy as np
import pytest

pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

# imported after the skips above (E402): without the server packages the module is skipped, not broken
from graphmem.embed import get_embedder  # noqa: E402
from graphmem.embed.http import EmbeddingServiceError, HTTPEmbedder  # noqa: E402
from graphmem.embed.runner import ModelEncoder  # noqa: E402
from graphmem.embed.service import ServiceConfig, create_app  # noqa: E402
from graphmem.errors import ConfigError  # noqa: E402
from tests.embed.helpers import GatedEncoder, Server, passage, wait_for  # noqa: E402

pytestmark = pytest.mark.slow


def _service(local, gated: bool = False, **overrides) -> tuple[Server, GatedEncoder | ModelEncoder]:
    encoder: GatedEncoder | ModelEncoder = ModelEncoder("minilm", "cpu", model_obj=local.model)
    if gated:
        encoder = GatedEncoder(encoder)
    config = ServiceConfig(model="minilm", device="cpu", **overrides)
    return Server(create_app(config, encoders=[encoder])), encoder


@pytest.fixture(scope="module")
def server(local):
    srv, _ = _service(local, max_batch=64, max_wait_ms=0, max_texts=16, max_chars=2000)
    with srv:
        yield srv


def test_http_embedder_matches_local_vectors(server, local):
    remote = HTTPEmbedder(server.url, batch_size=5, concurrency=4)
    try:
        texts = [passage(300 + i, words=4 + i) for i in range(23)] + [""]
        got = remote.embed(texts)
        assert remote.name == local.name == "minilm" and remote.dim == 384
        assert got.dtype == np.float32 and got.shape == (24, 384)
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        np.testing.assert_allclose(got, local.embed(texts), atol=2e-5)
        assert remote.embed([]).shape == (0, 384)
    finally:
        remote.close()


def test_requests_stay_inside_the_service_limits(server, local):
    """The client learns max_texts and max_chars from /healthz and splits its requests to
    fit them (the service answers 413 beyond), a text longer than the limit going alone."""
    before = server.metrics()
    remote = HTTPEmbedder(server.url + "/v1/embeddings", batch_size=512, concurrency=2)
    try:
        assert remote.url == server.url and remote.batch_size == 16 and remote.max_chars == 2000
        texts = [passage(600 + i, words=40) for i in range(40)]  # ~300 characters each
        np.testing.assert_allclose(remote.embed(texts), local.embed(texts), atol=2e-5)
        chunks = remote._chunks(texts)
    finally:
        remote.close()
    assert [t for chunk in chunks for t in chunk] == texts
    assert all(len(chunk) <= 16 and sum(map(len, chunk)) <= 2000 for chunk in chunks)
    after = server.metrics()
    assert after.get('graphmem_embed_requests_total{code="413"}', 0) == before.get(
        'graphmem_embed_requests_total{code="413"}', 0
    )
    assert after['graphmem_embed_requests_total{code="200"}'] - before[
        'graphmem_embed_requests_total{code="200"}'
    ] == len(chunks)


def test_a_refused_request_is_an_error_naming_the_reason(server):
    remote = HTTPEmbedder(server.url, model="text-embedding-3-small", retries=0)
    try:
        assert remote.name == "text-embedding-3-small" and remote.dim == 384
        with pytest.raises(EmbeddingServiceError, match="answered 404: model 'text-embedding-3-small' is not served"):
            remote.embed(["a text"])
    finally:
        remote.close()


def test_http_embedder_retries_when_the_queue_is_full(local):
    texts = [passage(400 + i, words=30) for i in range(48)]
    srv, gated = _service(local, gated=True, max_batch=8, max_queue=8, max_wait_ms=0)
    with srv:
        remote = HTTPEmbedder(srv.url, batch_size=8, concurrency=6, backoff_s=0.05)

        def open_after_a_refusal() -> None:
            # six requests of 8 at once: one on the device, one queued, the rest refused with 429
            try:
                wait_for(lambda: srv.metrics().get('graphmem_embed_requests_total{code="429"}', 0) >= 1, what="a 429")
            finally:
                gated.gate.set()

        opener = threading.Thread(target=open_after_a_refusal)
        opener.start()
        try:
            got = remote.embed(texts)
        finally:
            opener.join()
            remote.close()
        metrics = srv.metrics()
    np.testing.assert_allclose(got, local.embed(texts), atol=2e-5)
    assert metrics['graphmem_embed_requests_total{code="429"}'] >= 1  # retried, and every text came back
    assert metrics["graphmem_embed_texts_total"] == 48


def test_http_embedder_reports_unreachable_service():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConfigError, match=f"embedding service at http://127.0.0.1:{port} is not reachable"):
        HTTPEmbedder(f"http://127.0.0.1:{port}", retries=1, backoff_s=0.01)


def test_get_embedder_gives_the_client_for_a_url(server):
    remote = get_embedder(server.url)
    assert isinstance(remote, HTTPEmbedder) and remote.name == "minilm" and remote.dim == 384
    assert get_embedder(server.url) is remote  # cached per process
