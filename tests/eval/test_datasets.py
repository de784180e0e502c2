"""Loading the HippoRAG format: limits, id mapping and errors that name file, line and field."""

import json

import pytest

from graphmem.errors import ConfigError, InputError
from graphmem.eval.datasets import load_dataset, load_hipporag, resolve_dataset_dir
from graphmem.memory import SearchResult


def write_set(folder, corpus, questions):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    (folder / "questions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in questions))
    return folder


CORPUS = [{"id": f"p{i}", "title": f"T{i}", "text": f"passage number {i}"} for i in range(6)]
QUESTIONS = [
    {"id": "a", "question": "first?", "supporting_ids": ["p4", "p5"], "type": "2hop"},
    {"id": "b", "question": "second?", "supporting_ids": ["p0"], "type": "1hop"},
]


def test_loads_questions_and_one_document_per_passage(tmp_path):
    data = load_dataset(write_set(tmp_path / "tiny", CORPUS, QUESTIONS))
    assert data.name == "tiny"
    assert [q.id for q in data.questions] == ["a", "b"]
    assert data.questions[0].gold == {"p4", "p5"} and data.questions[0].category == "2hop"
    documents = data.documents()
    assert [d.name for d in documents] == [f"tiny#p{i}" for i in range(6)]
    assert documents[3].title == "T3" and documents[3].text == "passage number 3"


def test_passage_id_maps_source_names_back(tmp_path):
    data = load_dataset(write_set(tmp_path / "tiny", CORPUS, QUESTIONS))
    hit = SearchResult(uuid="u", rank=1, score=1.0, content="x", source="tiny#p3")
    assert data.passage_id(hit) == "p3"
    assert data.passage_id(hit.model_copy(update={"source": "other#p3"})) is None


def test_limit_and_corpus_limit_keep_gold_plus_first_others(tmp_path):
    data = load_hipporag(write_set(tmp_path / "tiny", CORPUS, QUESTIONS), limit=1, corpus_limit=2)
    assert [q.id for q in data.questions] == ["a"]
    # gold of question a (p4, p5) plus the first two others (p0, p1), in corpus order
    assert [p.id for p in data.passages] == ["p0", "p1", "p4", "p5"]
    assert data.describe()["corpus_passages"] == 6
    whole = load_hipporag(tmp_path / "tiny", limit=1)
    assert len(whole.passages) == 6  # --limit alone keeps the full corpus


@pytest.mark.parametrize(
    "bad, field, line",
    [
        ({"id": "c", "question": "?", "supporting_ids": ["p99"]}, "supporting_ids", 3),
        ({"id": "c", "question": "", "supporting_ids": ["p1"]}, "question", 3),
        ({"id": "a", "question": "?", "supporting_ids": ["p1"]}, "id", 3),
        ({"id": "c", "question": "?", "supporting_ids": "p1"}, "supporting_ids", 3),
    ],
)
def test_bad_question_names_file_line_and_field(tmp_path, bad, field, line):
    folder = write_set(tmp_path / "tiny", CORPUS, QUESTIONS + [bad])
    with pytest.raises(InputError) as info:
        load_dataset(folder)
    message = str(info.value)
    assert "questions.jsonl" in message and f":{line}" in message and field in message


def test_bad_corpus_line_is_named(tmp_path):
    folder = write_set(tmp_path / "tiny", CORPUS + [{"id": "p9", "title": "x"}], QUESTIONS)
    with pytest.raises(InputError) as info:
        load_dataset(folder)
    assert "corpus.jsonl" in str(info.value) and ":7" in str(info.value) and "text" in str(info.value)


def test_missing_dataset_says_what_was_expected(tmp_path):
    with pytest.raises(ConfigError) as info:
        resolve_dataset_dir("musique", data_dir=tmp_path)
    assert "corpus.jsonl" in str(info.value) and str(tmp_path) in str(info.value)
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "corpus.jsonl").write_text(json.dumps(CORPUS[0]) + "\n")
    with pytest.raises(InputError) as info:
        resolve_dataset_dir("half", data_dir=tmp_path)
    assert "missing questions.jsonl" in str(info.value)
