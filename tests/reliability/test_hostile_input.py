"""Hostile and bad input: property-based tests over the readers and the CLI
(random bytes, huge lines, deep JSON, invalid UTF-8, control characters, empty
fields, very long names, Cypher-looking text). Each must end in a clear error
or a correct ingest: never a traceback, a hang or a damaged store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphmem.cli import main
from graphmem.errors import InputError
from graphmem.ingest.chunking import chunk_text
from graphmem.ingest.readers import read_documents

FAST = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
SLOW = settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))

CYPHER = [
    "'",
    '"',
    "\\",
    "`",
    "\\'",
    "$group_id",
    "}) DETACH DELETE n //",
    "MATCH (n) DETACH DELETE n",
    "' OR 1=1 --",
    "\\u0027",
    "CALL db.labels()",
    "{rows}",
    "\n",
    "\t",
    "\r\n",
    "\u2028",
    "é",
    "😀",
]

nasty_text = st.lists(
    st.one_of(
        st.sampled_from(CYPHER),
        st.text(min_size=1, max_size=30),
        st.characters(min_codepoint=1, max_codepoint=31).map(str),
    ),
    min_size=1,
    max_size=40,
).map("".join)


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


json_lines = st.one_of(
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.integers(1, 100_000).map(_deep),
    st.builds(lambda t: json.dumps({"text": t}), nasty_text),
    st.builds(lambda t, ti: json.dumps({"text": t, "title": ti, "id": 1}), st.text(max_size=50), st.text(max_size=50)),
    st.just('{"text": ""}'),
    st.just('{"text": null}'),
    st.just('{"text": "x", "date": "yesterday"}'),
    st.just('{"text": "x", "id": [1]}'),
    st.just('{"text": "a\\u0000b"}'),
    st.just("[]"),
)


@FAST
@given(data=st.binary(max_size=3000), suffix=st.sampled_from([".txt", ".md", ".jsonl"]))
def test_random_bytes_read_or_clear_error(tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp("bytes") / f"f{suffix}"
    path.write_bytes(data)
    try:
        documents = read_documents([path])
    except InputError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        return
    for document in documents:
        assert document.text.strip() and "\x00" not in document.text


@FAST
@given(lines=st.lists(json_lines, min_size=1, max_size=6))
def test_jsonl_lines_read_or_clear_error_naming_the_line(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("jsonl") / "f.jsonl"
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass"))
    try:
        documents = read_documents([path])
    except InputError as exc:
        assert str(path) in str(exc)
        return
    assert all(d.text.strip() for d in documents)
    # lenient reading skips the bad lines and keeps the good ones, with the same result here
    errors: list = []
    assert [d.name for d in read_documents([path], errors=errors, max_errors=100)] == [d.name for d in documents]
    assert not errors


@FAST
@given(text=st.text(min_size=1, max_size=4000), size=st.integers(16, 80), max_chars=st.integers(100, 600))
def test_passages_are_bounded_slices(text, size, max_chars):
    passages = chunk_text(text, size, size // 4, max_chars)
    for passage in passages:
        assert len(passage) <= max_chars and len(passage.split()) <= size and passage in text
    assert bool(passages) == bool(text.split())


def test_a_huge_word_is_cut_into_bounded_passages():
    text = "x" * 25_000 + " tail."
    passages = chunk_text(text)
    assert [len(p) for p in passages] == [10_000, 10_000, 5_006]  # "xxx…x tail."
    assert "".join(passages) == text.replace(" ", "", 0)


@pytest.fixture
def home(tmp_path, embedder, extractor):
    return tmp_path / "home"


def _ingest(home: Path, *args: str):
    return CliRunner().invoke(main, ["--home", str(home), "ingest", "-q", *args], catch_exceptions=False)


def _one_line_error(result) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.output.startswith("error: "), result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


@SLOW
@given(lines=st.lists(json_lines, min_size=1, max_size=5), long_name=st.integers(0, 3))
def test_cli_ingest_of_hostile_jsonl_is_a_clean_ingest_or_a_one_line_error(home, tmp_path_factory, lines, long_name):
    path = tmp_path_factory.mktemp("cli") / "docs.jsonl"
    if long_name:  # an extremely long entity name
        lines = lines + [json.dumps({"text": ("Zarkovian " * 2000 * long_name) + "Company built the bridge."})]
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass"))
    result = _ingest(home, str(path))
    if result.exit_code != 0:
        _one_line_error(result)
    else:
        assert result.output.startswith("ingested "), result.output
    # the store is whole: readable, every source complete, each episode's text a slice of its record
    from graphmem import Memory

    with Memory(home=home) as memory:
        stats = memory.stats()
        sources = memory.sources()
    assert all(s["state"] == "complete" for s in sources)
    assert stats.get("episodes", 0) >= len(sources)


def test_cypher_looking_text_is_stored_byte_for_byte(home, tmp_path):
    from graphmem import Memory

    text = (
        "O'Brien said \"MATCH (n) DETACH DELETE n\" and then \\'}) RETURN 1 // to `Bob`; "
        "$group_id {rows} \\\\ ' OR '1'='1 CREATE (:Evil) MERGE SET n.x = 'y' UNWIND [1] AS r \u2028 😀 é\t end."
    )
    doc = tmp_path / "evil.txt"
    doc.write_text(text, encoding="utf-8")
    jsonl = tmp_path / "evil.jsonl"
    jsonl.write_text(json.dumps({"id": "x'}) DETACH DELETE n //", "title": "`T` 'q'", "text": text}) + "\n")
    result = _ingest(home, str(doc), str(jsonl))
    assert result.exit_code == 0, result.output
    with Memory(home=home) as memory:
        stats = memory.stats()
        uuids = [row["uuid"] for row in memory._graph.pages("projection_episodes")]
        rows = sorted(memory.episodes(uuids).values(), key=lambda r: r["title"])
        names = sorted(s["name"] for s in memory.sources())
    assert [r["content"] for r in rows] == [text.strip(), text.strip()]
    assert [r["title"] for r in rows] == ["`T` 'q'", "evil"]
    assert names == sorted([str(doc.resolve()), f"{jsonl.resolve()}#x'}}) DETACH DELETE n //"])
    assert stats["episodes"] == 2 and stats["entities"] > 0


def test_max_errors_skips_and_reports_bad_records(home, tmp_path):
    path = tmp_path / "dirty.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps({"text": "Ada Lovelace wrote the first program."}),
                "{not json",
                json.dumps({"text": ""}),
                json.dumps({"text": "Mira Osk founded the Tallow Press."}),
            ]
        )
    )
    strict = _ingest(home, str(path))
    _one_line_error(strict)
    assert ":2:" in strict.output
    result = CliRunner().invoke(main, ["--home", str(home), "ingest", "-q", "--max-errors", "2", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.count("skipped: ") == 2 and "2 bad records skipped" in result.output
    assert ":2: invalid JSON" in result.output and ":3: field 'text'" in result.output
    too_many = CliRunner().invoke(main, ["--home", str(home), "ingest", "-q", "--max-errors", "1", str(path)])
    _one_line_error(too_many)
    assert "more than 1 bad" in too_many.output


def test_file_over_the_size_limit_is_refused(home, tmp_path, monkeypatch):
    path = tmp_path / "big.txt"
    path.write_text("word " * 1000)
    monkeypatch.setenv("GRAPHMEM_MAX_FILE_BYTES", "1000")
    result = _ingest(home, str(path))
    _one_line_error(result)
    assert "over the 1000-byte limit" in result.output
