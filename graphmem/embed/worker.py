"""A model replica in its own process, as a batching :class:`~graphmem.embed.batcher.Encoder`.

Why: in one process the HTTP event loop and the thread that tokenizes and
launches GPU batches share one GIL, so on a fast GPU the serving loop, not the
model, limits the service. :class:`ProcessEncoder` runs
:class:`~graphmem.embed.runner.ModelEncoder` in a child process (spawned, one
per GPU) and talks to it over a pipe: the parent sends a batch's texts and gets
float32 vectors back, so the serving process keeps its GIL for HTTP.

The child keeps one batch on the device while it takes the next from the pipe,
as the in-process batcher does. Batches are answered in the order sent.

Used by ``embed-serve --worker process``, and by the default ``--worker auto``
whenever the replicas run on CUDA devices (on CPU ``auto`` keeps the model in
the serving process: there the model, not the HTTP loop, is the limit).
The service-against-ceiling figures of both workers are in benchmarks/README.md.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from concurrent.futures import Future
from multiprocessing.connection import Connection

import numpy as np

from graphmem.embed.batcher import Pending
from graphmem.errors import ConfigError


def _child(conn: Connection, model: str, device: str, dtype: str) -> None:
    """The worker: load the model, then serve ``(seq, texts)`` -> ``(seq, vectors, tokens, memory)``."""
    try:
        from graphmem.embed.runner import ModelEncoder

        encoder = ModelEncoder(model, device, dtype)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", {"dim": encoder.dim, "name": encoder.name, "fast": encoder.fast_tokenizer is not None}))
    in_flight = None  # (seq, pending)

    def finish(seq: int, pending: Pending) -> None:
        try:
            vectors, tokens = pending.result()
            conn.send(
                (
                    seq,
                    np.ascontiguousarray(vectors, dtype=np.float32),
                    np.asarray(tokens, dtype=np.int64),
                    encoder.memory_bytes(),
                )
            )
        except BaseException as exc:  # noqa: BLE001
            conn.send((seq, None, f"{type(exc).__name__}: {exc}", 0))

    while True:
        # Take the next batch only if one is waiting (or nothing is on the device):
        # a batch in flight is answered as soon as no other work is there.
        if in_flight is not None and not conn.poll():
            finish(*in_flight)
            in_flight = None
            continue
        message = conn.recv()
        if message is None:  # close: answer what is in flight, then stop
            if in_flight is not None:
                finish(*in_flight)
            return
        seq, texts = message
        try:
            started = (seq, encoder.start(texts))
        except BaseException as exc:  # noqa: BLE001
            started = None
            conn.send((seq, None, f"{type(exc).__name__}: {exc}", 0))
        if in_flight is not None:
            finish(*in_flight)
        in_flight = started


class _Pending:
    def __init__(self, future: Future) -> None:
        self.future = future

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        return self.future.result()

    def done(self) -> bool:
        return self.future.done()


class ProcessEncoder:
    """:class:`~graphmem.embed.batcher.Encoder` whose model runs in a child process.

    Same arguments as :class:`~graphmem.embed.runner.ModelEncoder`. Raises
    :class:`~graphmem.errors.ConfigError` if the child cannot load the model.
    Call :meth:`close` to stop the child (it answers batches already sent first).
    """

    def __init__(
        self, model: str = "minilm", device: str = "cpu", dtype: str = "auto", start_timeout_s: float = 600.0
    ) -> None:
        ctx = multiprocessing.get_context("spawn")  # never fork a parent that may hold CUDA or OpenMP state
        self._conn, child_conn = ctx.Pipe()
        self._process = ctx.Process(
            target=_child, args=(child_conn, model, device, dtype), name=f"graphmem-embed-{device}", daemon=True
        )
        self._process.start()
        child_conn.close()
        if not self._conn.poll(start_timeout_s):
            self._process.kill()
            raise ConfigError(f"the embedding worker for {device} did not start in {start_timeout_s:g} s")
        try:
            kind, info = self._conn.recv()
        except EOFError:
            raise ConfigError(f"the embedding worker for {device} exited while loading the model") from None
        if kind != "ready":
            self._process.join(10)
            raise ConfigError(f"the embedding worker for {device} could not load {model!r}: {info}")
        self.device, self.dim, self.name = device, int(info["dim"]), info["name"]
        self.fast_tokenizer = bool(info["fast"])
        self._memory = 0
        self._seq = 0
        self._futures: dict[int, Future] = {}
        self._lock = threading.Lock()  # sending and the table of futures
        self._closed = False
        self._reader = threading.Thread(target=self._read, name=f"graphmem-embed-reader-{device}", daemon=True)
        self._reader.start()

    def start(self, texts: list[str]) -> _Pending:
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the embedding worker is closed")
            self._seq += 1
            self._futures[self._seq] = future
            self._conn.send((self._seq, list(texts)))
        return _Pending(future)

    def _read(self) -> None:
        while True:
            try:
                seq, vectors, tokens, memory = self._conn.recv()
            except (EOFError, OSError):
                break
            with self._lock:
                future = self._futures.pop(seq, None)
            if future is None:
                continue
            if vectors is None:
                future.set_exception(RuntimeError(f"embedding worker: {tokens}"))
            else:
                self._memory = int(memory)
                future.set_result((vectors, tokens))
        # the child is gone: nothing pending will be answered
        with self._lock:
            pending, self._futures = list(self._futures.values()), {}
        for future in pending:
            future.set_exception(RuntimeError(f"the embedding worker for {self.device} exited"))

    def memory_bytes(self) -> int:
        """GPU memory the worker's model holds (as of its last batch); 0 on CPU."""
        return self._memory

    def close(self, timeout: float = 60.0) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            with contextlib.suppress(OSError):
                self._conn.send(None)
        self._process.join(timeout)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)
        self._reader.join(5)
        self._conn.close()
