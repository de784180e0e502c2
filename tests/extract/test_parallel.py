"""spaCy extraction in worker processes gives exactly what the in-process extractor gives."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from graphmem.extract.parallel import ParallelSpacyExtractor
from tests.extract.test_spacy_triples import TEXTS

pytestmark = pytest.mark.slow


def test_worker_processes_return_the_same_extractions_in_order(extractor):
    texts = TEXTS * 3  # more texts than one chunk, so results come back from several tasks
    refs = [datetime(2023, 5, 10, tzinfo=UTC)] * len(texts)
    speakers = ["Caroline"] * len(texts)
    with ParallelSpacyExtractor(processes=1, min_chunk=4) as parallel:
        assert parallel.concurrent
        got = parallel.extract(texts, reference_times=refs, speakers=speakers)
        assert parallel.extract([]) == []
        assert parallel.query_mentions("Did Petra Hallgrim visit Lisbon?") == ["Petra Hallgrim", "Lisbon"]
    assert got == extractor.extract(texts, reference_times=refs, speakers=speakers)
    assert [t.object for t in got[2].triples] == ["Lisbon", "Porto"]
