"""A long single-line document (no sentence end) is ingested as a stream: several
passages, written batch by batch, resumable after an interruption, with progress
in passages, and without the junk a run-on parse would make."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from graphmem.extract.guard import MAX_CHUNK_WORDS, RUN_ON_MENTIONS, RUN_ON_TRIPLES, bound, degenerate
from graphmem.ingest.chunking import chunk_text, iter_spans
from graphmem.ingest.pipeline import Ingestor
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from huge_file import generate  # noqa: E402

#: small passages and batches (parsed in this process), so a 12 KB text is some 50 passages in 9 batches
SETTINGS = {"chunk_words": 40, "chunk_overlap": 5, "batch_size": 6, "extract_processes": 1}


@pytest.fixture(scope="module")
def text() -> str:
    return generate(12_000)


def _memory(home: Path):
    from graphmem import Memory

    return Memory(home=home, **SETTINGS)


def _positions(memory) -> list[int]:
    _, rows = memory.cypher("MATCH (e:Episode) RETURN e.position ORDER BY e.position")
    return [row[0] for row in rows]


def _chain(memory) -> list[tuple[int, int]]:
    _, rows = memory.cypher("MATCH (a:Episode)-[:NEXT]->(b:Episode) RETURN a.position, b.position ORDER BY a.position")
    return [(a, b) for a, b in rows]


def test_a_line_with_no_sentence_end_is_cut_at_the_chunk_size(text: str) -> None:
    assert "\n" not in text.strip() and not re.search(r"[.!?]", text)
    passages = chunk_text(text, 40, 5)
    assert len(passages) > 30
    assert all(len(p.split()) <= 40 for p in passages)
    # the stream restarts at any passage's start with the same passages from there
    spans = list(iter_spans(text, 40, 5))
    assert list(iter_spans(text, 40, 5, start=spans[17][0])) == spans[17:]


@pytest.fixture(scope="module")
def clean(tmp_path_factory, text, embedder, extractor) -> dict[str, int]:
    """The graph an uninterrupted run makes (counts), and its batches."""
    home = tmp_path_factory.mktemp("huge-clean") / "home"
    with _memory(home) as memory:
        memory.ingest_text(text, name="huge.txt")
        stats = memory._graph.stats()
        assert _positions(memory) == list(range(stats["episodes"]))
        assert _chain(memory) == [(k, k + 1) for k in range(stats["episodes"] - 1)]
    return stats


def test_an_interrupted_long_document_keeps_its_written_batches_and_resumes(
    tmp_path, text, clean, monkeypatch, embedder, extractor
) -> None:
    written: list[int] = []
    original = Ingestor._write_batch

    def write_then_stop(self, plan, report, progress, owner):
        if written:  # the second batch: the process is "interrupted" before writing it
            raise KeyboardInterrupt
        original(self, plan, report, progress, owner)
        written.append(len(plan.units))

    monkeypatch.setattr(Ingestor, "_write_batch", write_then_stop)
    with _memory(tmp_path / "home") as memory:
        with pytest.raises(KeyboardInterrupt):
            memory.ingest_text(text, name="huge.txt")
        # the first batch is stored, the source is not complete
        assert written == [SETTINGS["batch_size"]]
        assert _positions(memory) == list(range(SETTINGS["batch_size"]))
        state = memory._graph.source("huge.txt")
        assert state is not None and (state.state, state.written) == ("writing", SETTINGS["batch_size"])

        # the re-run writes only the batches after the first, and ends with the clean run's graph
        monkeypatch.setattr(Ingestor, "_write_batch", original)
        batches: list[int] = []

        def count(self, plan, report, progress, owner):
            batches.append(plan.units[0].position)
            original(self, plan, report, progress, owner)

        monkeypatch.setattr(Ingestor, "_write_batch", count)
        report = memory.ingest_text(text, name="huge.txt")
        assert batches and batches[0] == SETTINGS["batch_size"] and len(batches) >= 3
        assert report.passages == clean["episodes"] - SETTINGS["batch_size"]
        assert memory._graph.stats() == clean
        assert _positions(memory) == list(range(clean["episodes"]))  # no passage twice
        assert _chain(memory) == [(k, k + 1) for k in range(clean["episodes"] - 1)]
        state = memory._graph.source("huge.txt")
        assert state is not None and (state.state, state.written) == ("complete", 0)
        # and a third run skips it
        assert memory.ingest_text(text, name="huge.txt").skipped == 1


def test_a_run_on_passage_keeps_few_mentions_and_facts(text: str, extractor) -> None:
    passage = chunk_text(text, 200, 30)[3]
    assert degenerate(passage)
    (extraction,) = extractor.extract([passage])
    assert len(extraction.mentions) <= RUN_ON_MENTIONS
    assert 0 < len(extraction.triples) <= RUN_ON_TRIPLES
    assert all(len(m.name.split()) <= MAX_CHUNK_WORDS for m in extraction.mentions)
    # the same words with sentence ends are ordinary text: the cap does not apply
    sentences = re.sub(r" (and then|then|while|and),? ", ". ", passage)
    assert not degenerate(sentences)
    (ordinary,) = extractor.extract([sentences])
    assert len(ordinary.triples) > RUN_ON_TRIPLES
    assert bound(ordinary, sentences) is ordinary


def test_the_sample_corpus_makes_the_same_graph_as_before(sample_home: Path, embedder, extractor) -> None:
    """examples/docs: the counts recorded before long documents were streamed and the guard
    added (no sample passage is run-on, none of its noun chunks is over the cap)."""
    from graphmem import Memory

    with Memory(home=sample_home) as memory:
        stats = memory._graph.stats()
    assert {k: stats[k] for k in ("sources", "episodes", "entities", "facts", "mentions", "synonyms")} == {
        "sources": 45,
        "episodes": 45,
        "entities": 549,
        "facts": 392,
        "mentions": 721,
        "synonyms": 14,
    }


def test_piped_ingestion_prints_progress_lines_in_passages(tmp_path: Path, text: str) -> None:
    path = tmp_path / "huge.txt"
    path.write_text(text[:6000], encoding="utf-8")
    env = {
        **os.environ,
        "GRAPHMEM_HOME": str(tmp_path / "home"),
        "GRAPHMEM_PROGRESS_SECONDS": "0",
        **{f"GRAPHMEM_{k.upper()}": str(v) for k, v in SETTINGS.items()},
    }
    done = subprocess.run(
        [sys.executable, "-m", "graphmem.cli", "ingest", str(path)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("ingesting passages:")]
    assert not [line for line in done.stderr.splitlines() if not line.strip()], "blank lines on stderr"
    during = [line for line in lines if "ETA" in line]
    assert len(during) >= 3, done.stderr
    assert all(re.fullmatch(r"ingesting passages: \d+/\d+, [\d.]+/s, ETA \w+", line) for line in during)
    counts = [int(re.search(r": (\d+)/", line).group(1)) for line in during]
    assert counts == sorted(counts) and counts[0] < counts[-1]
    assert re.fullmatch(r"ingesting passages: \d+ in \w+, [\d.]+/s", lines[-1]), lines[-1]
    assert "ingested" in done.stdout
