"""A tiny HippoRAG-format dataset built from the sample corpus in examples/.

Each example document is one passage, its id the path relative to examples/
(a news record is ``docs/news.jsonl#ID``), exactly the ids examples/questions.jsonl
uses as ``supporting``; the dataset is written to a temporary folder so tests
never depend on ../shared/data.
"""

import json
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def build_examples_dataset(folder: Path) -> Path:
    from graphmem.ingest.readers import read_documents

    folder.mkdir(parents=True, exist_ok=True)
    corpus = []
    for document in read_documents([EXAMPLES / "docs"]):
        path, _, record = document.name.partition("#")
        pid = Path(path).resolve().relative_to(EXAMPLES.resolve()).as_posix() + (f"#{record}" if record else "")
        corpus.append({"id": pid, "title": document.title, "text": document.text})
    questions = []
    for line in (EXAMPLES / "questions.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            q = json.loads(line)
            questions.append(
                {
                    "id": q["id"],
                    "question": q["question"],
                    "answer": q["answer"],
                    "answer_aliases": [],
                    "supporting_ids": q["supporting"],
                    "type": f"{q['hops']}hop",
                    "origin": "examples",
                }
            )
    (folder / "corpus.jsonl").write_text("".join(json.dumps(p) + "\n" for p in corpus), encoding="utf-8")
    (folder / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def examples_dataset(tmp_path_factory) -> Path:
    return build_examples_dataset(tmp_path_factory.mktemp("data") / "examples_set")
