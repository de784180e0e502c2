"""``graphmem embed-serve``: an OpenAI-compatible embedding service with dynamic batching.

Endpoints:

- ``POST /v1/embeddings``: ``{"input": str | [str, ...], "model": NAME?, "encoding_format": "float" | "base64"}``
  -> ``{"object": "list", "data": [{"object": "embedding", "index": i, "embedding": ...}], "model", "usage"}``.
  Vectors are L2-normalised float32 (base64: little-endian float32 bytes, as OpenAI's clients expect).
- ``GET /healthz``: ``{"status": "ok", "model", "dim", "devices", ...}`` (clients read ``dim`` here).
- ``GET /v1/models``: the one served model, OpenAI-style.
- ``GET /metrics``: Prometheus text: queue depth, batch sizes, request latency, texts/s, GPU memory.

Limits and errors (OpenAI's error body ``{"error": {"message", "type", "param", "code"}}``):
413 when a request has more than ``max_texts`` texts or ``max_chars`` characters;
422 for malformed requests (not JSON, wrong types, "" as OpenAI), naming the field;
429 with ``Retry-After`` when the request's texts would take the queue past ``max_queue``; 504 when a
request waited longer than ``request_timeout_s``; 503 while shutting down. On
SIGTERM/SIGINT uvicorn stops accepting connections and waits for requests in
flight; the batcher then drains what is queued before the process exits.
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations at runtime.

import asyncio
import base64
import json
import threading
import time
from bisect import bisect_left
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from graphmem.embed.batcher import Batcher, BatcherClosed, Encoder, QueueFull

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response


@dataclass
class ServiceConfig:
    """What ``graphmem embed-serve`` runs; every field is a CLI option."""

    model: str = "minilm"
    device: str = "auto"
    dtype: str = "auto"
    max_batch: int = 256
    max_wait_ms: float = 5.0
    max_queue: int = 16384
    max_texts: int = 2048
    max_chars: int = 1_000_000
    request_timeout_s: float = 60.0
    #: where each model replica runs: ``process`` (a child process per device, so the HTTP
    #: loop keeps its GIL), ``thread`` (in the serving process: no second model load, the
    #: better choice on CPU, where the model and not the HTTP loop is the limit), or ``auto``
    #: (``process`` when the replicas run on CUDA devices, else ``thread``)
    worker: str = "auto"
    #: extra names under which clients may ask for the model (``model`` in requests)
    aliases: list[str] = field(default_factory=list)


# -- metrics --------------------------------------------------------------------------------
class Histogram:
    """A Prometheus histogram (cumulative buckets + sum + count), thread-safe."""

    def __init__(self, name: str, help_: str, buckets: Sequence[float]) -> None:
        self.name, self.help, self.buckets = name, help_, list(buckets)
        self.counts = [0] * (len(self.buckets) + 1)
        self.sum = 0.0
        self.count = 0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        with self._lock:
            self.counts[bisect_left(self.buckets, value)] += 1
            self.sum += value
            self.count += 1

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        with self._lock:
            running = 0
            for bound, n in zip(self.buckets, self.counts, strict=False):
                running += n
                lines.append(f'{self.name}_bucket{{le="{bound:g}"}} {running}')
            lines.append(f'{self.name}_bucket{{le="+Inf"}} {self.count}')
            lines.append(f"{self.name}_sum {self.sum:.6f}")
            lines.append(f"{self.name}_count {self.count}")
        return lines


class Metrics:
    def __init__(self) -> None:
        self.batch_size = Histogram(
            "graphmem_embed_batch_size", "Texts per model batch.", [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048]
        )
        self.batch_seconds = Histogram(
            "graphmem_embed_batch_seconds",
            "Time from launching a batch to its results.",
            [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        )
        self.latency = Histogram(
            "graphmem_embed_request_latency_seconds",
            "Request latency in the service.",
            [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
        )
        self.responses: dict[int, int] = {}
        self._lock = threading.Lock()

    def count_response(self, status: int) -> None:
        with self._lock:
            self.responses[status] = self.responses.get(status, 0) + 1

    def on_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)


def render_metrics(metrics: Metrics, batcher: Batcher, encoders: Sequence[Encoder]) -> str:
    s = batcher.stats
    lines = [
        "# HELP graphmem_embed_requests_total Embedding requests answered, by HTTP status.",
        "# TYPE graphmem_embed_requests_total counter",
    ]
    with metrics._lock:
        for code, n in sorted(metrics.responses.items()):
            lines.append(f'graphmem_embed_requests_total{{code="{code}"}} {n}')
    gauges = [
        ("graphmem_embed_queue_depth", "gauge", "Texts waiting for a worker.", batcher.queue_depth),
        ("graphmem_embed_busy_batches", "gauge", "Batches being computed.", s.busy),
        ("graphmem_embed_batches_total", "counter", "Model batches run.", s.batches),
        ("graphmem_embed_texts_total", "counter", "Texts embedded.", s.texts),
        ("graphmem_embed_tokens_total", "counter", "Tokens embedded (after truncation).", s.tokens),
        ("graphmem_embed_batch_errors_total", "counter", "Batches that failed.", s.errors),
        (
            "graphmem_embed_texts_per_second",
            "gauge",
            "Texts embedded per second over the last 10 s.",
            round(batcher.texts_per_second(), 3),
        ),
    ]
    for name, kind, help_, value in gauges:
        lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}", f"{name} {value}"]
    lines += [
        "# HELP graphmem_embed_gpu_memory_bytes GPU memory reserved by the model replica.",
        "# TYPE graphmem_embed_gpu_memory_bytes gauge",
    ]
    for enc in encoders:
        memory = getattr(enc, "memory_bytes", lambda: 0)()
        lines.append(f'graphmem_embed_gpu_memory_bytes{{device="{enc.device}"}} {memory}')
    lines += metrics.batch_size.render() + metrics.batch_seconds.render() + metrics.latency.render()
    return "\n".join(lines) + "\n"


# -- request parsing -----------------------------------------------------------------------------
class RequestError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.headers = headers or {}


ERROR_TYPES = {
    413: "invalid_request_error",
    422: "invalid_request_error",
    404: "invalid_request_error",
    429: "rate_limit_error",
    503: "server_error",
    504: "timeout_error",
    500: "server_error",
}


def parse_request(body: bytes, config: ServiceConfig, served: set[str], dim: int) -> tuple[list[str], str]:
    """Validate an embeddings request body -> (texts, encoding_format); raises :class:`RequestError`."""
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(422, f"request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(payload, dict):
        raise RequestError(422, "request body must be a JSON object with an 'input' field", code="invalid_body")
    texts = _input_list(payload, config)
    _check_texts(texts, config)
    return texts, _encoding_format(payload, served, dim)


def _input_list(payload: dict, config: ServiceConfig) -> list:
    """The request's ``input`` as a list (a string is a list of one), not empty nor longer than ``max_texts``."""
    if "input" not in payload:
        raise RequestError(
            422, "'input' is required: a string or a list of strings", param="input", code="missing_field"
        )
    raw = payload["input"]
    if isinstance(raw, str):
        texts = [raw]
    elif isinstance(raw, list):
        texts = raw
    else:
        raise RequestError(
            422,
            f"'input' must be a string or a list of strings, not {type(raw).__name__}",
            param="input",
            code="invalid_type",
        )
    if not texts:
        raise RequestError(422, "'input' is an empty list", param="input", code="empty_input")
    if len(texts) > config.max_texts:
        raise RequestError(
            413,
            f"'input' has {len(texts)} texts; this service takes at most {config.max_texts} per request (split it)",
            param="input",
            code="too_many_inputs",
        )
    return texts


def _check_texts(texts: list, config: ServiceConfig) -> None:
    """Every input a non-empty string, and no more than ``max_chars`` characters in all."""
    chars = 0
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            what = (
                "token arrays are not supported, send strings"
                if isinstance(text, (int, list))
                else f"got {type(text).__name__}"
            )
            raise RequestError(422, f"'input[{i}]' must be a string ({what})", param=f"input[{i}]", code="invalid_type")
        if not text:
            raise RequestError(422, f"'input[{i}]' is an empty string", param=f"input[{i}]", code="empty_input")
        chars += len(text)
    if chars > config.max_chars:
        raise RequestError(
            413,
            f"'input' has {chars} characters; this service takes at most {config.max_chars} per request",
            param="input",
            code="request_too_large",
        )


def _encoding_format(payload: dict, served: set[str], dim: int) -> str:
    """The request's ``encoding_format``, once its ``model`` and ``dimensions`` (if given) are this service's."""
    model = payload.get("model")
    if model is not None and model not in served:
        raise RequestError(
            404,
            f"model {model!r} is not served here; this service serves {sorted(served)}",
            param="model",
            code="model_not_found",
        )
    fmt = payload.get("encoding_format", "float")
    if fmt not in ("float", "base64"):
        raise RequestError(
            422,
            f"'encoding_format' must be 'float' or 'base64', not {fmt!r}",
            param="encoding_format",
            code="invalid_value",
        )
    dimensions = payload.get("dimensions")
    if dimensions is not None and dimensions != dim:
        raise RequestError(
            422, f"'dimensions' must be {dim} (this model's size) or left out", param="dimensions", code="invalid_value"
        )
    return fmt


def render_embeddings(vectors: np.ndarray, tokens: np.ndarray, fmt: str, model: str) -> bytes:
    """The response body, built by hand: much faster than a pydantic model for thousands of floats."""
    if fmt == "base64":
        little = vectors.astype("<f4", copy=False)
        items = [
            f'{{"object":"embedding","index":{i},"embedding":"{base64.b64encode(row.tobytes()).decode()}"}}'
            for i, row in enumerate(little)
        ]
    else:
        items = [
            f'{{"object":"embedding","index":{i},"embedding":{json.dumps(row)}}}'
            for i, row in enumerate(vectors.tolist())
        ]
    used = int(tokens.sum())
    return (
        f'{{"object":"list","data":[{",".join(items)}],"model":{json.dumps(model)},'
        f'"usage":{{"prompt_tokens":{used},"total_tokens":{used}}}}}'
    ).encode()


# -- the app ------------------------------------------------------------------------------------------
def load_encoders(config: ServiceConfig) -> list[Encoder]:
    """One model replica per device (every visible GPU for ``cuda``/``auto``), each in its own
    worker process or in this one (``config.worker``)."""
    from graphmem.embed.runner import ModelEncoder, visible_devices

    devices = visible_devices(config.device)
    worker = config.worker
    if worker == "auto":
        worker = "process" if any(str(d).startswith("cuda") for d in devices) else "thread"
    if worker == "process":
        from graphmem.embed.worker import ProcessEncoder

        encoders: list[ProcessEncoder] = []
        try:
            for device in devices:
                encoders.append(ProcessEncoder(config.model, device, config.dtype))
        except BaseException:
            for encoder in encoders:
                encoder.close()
            raise
        return list(encoders)
    return [ModelEncoder(config.model, device, config.dtype) for device in devices]


class _Service:
    """What the app's routes share: the served model's names and, once started (``lifespan``),
    the encoders, the batcher and the metrics."""

    def __init__(self, config: ServiceConfig, encoders: Sequence[Encoder] | None) -> None:
        from graphmem.embed.runner import model_display_name

        self.config, self.given = config, encoders
        self.name = model_display_name(config.model)
        self.served = {self.name, config.model, *config.aliases}
        self.state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(self, app: "FastAPI") -> AsyncIterator[None]:
        """Load the models (unless given) and start the batcher; on shutdown, finish what is queued."""
        config, encoders = self.config, self.given
        encs = list(encoders) if encoders is not None else await asyncio.to_thread(load_encoders, config)
        metrics = Metrics()
        batcher = Batcher(
            encs,
            max_batch=config.max_batch,
            max_wait_ms=config.max_wait_ms,
            max_queue=config.max_queue,
            on_batch=metrics.on_batch,
        )
        self.state.update(encoders=encs, batcher=batcher, metrics=metrics, started=time.time())
        try:
            yield
        finally:
            # uvicorn has already waited for the requests in flight; finish anything still queued.
            await asyncio.to_thread(batcher.close, True, 60.0)
            if encoders is None:  # worker processes this app started
                for enc in encs:
                    close = getattr(enc, "close", None)
                    if close is not None:
                        await asyncio.to_thread(close)

    async def embeddings(self, request: "Request") -> "Response":
        """``POST /v1/embeddings``: the vectors, or an OpenAI error body; counted in the metrics."""
        from fastapi.responses import Response

        started = time.perf_counter()
        metrics: Metrics = self.state["metrics"]
        batcher: Batcher = self.state["batcher"]
        status = 200
        try:
            texts, fmt = parse_request(await request.body(), self.config, self.served, batcher.dim)
            vectors, tokens = await self.embed(batcher, texts)
            body = render_embeddings(vectors, tokens, fmt, self.name)
            return Response(body, media_type="application/json")
        except RequestError as exc:
            status = exc.status
            return _error_response(exc)
        except Exception as exc:  # a model failure: say what, keep serving
            status = 500
            return _error_response(RequestError(500, f"embedding failed: {type(exc).__name__}: {exc}", code="internal"))
        finally:
            metrics.count_response(status)
            if status == 200:
                metrics.latency.observe(time.perf_counter() - started)

    async def embed(self, batcher: Batcher, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(vectors, token counts) of ``texts`` through the batcher; a full queue, a shutdown or
        a wait past the request timeout is a :class:`RequestError`."""
        timeout = self.config.request_timeout_s
        try:
            future = batcher.submit(texts)
        except QueueFull as exc:
            raise RequestError(
                429, str(exc), code="queue_full", headers={"Retry-After": str(int(np.ceil(exc.retry_after)))}
            ) from None
        except BatcherClosed as exc:
            raise RequestError(503, str(exc), code="shutting_down") from None
        try:
            vectors, tokens = await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except TimeoutError:
            batcher.cancel(future)
            raise RequestError(504, f"embedding took longer than {timeout:g} s", code="timeout") from None
        except BatcherClosed as exc:
            raise RequestError(503, str(exc), code="shutting_down") from None
        return vectors, tokens

    def health(self) -> dict:
        config, state = self.config, self.state
        encs = state["encoders"]
        return {
            "status": "ok",
            "model": self.name,
            "dim": state["batcher"].dim,
            "devices": [e.device for e in encs],
            "max_batch": config.max_batch,
            "max_texts": config.max_texts,
            "max_chars": config.max_chars,
            "uptime_s": round(time.time() - state["started"], 1),
        }

    def models(self) -> dict:
        return {
            "object": "list",
            "data": [
                {"id": self.name, "object": "model", "created": int(self.state["started"]), "owned_by": "graphmem"}
            ],
        }

    def metrics_text(self) -> str:
        return render_metrics(self.state["metrics"], self.state["batcher"], self.state["encoders"])


def _error_response(exc: RequestError) -> "JSONResponse":
    """OpenAI's error body for ``exc``, with its status and headers."""
    from fastapi.responses import JSONResponse

    body = {
        "error": {
            "message": exc.message,
            "type": ERROR_TYPES.get(exc.status, "invalid_request_error"),
            "param": exc.param,
            "code": exc.code,
        }
    }
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)


def create_app(config: ServiceConfig | None = None, encoders: Sequence[Encoder] | None = None) -> "FastAPI":
    """The FastAPI app. Models load at startup (lifespan) unless ``encoders`` are given."""
    from fastapi import FastAPI, Request
    from fastapi.responses import PlainTextResponse, Response

    service = _Service(config or ServiceConfig(), encoders)
    app = FastAPI(
        title="graphmem embedding service",
        version="1",
        lifespan=service.lifespan,
        summary="OpenAI-compatible /v1/embeddings with dynamic batching",
    )

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Response:
        return await service.embeddings(request)

    @app.get("/healthz")
    async def healthz() -> dict:
        return service.health()

    @app.get("/v1/models")
    async def models() -> dict:
        return service.models()

    @app.get("/metrics")
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(service.metrics_text(), media_type="text/plain; version=0.0.4")

    return app


def serve(config: ServiceConfig, host: str = "127.0.0.1", port: int = 8081, log_level: str = "info") -> None:
    """Run the service in this process until SIGINT/SIGTERM (then finish requests in flight)."""
    import uvicorn

    uvicorn.run(
        create_app(config), host=host, port=port, log_level=log_level, timeout_graceful_shutdown=60, access_log=False
    )
