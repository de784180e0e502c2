"""Progress of a long command on stderr: a rich bar on a terminal, plain lines otherwise.

On a terminal the bar shows done/total, elapsed time and an ETA. When stderr is
not a terminal (piped into a file or a log collector) a bar would print nothing
useful, so a plain line is printed at most every ``GRAPHMEM_PROGRESS_SECONDS``
seconds (default 10) and once at the end, e.g.
``ingesting passages: 1200/5000, 35.2/s, ETA 1m48s``, and at the end
``ingesting passages: 5012 in 2m22s, 35.3/s``. ``total`` may be an
estimate: when more is done than it said, the total grows to what is done.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import IO, Any

#: seconds between plain progress lines (when stderr is not a terminal)
INTERVAL_ENV = "GRAPHMEM_PROGRESS_SECONDS"


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get(INTERVAL_ENV, "10")))
    except ValueError:
        return 10.0


def duration(seconds: float) -> str:
    """``95`` -> ``1m35s``; ``3700`` -> ``1h01m``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class PlainProgress:
    """Plain progress lines on ``stream``: one at most every ``interval`` seconds, and a last
    one (what was done, in how long) when closed, if anything was done."""

    def __init__(self, total: int, label: str, stream: IO[str], interval: float) -> None:
        self.total, self.label, self.stream, self.interval = total, label, stream, interval
        self.done = 0
        self.started = time.monotonic()
        self._printed_at = self.started

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._printed_at >= self.interval:
            self._print(now)

    def line(self, now: float, final: bool = False) -> str:
        elapsed = max(now - self.started, 1e-9)
        total = max(self.total, self.done)
        rate = self.done / elapsed
        if final:
            return f"{self.label}: {self.done} in {duration(elapsed)}, {rate:.1f}/s"
        eta = duration((total - self.done) / rate) if rate > 0 else "unknown"
        return f"{self.label}: {self.done}/{total}, {rate:.1f}/s, ETA {eta}"

    def _print(self, now: float, final: bool = False) -> None:
        print(self.line(now, final), file=self.stream, flush=True)
        self._printed_at = now

    def close(self) -> None:
        if self.done:
            self._print(time.monotonic(), final=True)


class progress_display:
    """``with progress_display(total, label, quiet) as advance: ... advance(n)``: a rich bar
    when stderr is a terminal, plain lines when it is not (see the module), nothing with
    ``quiet`` or a total of 0."""

    def __init__(self, total: int, label: str, quiet: bool = False, stream: IO[str] | None = None) -> None:
        self.total, self.label = total, label
        self.enabled = not quiet and total > 0
        self.stream = stream
        self._bar: Any = None
        self._plain: PlainProgress | None = None

    def __enter__(self) -> Callable[[int], None]:
        if not self.enabled:
            return lambda n: None
        stream = self.stream or sys.stderr
        if not stream.isatty():
            plain = self._plain = PlainProgress(self.total, self.label, stream, _interval())
            return plain.advance
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        bar = self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(file=stream),
            transient=True,
        )
        bar.start()
        task = bar.add_task(self.label, total=self.total)

        def advance(n: int) -> None:
            bar.advance(task, n)
            done = bar.tasks[0].completed
            if done > (bar.tasks[0].total or 0):  # the total was an estimate
                bar.update(task, total=done)

        return advance

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
        if self._plain is not None:
            self._plain.close()
