"""The client of ``graphmem embed-serve`` (or any OpenAI-compatible embeddings endpoint).

``HTTPEmbedder("http://gpu-box:8081")`` implements the
:class:`~graphmem.embed.base.Embedder` protocol: ``embed(texts)`` splits the
texts into requests of ``batch_size``, sends up to ``concurrency`` of them at
once over one connection pool, and retries 429 (honouring ``Retry-After``),
500, 502, 503, 504 and connection errors with exponential backoff and jitter. Vectors
travel as base64 float32 and come back L2-normalised, in input order.
"""

from __future__ import annotations

import base64
import contextlib
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from graphmem.errors import ConfigError, GraphmemError

if TYPE_CHECKING:
    import httpx

RETRY_STATUS = {429, 500, 502, 503, 504}


class EmbeddingServiceError(GraphmemError):
    """The embedding service refused a request or stayed unreachable after retries."""


class HTTPEmbedder:
    """:class:`~graphmem.embed.base.Embedder` backed by an embedding service.

    ``name`` and ``dim`` come from the service's ``/healthz`` (or, for a plain
    OpenAI-compatible server without it, from embedding one probe text), so a
    graph built with the same model locally and through the service agrees.
    """

    def __init__(
        self,
        url: str,
        *,
        model: str | None = None,
        batch_size: int = 512,
        concurrency: int = 8,
        retries: int = 6,
        backoff_s: float = 0.25,
        timeout_s: float = 120.0,
        api_key: str | None = None,
    ) -> None:
        import httpx

        self.url = url.rstrip("/")
        if self.url.endswith("/v1/embeddings"):
            self.url = self.url[: -len("/v1/embeddings")]
        self.batch_size = max(1, batch_size)
        self.concurrency = max(1, concurrency)
        self.retries = retries
        self.backoff_s = backoff_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        self._client = httpx.Client(base_url=self.url, timeout=timeout_s, limits=limits, headers=headers)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._httpx = httpx
        self.model = model
        self.max_chars = 1_000_000
        self.name, self.dim = self._describe()
        self.model = self.model or self.name

    def _describe(self) -> tuple[str, int]:
        try:
            response = self._request("GET", "/healthz")
        except EmbeddingServiceError as exc:
            raise ConfigError(f"embedding service at {self.url} is not reachable: {exc}") from None
        if response.status_code == 200:
            info = response.json()
            # Stay inside the service's per-request limits (it answers 413 beyond them).
            self.batch_size = min(self.batch_size, int(info.get("max_texts") or self.batch_size))
            self.max_chars = int(info.get("max_chars") or self.max_chars)
            return str(self.model or info["model"]), int(info["dim"])
        # Not graphmem's service: learn the size from one embedding.
        probe = self._post_batch(["dimension probe"])
        return str(self.model or "remote"), int(probe.shape[1])

    # -- transport -------------------------------------------------------------------------
    def _request(self, method: str, path: str, json: dict | None = None) -> httpx.Response:
        """One HTTP call with retries on 429/5xx/connection errors; returns the last response."""
        httpx = self._httpx
        delay = self.backoff_s
        for attempt in range(self.retries + 1):
            try:
                response = self._client.request(method, path, json=json)
            except httpx.TransportError as exc:
                if attempt == self.retries:
                    raise EmbeddingServiceError(f"{method} {self.url}{path} failed: {exc}") from None
                wait = delay
            else:
                if response.status_code not in RETRY_STATUS or attempt == self.retries:
                    return response
                wait = delay
                retry_after = response.headers.get("retry-after")
                if retry_after:
                    with contextlib.suppress(ValueError):
                        wait = max(wait, float(retry_after))
            time.sleep(wait * (0.5 + random.random()))  # jitter: concurrent clients should not retry in step
            delay = min(delay * 2, 10.0)
        raise AssertionError("unreachable")

    def _post_batch(self, texts: list[str]) -> np.ndarray:
        body = {"input": texts, "encoding_format": "base64"}
        if self.model:
            body["model"] = self.model
        response = self._request("POST", "/v1/embeddings", json=body)
        if response.status_code != 200:
            try:
                message = response.json()["error"]["message"]
            except Exception:  # noqa: BLE001 - not an OpenAI error body
                message = response.text[:300]
            raise EmbeddingServiceError(f"embedding service answered {response.status_code}: {message}")
        data = sorted(response.json()["data"], key=lambda item: item["index"])
        if len(data) != len(texts):
            raise EmbeddingServiceError(f"embedding service returned {len(data)} vectors for {len(texts)} texts")
        rows = [
            np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4")
            if isinstance(item["embedding"], str)
            else np.asarray(item["embedding"], dtype=np.float32)
            for item in data
        ]
        return np.vstack(rows).astype(np.float32, copy=False)

    # -- Embedder ------------------------------------------------------------------------------
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` (rows in order, float32, unit length); raises :class:`EmbeddingServiceError`."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # The service rejects "" (as OpenAI does); a space tokenizes to the same (no) tokens.
        texts = [t if t else " " for t in texts]
        chunks = self._chunks(texts)
        if len(chunks) == 1 or self.concurrency == 1:
            parts = [self._post_batch(c) for c in chunks]
        else:
            parts = list(self._executor().map(self._post_batch, chunks))
        vectors = np.vstack(parts)
        if vectors.shape != (len(texts), self.dim):
            raise EmbeddingServiceError(
                f"embedding service returned shape {vectors.shape}, expected {(len(texts), self.dim)}"
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)

    def _chunks(self, texts: list[str]) -> list[list[str]]:
        """Requests of at most ``batch_size`` texts and ``max_chars`` characters (a longer text goes alone)."""
        chunks: list[list[str]] = [[]]
        chars = 0
        for text in texts:
            if chunks[-1] and (len(chunks[-1]) >= self.batch_size or chars + len(text) > self.max_chars):
                chunks.append([])
                chars = 0
            chunks[-1].append(text)
            chars += len(text)
        return chunks

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="graphmem-embed-http")
            return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._client.close()

    def __repr__(self) -> str:
        return f"HTTPEmbedder({self.url!r}, name={self.name!r}, dim={self.dim})"
