"""Ingestion end to end on the real embedded store: counts, idempotence,
replacement of changed files, and bad input that leaves the store untouched."""

from __future__ import annotations

import pytest

from graphmem.errors import InputError

from ..conftest import EXAMPLES


def test_sample_corpus_builds_a_graph(sample_memory):
    stats = sample_memory.stats()
    assert stats["sources"] == 45 and stats["episodes"] == 45
    assert stats["entities"] > 100 and stats["facts"] > 100 and stats["mentions"] >= stats["episodes"]
    _, rows = sample_memory.cypher(
        "MATCH (a:Entity {name: 'Halvane Steelworks'})-[f:FACT]->(b:Entity {name: 'Kessary Bridge'}) RETURN f.text"
    )
    assert rows, "the bridge-builder fact should connect the two named entities"
    # every passage is stored exactly as received and linked to its source
    _, rows = sample_memory.cypher(
        "MATCH (s:Source)-[:HAS_EPISODE]->(e:Episode) WHERE s.name ENDS WITH 'kessary_bridge.md' RETURN e.content"
    )
    assert rows[0][0] == (EXAMPLES / "docs" / "kessary_bridge.md").read_text().strip()  # one passage: the whole text


def test_reingesting_the_same_content_adds_nothing(sample_memory):
    before = sample_memory.stats()
    report = sample_memory.ingest([EXAMPLES / "docs"])
    assert report.skipped == 45 and report.passages == 0
    assert sample_memory.stats() == before


def test_a_changed_file_replaces_only_its_own_episodes(sample_memory, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    a, b = docs / "a.md", docs / "b.md"
    a.write_text("# Quorra Vell\n\nQuorra Vell founded the Tessaly Observatory in 1931.")
    b.write_text("# Tessaly Observatory\n\nThe Tessaly Observatory stands on Mount Brann.")
    sample_memory.ingest([docs])
    before = sample_memory.stats()
    _, old_b = sample_memory.cypher("MATCH (s:Source)-[:HAS_EPISODE]->(e) WHERE s.name ENDS WITH 'b.md' RETURN e.uuid")

    a.write_text("# Quorra Vell\n\nQuorra Vell sold the Tessaly Observatory to Harl Denn in 1950.")
    report = sample_memory.ingest([docs])
    assert report.replaced == 1 and report.skipped == 1
    _, rows = sample_memory.cypher(
        "MATCH (s:Source)-[:HAS_EPISODE]->(e) WHERE s.name ENDS WITH 'a.md' RETURN e.content"
    )
    assert [r[0] for r in rows] == [a.read_text()]
    _, new_b = sample_memory.cypher("MATCH (s:Source)-[:HAS_EPISODE]->(e) WHERE s.name ENDS WITH 'b.md' RETURN e.uuid")
    assert new_b == old_b  # untouched
    after = sample_memory.stats()
    assert after["episodes"] == before["episodes"] and after["sources"] == before["sources"]
    # the fact only the old text supported is gone; a new one is there
    _, founded = sample_memory.cypher("MATCH (:Entity {name: 'Quorra Vell'})-[f:FACT]->() RETURN f.predicate")
    predicates = {r[0] for r in founded}
    assert "found" not in predicates and "sell" in predicates


def test_bad_file_in_a_batch_writes_nothing(sample_memory, tmp_path):
    before = sample_memory.stats()
    (tmp_path / "good.md").write_text("# Good\n\nA perfectly fine document about Varo Lund.")
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{not json}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:2"):
        sample_memory.ingest([tmp_path])
    assert sample_memory.stats() == before


def test_a_source_left_half_written_is_rewritten(sample_memory, tmp_path):
    """A crash between 'writing' and 'complete' is repaired by the next run."""
    path = tmp_path / "crash.md"
    path.write_text("# Pell Orrin\n\nPell Orrin captained the ship Gray Finch.")
    sample_memory.ingest([path])
    sample_memory.cypher("MATCH (s:Source) WHERE s.name ENDS WITH 'crash.md' SET s.state = 'writing'", write=True)
    report = sample_memory.ingest([path])
    assert report.skipped == 0 and report.passages == 1
    _, rows = sample_memory.cypher(
        "MATCH (s:Source)-[:HAS_EPISODE]->(e) WHERE s.name ENDS WITH 'crash.md' RETURN s.state, count(e)"
    )
    assert rows == [["complete", 1]]


def test_text_with_quotes_and_cypher_round_trips(memory):
    text = (
        "O'Brien said \"MATCH (n) DETACH DELETE n\" \\ backslash; '); DROP GRAPH x; // "
        "and {curly: $param} with unicode: café ✓"
    )
    memory.ingest_text(text, name="tricky")
    _, rows = memory.cypher("MATCH (e:Episode) RETURN e.content")
    assert rows == [[text]]
