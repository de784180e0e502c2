"""The dynamic batcher alone (no HTTP, no model): merging, order, splitting, the bounded
queue, cancelling and draining. Encoders are plain functions whose batches the test can
hold at a gate, so what is queued at each moment is known."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from graphmem.embed.batcher import Batcher, BatcherClosed, FunctionEncoder, QueueFull
from tests.embed.helpers import DEADLINE_S, wait_for


class Gate:
    """A ``texts -> vectors`` function (row i = [first word of text i as a number, 1]) whose
    calls wait until :attr:`open` is set; :attr:`entered` says a call is waiting."""

    def __init__(self, open_: bool = False) -> None:
        self.open, self.entered = threading.Event(), threading.Event()
        if open_:
            self.open.set()
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        self.entered.set()
        if not self.open.wait(DEADLINE_S):
            raise RuntimeError("the test never opened the gate")
        return np.array([[float(t.split()[0]), 1.0] for t in texts], dtype=np.float32)


def test_batcher_merges_concurrent_submits_and_keeps_order():
    gate = Gate()
    sizes: list[int] = []
    batcher = Batcher(
        [FunctionEncoder(gate, dim=2)], max_batch=32, max_wait_ms=50, on_batch=lambda n, s: sizes.append(n)
    )
    try:
        futures = [batcher.submit([f"{r * 10 + j} x" for j in range(3)]) for r in range(20)]
        # every request is submitted while the first batch (whatever it took) is held
        gate.open.set()
        for r, future in enumerate(futures):
            vectors, tokens = future.result(timeout=DEADLINE_S)
            assert vectors[:, 0].tolist() == [r * 10 + j for j in range(3)]
            assert tokens.tolist() == [2, 2, 2]  # FunctionEncoder counts words
    finally:
        batcher.close()
    assert sum(sizes) == 60 and max(sizes) <= 32
    # the held batch, then the rest (at most 19 requests of 3 texts) in batches of 10 requests
    assert len(sizes) <= 3, sizes
    # each batch went to the model sorted longest first, and came back in request order
    assert all(call == sorted(call, key=len, reverse=True) for call in gate.calls)
    assert batcher.stats.batches == len(sizes) and batcher.stats.texts == 60 and batcher.stats.busy == 0


def test_batcher_splits_large_requests_and_bounds_the_queue():
    gate = Gate()
    batcher = Batcher([FunctionEncoder(gate, dim=2)], max_batch=4, max_wait_ms=0, max_queue=8)
    try:
        first = batcher.submit([f"{i} a" for i in range(4)])
        assert gate.entered.wait(DEADLINE_S)  # taken by the worker, which waits at the gate
        assert batcher.queue_depth == 0 and batcher.stats.busy == 1
        second = batcher.submit([f"{i} b" for i in range(8)])  # fills the queue: 8 texts, two pieces
        assert batcher.queue_depth == 8
        with pytest.raises(QueueFull) as info:
            batcher.submit(["1 c"])
        assert info.value.retry_after >= 1
        assert "8 texts waiting, limit 8" in str(info.value)
        gate.open.set()
        assert first.result(DEADLINE_S)[0][:, 0].tolist() == [0, 1, 2, 3]
        assert second.result(DEADLINE_S)[0][:, 0].tolist() == list(range(8))
    finally:
        batcher.close()
    assert [len(call) for call in gate.calls] == [4, 4, 4]  # the 8-text request went as two pieces


def test_cancel_drops_the_pieces_no_worker_took():
    gate = Gate()
    batcher = Batcher([FunctionEncoder(gate, dim=2)], max_batch=2, max_wait_ms=0)
    try:
        first = batcher.submit(["1 a", "2 a"])
        assert gate.entered.wait(DEADLINE_S)
        dropped = batcher.submit(["3 b", "4 b", "5 b"])
        kept = batcher.submit(["6 c"])
        assert batcher.queue_depth == 4
        batcher.cancel(dropped)
        assert batcher.queue_depth == 1
        gate.open.set()
        assert kept.result(DEADLINE_S)[0][:, 0].tolist() == [6]
        assert first.result(DEADLINE_S)[0][:, 0].tolist() == [1, 2]
    finally:
        batcher.close()
    assert not dropped.done()  # its caller gave up; nothing computes it
    assert sorted(t for call in gate.calls for t in call) == ["1 a", "2 a", "6 c"]


def test_batcher_close_drains_queued_work():
    gate = Gate()
    batcher = Batcher([FunctionEncoder(gate, dim=2)], max_batch=2, max_wait_ms=0)
    futures = [batcher.submit([f"{i} z"]) for i in range(6)]
    closer = threading.Thread(target=batcher.close, kwargs={"drain": True, "timeout": DEADLINE_S})
    closer.start()
    wait_for(lambda: batcher.closing, what="the batcher to close")
    with pytest.raises(BatcherClosed):
        batcher.submit(["7 late"])
    gate.open.set()
    closer.join(DEADLINE_S)
    assert not closer.is_alive()
    assert [f.result(0)[0][0, 0] for f in futures] == list(range(6))


def test_close_without_drain_fails_what_is_queued():
    gate = Gate()
    batcher = Batcher([FunctionEncoder(gate, dim=2)], max_batch=1, max_wait_ms=0)
    running = batcher.submit(["1 a"])
    assert gate.entered.wait(DEADLINE_S)
    queued = batcher.submit(["2 b"])
    closer = threading.Thread(target=batcher.close, kwargs={"drain": False, "timeout": DEADLINE_S})
    closer.start()
    with pytest.raises(BatcherClosed):
        queued.result(DEADLINE_S)
    gate.open.set()
    closer.join(DEADLINE_S)
    assert running.result(0)[0][:, 0].tolist() == [1]  # the batch on the device still finishes


def test_a_failing_model_fails_its_requests_and_the_batcher_keeps_serving():
    def model(texts: list[str]) -> np.ndarray:
        if any("boom" in t for t in texts):
            raise ValueError("model exploded")
        return np.array([[float(t.split()[0]), 1.0] for t in texts], dtype=np.float32)

    batcher = Batcher([FunctionEncoder(model, dim=2)], max_batch=4, max_wait_ms=0)
    try:
        with pytest.raises(ValueError, match="model exploded"):
            batcher.submit(["1 boom"]).result(DEADLINE_S)
        assert batcher.submit(["2 fine"]).result(DEADLINE_S)[0][:, 0].tolist() == [2]
    finally:
        batcher.close()
    assert batcher.stats.errors == 1 and batcher.stats.busy == 0


def test_empty_requests_and_bad_limits():
    batcher = Batcher([FunctionEncoder(Gate(open_=True), dim=2)], max_batch=4, max_wait_ms=0)
    try:
        vectors, tokens = batcher.submit([]).result(0)
        assert vectors.shape == (0, 2) and tokens.shape == (0,)
    finally:
        batcher.close()
    with pytest.raises(ValueError, match="at least one encoder"):
        Batcher([])
    with pytest.raises(ValueError, match="max_queue >= max_batch"):
        Batcher([FunctionEncoder(Gate(open_=True), dim=2)], max_batch=8, max_queue=4)
