"""Command-line behaviours a new user meets early: relative source names, dates in tables,
undated documents under --as-of, files a folder holds that are not read, GraphML import,
and a Cypher timeout on a query the store cannot stop by itself.

One small corpus is ingested once (from its parent folder, with a relative path, as a
user types it) and shared by the tests of this module."""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from graphmem.cli import main

#: the date of the one dated record, and its epoch milliseconds
DATED, DATED_MS = "2020-03-01", 1_583_020_800_000


@dataclass
class Corpus:
    root: Path  # the folder ingest ran in
    home: Path
    ingested: Result

    def run(self, *args: str, cwd: Path | None = None) -> Result:
        with contextlib.chdir(cwd or self.root):
            return CliRunner().invoke(main, ["--home", str(self.home), *args])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, embedder, extractor) -> Corpus:
    root = tmp_path_factory.mktemp("small")
    notes = root / "notes"
    notes.mkdir()
    (notes / "standup.txt").write_text(
        "Mirela Voss leads the Harbour Project. The Harbour Project is based in Calder Bay.\n"
    )
    (notes / "old.txt").write_text("Orrin Hale repairs clocks in Veldt.\n")
    record = {
        "id": "a",
        "title": "Old news",
        "date": DATED,
        "text": "The Quill Foundation opened a library in Tessaly.",
    }
    (notes / "dated.jsonl").write_text(json.dumps(record) + "\n")
    (notes / "blob.bin").write_bytes(b"\x00\x01\x02")
    (notes / "pic.png").write_bytes(b"\x89PNG\r\n")
    home = root / "home"
    with contextlib.chdir(root):
        result = CliRunner().invoke(main, ["--home", str(home), "ingest", "notes", "--quiet"])
    assert result.exit_code == 0, result.output
    return Corpus(root, home, result)


def test_directory_ingestion_names_the_files_it_leaves_out(corpus):
    out = corpus.ingested.output
    assert "3 documents" in out and "2 file(s) of other types left out" in out
    assert "left out 2 file(s) of a type graphmem does not read" in out
    assert str(corpus.root / "notes" / "blob.bin") in out and str(corpus.root / "notes" / "pic.png") in out
    from graphmem import Memory

    with Memory(home=corpus.home) as memory:  # the report object of the Python API says the same
        report = memory.ingest([corpus.root / "notes"])
    assert report.documents == 3 and report.skipped == 3
    assert [Path(p).name for p in report.unsupported] == ["blob.bin", "pic.png"]


def test_forget_takes_a_source_path_relative_to_where_it_runs(corpus):
    result = corpus.run("forget", "--source", "old.txt", cwd=corpus.root / "notes")
    assert result.exit_code == 0, result.output
    assert "forgot 1 episode(s)" in result.output
    again = corpus.run("forget", "--source", "notes/old.txt")
    assert again.exit_code == 1
    assert f"no source named 'notes/old.txt' or '{corpus.root / 'notes' / 'old.txt'}'" in again.output


def test_cypher_table_shows_iso_dates_and_json_keeps_milliseconds(corpus):
    query = "MATCH (e:Episode) WHERE e.occurred_at IS NOT NULL RETURN e.occurred_at AS occurred_at, e.title AS title"
    table = corpus.run("cypher", query)
    assert table.exit_code == 0, table.output
    assert DATED in table.output and str(DATED_MS) not in table.output
    as_json = corpus.run("cypher", query, "--json")
    assert json.loads(as_json.output) == [{"occurred_at": DATED_MS, "title": "Old news"}]


def test_undated_documents_hold_at_any_date(corpus):
    def hits(query: str, *more: str) -> list[str]:
        result = corpus.run("search", query, "--mode", "bm25", "-k", "5", "--json", *more)
        assert result.exit_code == 0, result.output
        return [r["content"] for r in json.loads(result.output)["results"]]

    # undated: its start is unknown, so it counts in 1950 as it does today
    assert any("Harbour Project" in text for text in hits("Harbour Project Calder Bay", "--as-of", "1950-01-01"))
    # dated 2020: it had not happened in 1950, and it had by 2021
    assert not any("Quill" in text for text in hits("Quill Foundation library", "--as-of", "1950-01-01"))
    assert any("Quill" in text for text in hits("Quill Foundation library", "--as-of", "2021-01-01"))
    facts = corpus.run("facts", "Mirela Voss", "--as-of", "1950-01-01", "--json")
    assert facts.exit_code == 0, facts.output
    records = json.loads(facts.output)
    assert records and all(r["valid_at"] is None for r in records)


def test_graphml_import_says_it_is_not_supported(corpus):
    graphml = corpus.root / "graph.graphml"
    exported = corpus.run("export", str(graphml), "--quiet")
    assert exported.exit_code == 0, exported.output
    result = corpus.run("import", str(graphml), "--quiet")
    assert result.exit_code == 1
    assert "GraphML (XML) import is not supported" in result.output and "JSONL" in result.output
    assert "invalid JSON" not in result.output
    renamed = corpus.root / "graph.jsonl"  # an XML file under a JSONL name is recognised too
    renamed.write_bytes(graphml.read_bytes())
    assert "GraphML (XML) import is not supported" in corpus.run("import", str(renamed)).output


def test_cypher_timeout_stops_a_query_busy_inside_one_expression(corpus):
    # the store checks its timeout between rows: this query, one row computed by one
    # comprehension, ran for about 17 s under --timeout 1 before the command gave up waiting
    started = time.monotonic()
    result = corpus.run("cypher", "--timeout", "1", "WITH range(1, 20000) AS l RETURN size([x IN l | l])")
    elapsed = time.monotonic() - started
    assert result.exit_code == 1 and "ran past its timeout of 1 s" in result.output
    assert elapsed < 10, f"took {elapsed:.1f} s"
    assert corpus.run("cypher", "RETURN 1 AS one", "--json").output.strip().startswith("[")
