"""Dynamic batching: many small embedding requests in, few large model batches out.

:class:`Batcher` is the heart of ``graphmem embed-serve`` and knows nothing of
HTTP. Requests are queued as pieces of at most ``max_batch`` texts; one worker
thread per device (GPU) takes pieces until it holds ``max_batch`` texts or the
oldest piece has waited ``max_wait_ms``, sorts the texts by length (so a batch
pads little), runs the model, and scatters the rows back to each request's
future. The queue is bounded in texts: :meth:`Batcher.submit` raises
:class:`QueueFull` instead of letting latency grow without limit.

While the device computes one batch, the worker already takes and tokenizes
the next one (an :class:`Encoder` starts work in :meth:`Encoder.start` and
hands results over in :meth:`Pending.result`), so a GPU is not left idle
while the CPU prepares inputs.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


class QueueFull(Exception):
    """The queue holds too many texts; retry after :attr:`retry_after` seconds."""

    def __init__(self, waiting: int, limit: int, retry_after: float) -> None:
        super().__init__(f"embedding queue is full ({waiting} texts waiting, limit {limit}); retry later")
        self.retry_after = retry_after


class BatcherClosed(Exception):
    """The batcher is shutting down and takes no new work."""


class Pending(Protocol):
    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """Block until done: (float32 unit vectors (n, dim), token counts (n,))."""
        ...

    def done(self) -> bool:
        """Whether :meth:`result` would return at once (optional; assumed False if missing)."""
        ...


def _ready(pending: Pending) -> bool:
    """Whether ``pending`` already holds its result (``done()`` if it has one, else assume not)."""
    done = getattr(pending, "done", None)
    return bool(done()) if done is not None else False


class Encoder(Protocol):
    """One model replica on one device."""

    dim: int
    device: str

    def start(self, texts: list[str]) -> Pending:
        """Tokenize and launch the model on ``texts``; may return before the device is done."""
        ...


@dataclass
class Done:
    """A :class:`Pending` whose result is already there (CPU encoders, tests)."""

    vectors: np.ndarray
    tokens: np.ndarray

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        return self.vectors, self.tokens

    def done(self) -> bool:
        return True


class FunctionEncoder:
    """An :class:`Encoder` around a plain ``texts -> vectors`` function (synchronous)."""

    def __init__(self, fn: Callable[[list[str]], np.ndarray], dim: int, device: str = "cpu") -> None:
        self.fn, self.dim, self.device = fn, dim, device

    def start(self, texts: list[str]) -> Pending:
        vectors = np.asarray(self.fn(texts), dtype=np.float32)
        return Done(vectors, np.array([len(t.split()) for t in texts], dtype=np.int64))


class _Job:
    """One request: its texts, where its rows go, and the future its caller waits on."""

    __slots__ = ("texts", "future", "vectors", "tokens", "remaining", "lock")

    def __init__(self, texts: list[str], dim: int) -> None:
        self.texts = texts
        self.future: Future = Future()
        self.vectors = np.empty((len(texts), dim), dtype=np.float32)
        self.tokens = np.zeros(len(texts), dtype=np.int64)
        self.remaining = len(texts)
        self.lock = threading.Lock()


@dataclass
class _Piece:
    job: _Job
    start: int
    end: int
    enqueued: float

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass
class BatcherStats:
    """Counters the service exports on /metrics (updated under the batcher's lock)."""

    batches: int = 0
    texts: int = 0
    tokens: int = 0
    busy: int = 0
    errors: int = 0
    completed: deque = field(default_factory=lambda: deque(maxlen=4096))  # (time, n texts) for texts/s


class Batcher:
    """Queue + one worker thread per :class:`Encoder`; see the module docstring.

    ``submit(texts)`` returns a :class:`concurrent.futures.Future` resolving to
    ``(vectors, token_counts)`` with rows in the order of ``texts``.
    """

    def __init__(
        self,
        encoders: Sequence[Encoder],
        *,
        max_batch: int = 256,
        max_wait_ms: float = 5.0,
        max_queue: int = 16384,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        if not encoders:
            raise ValueError("Batcher needs at least one encoder")
        if max_batch < 1 or max_queue < max_batch:
            raise ValueError("need max_batch >= 1 and max_queue >= max_batch")
        self.encoders = list(encoders)
        self.dim = int(self.encoders[0].dim)
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.on_batch = on_batch
        self.stats = BatcherStats()
        self._queue: deque[_Piece] = deque()
        self._waiting = 0  # texts in the queue
        self._cond = threading.Condition()
        self._closing = False
        self._threads = [
            threading.Thread(target=self._run, args=(enc,), name=f"embed-worker-{i}", daemon=True)
            for i, enc in enumerate(self.encoders)
        ]
        for thread in self._threads:
            thread.start()

    # -- producer side ------------------------------------------------------------
    @property
    def queue_depth(self) -> int:
        """Texts waiting for a worker (not counting batches being computed)."""
        return self._waiting

    @property
    def closing(self) -> bool:
        """Whether :meth:`close` was called: new work is refused, queued work is drained or failed."""
        return self._closing

    def submit(self, texts: Sequence[str]) -> Future:
        """Queue ``texts``; raises :class:`QueueFull` or :class:`BatcherClosed` instead of queueing."""
        job = _Job(list(texts), self.dim)
        if not job.texts:
            job.future.set_result((job.vectors, job.tokens))
            return job.future
        now = time.monotonic()
        with self._cond:
            if self._closing:
                raise BatcherClosed("the embedding service is shutting down")
            if self._waiting + len(job.texts) > self.max_queue:
                raise QueueFull(self._waiting, self.max_queue, self._retry_after())
            for start in range(0, len(job.texts), self.max_batch):
                piece = _Piece(job, start, min(start + self.max_batch, len(job.texts)), now)
                self._queue.append(piece)
            self._waiting += len(job.texts)
            self._cond.notify_all()
        return job.future

    def cancel(self, future: Future) -> None:
        """Drop a request's pieces that no worker took yet (its caller gave up)."""
        with self._cond:
            kept = deque(p for p in self._queue if p.job.future is not future)
            self._waiting -= sum(p.size for p in self._queue if p.job.future is future)
            self._queue = kept

    def _retry_after(self) -> float:
        """Seconds for the queue to drain at the recent rate (at least 1)."""
        rate = self.texts_per_second()
        return max(1.0, min(60.0, self._waiting / rate)) if rate > 0 else 1.0

    def texts_per_second(self, window: float = 10.0) -> float:
        now = time.monotonic()
        recent = [(t, n) for t, n in list(self.stats.completed) if now - t <= window]
        if not recent:
            return 0.0
        span = max(now - recent[0][0], 1e-3)
        return sum(n for _, n in recent) / span if len(recent) > 1 else recent[0][1] / max(window, span)

    # -- shutdown -----------------------------------------------------------------------
    def close(self, drain: bool = True, timeout: float | None = None) -> None:
        """Stop taking work; with ``drain`` finish everything queued, else fail it."""
        with self._cond:
            self._closing = True
            if not drain:
                for piece in self._queue:
                    if not piece.job.future.done():
                        piece.job.future.set_exception(BatcherClosed("the embedding service shut down"))
                self._queue.clear()
                self._waiting = 0
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    # -- worker side -----------------------------------------------------------------------
    def _take(self, block: bool) -> list[_Piece] | None:
        """Up to ``max_batch`` texts' worth of pieces; [] if none ready and not ``block``;
        None once closing and the queue is empty."""
        with self._cond:
            while not self._queue:
                if self._closing:
                    return None
                if not block:
                    return []
                self._cond.wait()
            # Wait for a fuller batch, but never past the oldest piece's deadline.
            deadline = self._queue[0].enqueued + self.max_wait
            while self._waiting < self.max_batch and not self._closing:
                left = deadline - time.monotonic()
                if left <= 0 or not block:
                    break
                self._cond.wait(left)
            taken: list[_Piece] = []
            size = 0
            while self._queue and size + self._queue[0].size <= self.max_batch:
                piece = self._queue.popleft()
                taken.append(piece)
                size += piece.size
            self._waiting -= size
            self.stats.busy += 1
            return taken

    def _run(self, encoder: Encoder) -> None:
        in_flight: tuple[list[_Piece], list[int], Pending, float] | None = None
        while True:
            pieces = self._take(block=in_flight is None)
            started = None
            if pieces:
                texts: list[str] = []
                for piece in pieces:
                    texts.extend(piece.job.texts[piece.start : piece.end])
                # Longest first: similar lengths share a batch, so little padding is computed.
                order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
                try:
                    started = (pieces, order, encoder.start([texts[i] for i in order]), time.perf_counter())
                except BaseException as exc:  # noqa: BLE001 - handed to the callers
                    self._fail(pieces, exc)
            if in_flight is not None:
                self._finish(*in_flight)
            in_flight = None
            if started is not None:
                if _ready(started[2]):  # a synchronous (CPU) encoder: answer now, not after the next batch
                    self._finish(*started)
                else:
                    in_flight = started
            if pieces is None:
                return

    def _finish(self, pieces: list[_Piece], order: list[int], pending: Pending, t0: float) -> None:
        try:
            vectors, tokens = pending.result()
        except BaseException as exc:  # noqa: BLE001
            self._fail(pieces, exc)
            return
        # Undo the length sort, then hand each piece its rows.
        rows = np.empty_like(vectors)
        rows[order] = vectors
        counts = np.empty_like(tokens)
        counts[order] = tokens
        offset = 0
        for piece in pieces:
            job, n = piece.job, piece.size
            job.vectors[piece.start : piece.end] = rows[offset : offset + n]
            job.tokens[piece.start : piece.end] = counts[offset : offset + n]
            offset += n
            with job.lock:
                job.remaining -= n
                last = job.remaining == 0
            if last and not job.future.done():
                job.future.set_result((job.vectors, job.tokens))
        seconds = time.perf_counter() - t0
        with self._cond:
            stats = self.stats
            stats.busy -= 1
            stats.batches += 1
            stats.texts += len(order)
            stats.tokens += int(counts.sum())
            stats.completed.append((time.monotonic(), len(order)))
        if self.on_batch:
            self.on_batch(len(order), seconds)

    def _fail(self, pieces: list[_Piece], exc: BaseException) -> None:
        with self._cond:
            self.stats.busy -= 1
            self.stats.errors += 1
        for piece in pieces:
            if not piece.job.future.done():
                piece.job.future.set_exception(exc)
