"""Readers and chunking: supported formats, and bad input named precisely."""

from __future__ import annotations

import json
import os

import pytest

from graphmem.errors import InputError
from graphmem.ingest.chunking import chunk_text
from graphmem.ingest.readers import expand_paths, read_documents


def test_reads_txt_md_jsonl_from_a_directory_recursively(tmp_path):
    (tmp_path / "a.txt").write_text("Alpha text.")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.md").write_text("# Beta Title\n\nBeta body.")
    (tmp_path / "sub" / "c.jsonl").write_text(
        json.dumps({"id": "r1", "title": "Gamma", "text": "Gamma body.", "date": "2021-03-04"})
        + "\n"
        + json.dumps({"text": "No id here."})
        + "\n"
    )
    (tmp_path / "ignored.bin").write_bytes(b"\x00\x01")
    docs = read_documents([tmp_path])
    by_title = {d.title: d for d in docs}
    assert set(by_title) == {"a", "Beta Title", "Gamma", ""}
    assert by_title["Gamma"].name.endswith("c.jsonl#r1")
    assert by_title["Gamma"].date.isoformat() == "2021-03-04T00:00:00+00:00"
    assert by_title[""].name.endswith("c.jsonl#L2")


def test_globs_expand(tmp_path):
    for name in ("x1.md", "x2.md", "y.txt"):
        (tmp_path / name).write_text(f"{name} content")
    assert [p.name for p in expand_paths([str(tmp_path / "x*.md")])] == ["x1.md", "x2.md"]


def test_missing_path(tmp_path):
    with pytest.raises(InputError, match="no such file or directory") as info:
        read_documents([tmp_path / "nope.txt"])
    assert "nope.txt" in str(info.value)


def test_glob_without_matches(tmp_path):
    with pytest.raises(InputError, match="no file matches"):
        read_documents([str(tmp_path / "*.md")])


def test_binary_file(tmp_path):
    path = tmp_path / "blob.txt"
    path.write_bytes(b"abc\x00\x00def")
    with pytest.raises(InputError, match="binary") as info:
        read_documents([path])
    assert str(path) in str(info.value)


def test_non_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("line one\nline two\ncaf\xe9 on three\n".encode("latin-1"))
    with pytest.raises(InputError, match="not valid UTF-8") as info:
        read_documents([path])
    assert info.value.line == 3 and f"{path}:3" in str(info.value)


def test_invalid_jsonl_line_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine"}\n{"text": broken}\n')
    with pytest.raises(InputError, match="invalid JSON") as info:
        read_documents([path])
    assert info.value.line == 2


def test_jsonl_record_without_text_names_the_field(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"title": "no text"}\n')
    with pytest.raises(InputError, match="field 'text'") as info:
        read_documents([path])
    assert info.value.line == 1 and info.value.field == "text"


def test_jsonl_bad_date_and_duplicate_id(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "a", "date": "yesterday-ish"}\n')
    with pytest.raises(InputError, match="field 'date'"):
        read_documents([path])
    path.write_text('{"id": 1, "text": "a"}\n{"id": 1, "text": "b"}\n')
    with pytest.raises(InputError, match="duplicate id") as info:
        read_documents([path])
    assert info.value.line == 2


@pytest.mark.parametrize("content", ["", "   \n\n"])
def test_empty_files(tmp_path, content):
    path = tmp_path / "empty.md"
    path.write_text(content)
    with pytest.raises(InputError, match="empty"):
        read_documents([path])
    (tmp_path / "empty.md").unlink()
    (tmp_path / "empty.jsonl").write_text(content)
    with pytest.raises(InputError, match="empty JSONL"):
        read_documents([tmp_path / "empty.jsonl"])


def test_unsupported_suffix_named_explicitly(tmp_path):
    path = tmp_path / "paper.pdf"
    path.write_text("not really a pdf")
    with pytest.raises(InputError, match="unsupported file type '.pdf'"):
        read_documents([path])


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read files whatever their mode")
def test_unreadable_file(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_text("x")
    path.chmod(0)
    with pytest.raises(InputError, match="permission denied"):
        read_documents([path])


def test_size_limit(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("word " * 100)
    with pytest.raises(InputError, match="over the 100-byte limit"):
        read_documents([path], max_file_bytes=100)


def test_chunks_are_exact_slices_with_overlap():
    text = " ".join(f"Sentence {i} is here." for i in range(60))
    passages = chunk_text(text, size=40, overlap=8)
    assert len(passages) > 1
    assert all(p in text for p in passages)
    assert all(len(p.split()) <= 40 for p in passages)
    # consecutive passages share their boundary sentences
    assert passages[0].split(".")[-2] in passages[1]
    assert passages[-1].endswith("Sentence 59 is here.")


def test_a_sentence_longer_than_a_passage_is_split():
    text = "word " * 95
    passages = chunk_text(text.strip(), size=40, overlap=0)
    assert [len(p.split()) for p in passages] == [40, 40, 15]
    assert chunk_text("", 40, 0) == []
