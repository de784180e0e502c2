"""Benchmark datasets: what to ingest, what to ask, and which passages answer it.

A :class:`Dataset` is anything with a ``name``, ``questions`` (each with the
set of gold ids that support its answer and an optional ``category``),
``documents()`` to ingest, and ``passage_id(result)`` mapping a retrieved
:class:`~graphmem.memory.SearchResult` back to the dataset's own id space.
The runner needs nothing else, so a dialogue set (LoCoMo: gold ids are turn
ids, categories are question types) plugs in by implementing the same four members.

Implemented here: the HippoRAG format used by ``../shared/data/{musique,
hotpotqa,2wikimultihopqa}`` -- a folder with ``corpus.jsonl`` (``id``,
``title``, ``text``) and ``questions.jsonl`` (``id``, ``question``,
``supporting_ids``, optional ``type``, ``answer``). Each corpus passage
becomes one :class:`Document` named ``"{dataset}#{passage id}"``; that name
becomes the source name of its episode, which is how results map back.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from graphmem.errors import ConfigError, InputError
from graphmem.ingest.readers import Document, jsonl_records

if TYPE_CHECKING:
    from graphmem.eval.locomo import LoCoMoDataset
    from graphmem.memory import SearchResult

CORPUS_FILE = "corpus.jsonl"
QUESTIONS_FILE = "questions.jsonl"
KNOWN_DATASETS = ("musique", "hotpotqa", "2wikimultihopqa")


@dataclass(frozen=True)
class Question:
    """One benchmark question; ``gold`` holds the ids (passages, turns) that support its answer."""

    id: str
    text: str
    gold: frozenset[str]
    category: str = ""
    answer: str = ""


@runtime_checkable
class Dataset(Protocol):
    """What :func:`graphmem.eval.evaluate` needs from a benchmark."""

    name: str
    questions: list[Question]

    def documents(self) -> list[Document]:
        """The corpus to ingest (every passage the questions are asked over)."""
        ...

    def passage_id(self, result: SearchResult) -> str | None:
        """The dataset id of a retrieved passage (compared with ``Question.gold``), or None."""
        ...

    def describe(self) -> dict:
        """JSON-able facts about the dataset for the report (path, sizes, limits)."""
        ...


@dataclass
class Passage:
    id: str
    title: str
    text: str


@dataclass
class HippoRAGDataset:
    """A HippoRAG-format folder: ``corpus.jsonl`` + ``questions.jsonl``."""

    name: str
    path: Path
    passages: list[Passage]
    questions: list[Question]
    total_passages: int = 0
    total_questions: int = 0
    limit: int | None = None
    corpus_limit: int | None = None
    _by_id: dict[str, Passage] = field(default_factory=dict, repr=False)

    def documents(self) -> list[Document]:
        return [
            Document(
                name=f"{self.name}#{p.id}",
                text=p.text,
                title=p.title,
                uri=f"{(self.path / CORPUS_FILE).as_uri()}#{p.id}",
                metadata={"id": p.id},
            )
            for p in self.passages
        ]

    def passage_id(self, result: SearchResult) -> str | None:
        prefix = f"{self.name}#"
        return result.source[len(prefix) :] if result.source.startswith(prefix) else None

    def describe(self) -> dict:
        return {
            "name": self.name,
            "format": "hipporag",
            "path": str(self.path),
            "passages": len(self.passages),
            "questions": len(self.questions),
            "corpus_passages": self.total_passages,
            "corpus_questions": self.total_questions,
            "limit": self.limit,
            "corpus_limit": self.corpus_limit,
        }


# -- locating ------------------------------------------------------------------
def data_dirs(data_dir: str | Path | None = None) -> list[Path]:
    """Where dataset names are looked up, in order: ``data_dir`` if given; else
    ``$GRAPHMEM_DATA_DIR``, then ``shared/data`` beside the working directory
    (``../shared/data``) or beside the checkout, or in any of their ancestors (a
    git worktree nested one level deeper still finds the project's data)."""
    if data_dir is not None:
        return [Path(data_dir)]
    found: list[Path] = []
    if os.environ.get("GRAPHMEM_DATA_DIR"):
        found.append(Path(os.environ["GRAPHMEM_DATA_DIR"]))
    for base in (Path.cwd().resolve(), Path(__file__).resolve().parents[2]):
        found += [ancestor / "shared" / "data" for ancestor in base.parents]
    unique: dict[Path, None] = {}
    for path in found:
        unique.setdefault(path, None)
    return list(unique)


def resolve_dataset_dir(name_or_path: str | Path, data_dir: str | Path | None = None) -> Path:
    """The folder of dataset ``name_or_path`` (a directory path, or a name under a data dir)."""
    text = str(name_or_path)
    direct = Path(text).expanduser()
    looks_like_path = os.sep in text or text.startswith(".") or direct.is_dir()
    candidates = [direct] if looks_like_path else [d / text for d in data_dirs(data_dir)]
    for folder in candidates:
        if folder.is_dir():
            missing = [f for f in (CORPUS_FILE, QUESTIONS_FILE) if not (folder / f).is_file()]
            if missing:
                raise InputError(
                    f"not a dataset folder: missing {' and '.join(missing)} "
                    f"(a HippoRAG-format dataset has {CORPUS_FILE} and {QUESTIONS_FILE})",
                    path=folder,
                )
            return folder.resolve()
    if looks_like_path:
        raise InputError(
            f"no such dataset directory (expected a folder with {CORPUS_FILE} and {QUESTIONS_FILE})", path=direct
        )
    searched = ", ".join(str(c) for c in candidates[:4]) + (", ..." if len(candidates) > 4 else "")
    raise ConfigError(
        f"dataset {text!r} not found; looked for a folder with {CORPUS_FILE} and {QUESTIONS_FILE} "
        f"in: {searched}. Give --data-dir (or GRAPHMEM_DATA_DIR), or a path to the folder "
        f"(known names: {', '.join(KNOWN_DATASETS)})"
    )


# -- loading -------------------------------------------------------------------
def _string(record: dict, key: str, path: Path, line: int, *, required: bool = True) -> str:
    value = record.get(key)
    if value is None and not required:
        return ""
    if isinstance(value, int) and not isinstance(value, bool) and key == "id":
        value = str(value)
    if not isinstance(value, str) or (required and not value.strip()):
        raise InputError("missing or not a non-empty string", path=path, line=line, field=key)
    return value


def read_corpus(path: Path) -> list[Passage]:
    """Passages of a HippoRAG ``corpus.jsonl``; duplicate ids and empty texts are errors."""
    passages: list[Passage] = []
    first_line: dict[str, int] = {}
    for number, record in jsonl_records(path):
        pid = _string(record, "id", path, number)
        if pid in first_line:
            raise InputError(
                f"duplicate id {pid!r} (first on line {first_line[pid]})", path=path, line=number, field="id"
            )
        first_line[pid] = number
        passages.append(
            Passage(pid, _string(record, "title", path, number, required=False), _string(record, "text", path, number))
        )
    if not passages:
        raise InputError("no passages (empty file)", path=path)
    return passages


def read_questions(path: Path, known_ids: set[str]) -> list[Question]:
    """Questions of a HippoRAG ``questions.jsonl``; every supporting id must be in the corpus."""
    questions: list[Question] = []
    first_line: dict[str, int] = {}
    for number, record in jsonl_records(path):
        qid = _string(record, "id", path, number)
        if qid in first_line:
            raise InputError(
                f"duplicate id {qid!r} (first on line {first_line[qid]})", path=path, line=number, field="id"
            )
        first_line[qid] = number
        gold = record.get("supporting_ids")
        if not isinstance(gold, list) or not gold or not all(isinstance(g, str) for g in gold):
            raise InputError("must be a non-empty list of passage ids", path=path, line=number, field="supporting_ids")
        unknown = [g for g in gold if g not in known_ids]
        if unknown:
            raise InputError(
                f"passage id(s) {', '.join(map(repr, unknown))} not in {CORPUS_FILE}",
                path=path,
                line=number,
                field="supporting_ids",
            )
        answer = record.get("answer")
        questions.append(
            Question(
                qid,
                _string(record, "question", path, number),
                frozenset(gold),
                category=str(record.get("type") or ""),
                answer=answer if isinstance(answer, str) else "",
            )
        )
    if not questions:
        raise InputError("no questions (empty file)", path=path)
    return questions


def load_hipporag(
    folder: str | Path, *, name: str | None = None, limit: int | None = None, corpus_limit: int | None = None
) -> HippoRAGDataset:
    """Load a HippoRAG-format folder.

    ``limit`` keeps the first N questions (file order). The corpus stays whole
    unless ``corpus_limit`` is given: then it keeps the gold passages of the
    kept questions plus the first ``corpus_limit`` other passages (file order),
    a small but still distractor-rich pool for quick runs.
    """
    folder = Path(folder)
    for value, flag in ((limit, "limit"), (corpus_limit, "corpus_limit")):
        if value is not None and value < 0:
            raise ConfigError(f"{flag} must be >= 0")
    passages = read_corpus(folder / CORPUS_FILE)
    questions = read_questions(folder / QUESTIONS_FILE, {p.id for p in passages})
    total_passages, total_questions = len(passages), len(questions)
    if limit is not None:
        questions = questions[:limit]
    if corpus_limit is not None:
        gold = set().union(*(q.gold for q in questions)) if questions else set()
        others = [p.id for p in passages if p.id not in gold][:corpus_limit]
        keep = gold | set(others)
        passages = [p for p in passages if p.id in keep]
    return HippoRAGDataset(
        name=name or folder.resolve().name,
        path=folder.resolve(),
        passages=passages,
        questions=questions,
        total_passages=total_passages,
        total_questions=total_questions,
        limit=limit,
        corpus_limit=corpus_limit,
    )


def load_dataset(
    name_or_path: str | Path,
    *,
    data_dir: str | Path | None = None,
    limit: int | None = None,
    corpus_limit: int | None = None,
) -> HippoRAGDataset | LoCoMoDataset:
    """A dataset by name (``musique``, ``hotpotqa``, ``2wikimultihopqa``, looked up in
    :func:`data_dirs`) or by folder path; see :func:`load_hipporag` for the limits.
    ``locomo`` or a LoCoMo-format file gives a :class:`~graphmem.eval.locomo.LoCoMoDataset`."""
    from graphmem.eval.locomo import find_locomo, load_locomo

    locomo = find_locomo(str(name_or_path), data_dir)  # 'locomo' or a LoCoMo-format .json file/folder
    if locomo is not None:
        if corpus_limit is not None:
            raise ConfigError(
                "corpus_limit does not apply to LoCoMo (use limit: conversations without "
                "asked questions are not ingested)"
            )
        return load_locomo(locomo, limit=limit)
    folder = resolve_dataset_dir(name_or_path, data_dir)
    return load_hipporag(folder, limit=limit, corpus_limit=corpus_limit)


def read_hipporag_documents(paths: Sequence[str | Path]) -> list[Document]:
    """Pipeline reader ``hipporag``: every passage of each folder (or ``corpus.jsonl``) in
    ``paths`` as one Document named ``"{folder name}#{passage id}"`` (what the eval harness ingests)."""
    documents: list[Document] = []
    for raw in paths:
        path = Path(raw)
        folder = path.parent if path.is_file() and path.name == CORPUS_FILE else path
        if not (folder / CORPUS_FILE).is_file():
            raise InputError(
                f"the hipporag reader takes a dataset folder holding {CORPUS_FILE} (or that file)", path=path
            )
        passages = read_corpus(folder / CORPUS_FILE)
        dataset = HippoRAGDataset(name=folder.resolve().name, path=folder.resolve(), passages=passages, questions=[])
        documents += dataset.documents()
    return documents
