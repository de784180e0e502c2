"""Background ingestion jobs: one worker thread, jobs run in order, progress per document.

Jobs live in memory (a restarted server forgets them; ingestion itself is
resumable because re-ingesting an unchanged source is a no-op). Finished jobs
are kept for ``keep`` seconds so clients can read their report.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from graphmem.ingest.report import IngestReport

#: work(progress) -> its report; progress(n) adds n finished units
Work = Callable[[Callable[[int], None]], IngestReport]


@dataclass
class Job:
    id: str
    group: str
    total: int
    state: str = "queued"  # queued | running | succeeded | failed
    done: int = 0
    error: str | None = None
    report: IngestReport | None = None
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "group": self.group,
            "state": self.state,
            "done": self.done,
            "total": self.total,
            "error": self.error,
            "report": self.report,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
        }


class JobRunner:
    def __init__(self, keep_s: float = 3600.0) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[Job, Work] | None] = queue.Queue()
        self._keep_s = keep_s
        self._thread = threading.Thread(target=self._loop, name="graphmem-jobs", daemon=True)
        self._thread.start()

    def submit(self, group: str, total: int, work: Work) -> Job:
        job = Job(id="job_" + uuid.uuid4().hex[:16], group=group, total=total)
        with self._lock:
            self._prune()
            self._jobs[job.id] = job
        self._queue.put((job, work))
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def pending(self) -> int:
        with self._lock:
            return sum(j.state in {"queued", "running"} for j in self._jobs.values())

    def close(self, timeout: float = 5.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def _prune(self) -> None:
        cutoff = time.time() - self._keep_s
        for job_id in [j.id for j in self._jobs.values() if j.finished_at and j.finished_at < cutoff]:
            del self._jobs[job_id]

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            job, work = item
            job.state = "running"

            def progress(n: int, job: Job = job) -> None:
                job.done = min(job.total, job.done + n)

            try:
                job.report = work(progress)
                job.done = job.total
                job.state = "succeeded"
            except Exception as exc:  # reported through GET /v1/jobs/{id}, never lost
                job.error = f"{type(exc).__name__}: {exc}" if not hasattr(exc, "reason") else str(exc)
                job.state = "failed"
            finally:
                job.finished_at = time.time()
