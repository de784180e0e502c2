"""Admission control for expensive requests: a few slots shared by every key, one per key.

User Cypher runs on the store's query threads, which every tenant's searches and
ingestion also need. A key that floods it with slow queries must not take them
all: each key runs one query at a time, and all keys together at most
``slots`` (fewer than the store's threads). A request that cannot get a slot
within ``wait_s`` is answered 429 with ``Retry-After``.

A key whose query was running when the store stopped is paused (:meth:`QuerySlots.pause`):
some expressions allocate past every budget inside one record, and the store
restarts after such a crash, so without a pause one key could stop it again and again.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class Busy(Exception):
    """No slot: the message says why; ``retry_after`` is in seconds."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QuerySlots:
    def __init__(self, slots: int, wait_s: float) -> None:
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self._slots = threading.BoundedSemaphore(slots)
        self._wait_s = wait_s
        self._running: set[str] = set()
        self._paused: dict[str, float] = {}  # key -> monotonic time its pause ends
        self._lock = threading.Lock()

    def pause(self, key: str, seconds: float) -> None:
        """Refuse ``key``'s queries for ``seconds``."""
        with self._lock:
            self._paused[key] = time.monotonic() + seconds

    @contextmanager
    def take(self, key: str) -> Iterator[None]:
        """Hold a slot for ``key`` while the block runs; :class:`Busy` if there is none."""
        with self._lock:
            left = self._paused.get(key, 0.0) - time.monotonic()
            if left > 0:
                raise Busy(
                    "the store stopped while this key's last Cypher query ran; Cypher is paused for this key "
                    f"for another {math.ceil(left)} s",
                    retry_after=math.ceil(left),
                )
            if key in self._running:
                raise Busy("this key already has a Cypher query running; wait for it to finish")
            self._running.add(key)
        try:
            if not self._slots.acquire(timeout=self._wait_s):
                raise Busy("every Cypher slot is busy; try again shortly")
            try:
                yield
            finally:
                self._slots.release()
        finally:
            with self._lock:
                self._running.discard(key)
