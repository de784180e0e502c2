"""An ingestion that fails at a batch boundary, then runs again, ends with exactly the graph
of one uninterrupted run: entities, facts, mentions, synonyms, every property but write
times (tests/reliability/helpers.py).

The failure is injected in this process at a real boundary: the write of the third batch
raises before it stores anything, after two batches were stored and marked complete (the
sources of the rest stay claimed, as a killed run leaves them). The resumed run loads its
entity index from the store, where the failed run had it in memory; resolution must not
tell the two apart (see graphmem.resolve.entities and Ingestor._referenced_only)."""

from __future__ import annotations

import pytest

from graphmem import Memory
from graphmem.ingest.pipeline import Ingestor
from tests.reliability.helpers import DOCS, assert_same_graph, fingerprint, invariants

CORPUS = [p for p in DOCS if p.is_file()][:10]
SETTINGS = {"batch_size": 2, "extract_processes": 1}  # several batches from a small corpus


class Injected(RuntimeError):
    pass


def test_a_run_failing_between_batches_then_resumed_equals_a_clean_run(tmp_path, embedder, extractor, monkeypatch):
    with Memory(home=tmp_path / "clean", **SETTINGS) as memory:
        memory.ingest(CORPUS)
    expected = fingerprint(tmp_path / "clean")

    write = Ingestor._write_batch
    calls: list[int] = []

    def failing(self, *args, **kwargs):
        calls.append(1)
        if len(calls) > 2:
            raise Injected("injected failure before the third batch's write")
        return write(self, *args, **kwargs)

    home = tmp_path / "resumed"
    monkeypatch.setattr(Ingestor, "_write_batch", failing)
    with pytest.raises(Injected), Memory(home=home, **SETTINGS) as memory:
        memory.ingest(CORPUS)
    monkeypatch.setattr(Ingestor, "_write_batch", write)
    with Memory(home=home, **SETTINGS) as memory:
        report = memory.ingest(CORPUS)
    assert 0 < report.skipped < len(CORPUS)  # the two stored batches' sources, left as they were
    assert not invariants(home)
    assert_same_graph(fingerprint(home), expected)
