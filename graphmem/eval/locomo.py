"""LoCoMo as an evaluation set: long two-person conversations, questions whose
gold ids are the turns (``dia_id``) that hold the evidence.

Each conversation is its own memory: it is ingested into its own group
(``<group>-<sample_id>``) and its questions are asked there only, the way a
per-user memory is queried. Gold ids are ``"<sample_id>/<dia_id>"`` (a
``dia_id`` like ``D3:5`` repeats across conversations); a retrieved turn maps
back through the episode's ``turn_id`` and its conversation's source name.

Categories (as commonly used): 1 multi-hop, 2 temporal, 3 open-domain,
4 single-hop, 5 adversarial (no answer in the conversation; their evidence
turns are still scored). Evidence lists in the file are sometimes malformed
("D8:6; D9:17", "D:11:26"): they are split and repaired where unambiguous,
and ids naming no turn are dropped (counted in ``describe()``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from graphmem.errors import ConfigError, InputError
from graphmem.eval.datasets import Question, data_dirs
from graphmem.ingest.dialogue import Conversation, read_locomo
from graphmem.ingest.readers import Document

if TYPE_CHECKING:
    from graphmem.memory import SearchResult

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
LOCOMO_FILE = "locomo.json"
_ID = re.compile(r"^D:?(\d+):(\d+)$")


@dataclass
class Partition:
    """One conversation's memory: its group suffix, what to ingest, and its questions (indices)."""

    key: str
    conversations: list[Conversation]
    questions: list[int]


@dataclass
class LoCoMoDataset:
    name: str
    path: Path
    conversations_: list[Conversation]
    questions: list[Question]
    total_questions: int = 0
    dropped_evidence: int = 0
    limit: int | None = None
    _sample_of: dict[str, str] = field(default_factory=dict, repr=False)

    def documents(self) -> list[Document]:
        return []  # a dialogue set: see conversations() / partitions()

    def conversations(self) -> list[Conversation]:
        return self.conversations_

    def partitions(self) -> list[Partition]:
        """One per conversation that has questions asked (in file order)."""
        parts: list[Partition] = []
        for conversation in self.conversations_:
            sample = conversation.metadata["id"]
            asked = [i for i, q in enumerate(self.questions) if q.id.split("/", 1)[0] == sample]
            if asked:
                parts.append(Partition(key=sample, conversations=[conversation], questions=asked))
        return parts

    def passage_id(self, result: SearchResult) -> str | None:
        sample = self._sample_of.get(result.source)
        turn = getattr(result, "turn_id", "")
        return f"{sample}/{turn}" if sample and turn else None

    @property
    def passages(self) -> list:
        """Every turn (what is searched), for callers that count a dataset's passages."""
        return [t for c in self.conversations_ for t in c.turns]

    def describe(self) -> dict:
        turns = sum(len(c.turns) for c in self.conversations_)
        return {
            "name": self.name,
            "format": "locomo",
            "path": str(self.path),
            "conversations": len(self.conversations_),
            "turns": turns,
            "passages": turns,
            "questions": len(self.questions),
            "corpus_questions": self.total_questions,
            "dropped_evidence_ids": self.dropped_evidence,
            "limit": self.limit,
            "scope": "per conversation (one group each)",
        }


def _evidence(raw: object, known: set[str]) -> tuple[set[str], int]:
    items = raw if isinstance(raw, list) else [raw] if isinstance(raw, str) else []
    ids: set[str] = set()
    dropped = 0
    for item in items:
        for part in re.split(r"[;,\s]+", str(item)):
            if not part:
                continue
            match = _ID.match(part.strip())
            fixed = f"D{match.group(1)}:{match.group(2)}" if match else part.strip()
            if fixed in known:
                ids.add(fixed)
            else:
                dropped += 1
    return ids, dropped


def load_locomo(
    path: str | Path, *, name: str = "locomo", limit: int | None = None, categories: set[str] | None = None
) -> LoCoMoDataset:
    """Load a LoCoMo-format file (or a folder holding ``locomo.json``).

    ``limit`` keeps the first N questions (file order); ``categories`` keeps
    only those category names (e.g. {"multi-hop", "temporal"}).
    """
    path = Path(path)
    if path.is_dir():
        path = path / LOCOMO_FILE
    if not path.is_file():
        raise InputError("no such LoCoMo file", path=path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read as JSON: {exc}", path=path) from None
    conversations = read_locomo(path.resolve(), data)
    questions: list[Question] = []
    dropped = 0
    for item, conversation in zip(data, conversations, strict=True):
        sample = conversation.metadata["id"]
        known = {t.turn_id for t in conversation.turns}
        for n, qa in enumerate(item.get("qa") or []):
            if not isinstance(qa, dict) or not isinstance(qa.get("question"), str):
                raise InputError(f"conversation {sample!r}, qa {n}: needs a 'question' string", path=path, field="qa")
            gold, lost = _evidence(qa.get("evidence"), known)
            dropped += lost
            number = qa.get("category")
            category = CATEGORIES[number] if isinstance(number, int) and number in CATEGORIES else str(number or "")
            answer = qa.get("answer", qa.get("adversarial_answer", ""))
            questions.append(
                Question(
                    id=f"{sample}/q{n}",
                    text=qa["question"],
                    gold=frozenset(f"{sample}/{g}" for g in gold),
                    category=category,
                    answer=str(answer) if answer is not None else "",
                )
            )
    total = len(questions)
    if categories:
        unknown = set(categories) - set(CATEGORIES.values())
        if unknown:
            raise ConfigError(f"unknown LoCoMo categories {sorted(unknown)}; known: {', '.join(CATEGORIES.values())}")
        questions = [q for q in questions if q.category in categories]
    if limit is not None:
        questions = questions[:limit]
    dataset = LoCoMoDataset(
        name=name,
        path=path.resolve(),
        conversations_=conversations,
        questions=questions,
        total_questions=total,
        dropped_evidence=dropped,
        limit=limit,
    )
    dataset._sample_of = {c.name: c.metadata["id"] for c in conversations}
    return dataset


def find_locomo(name_or_path: str, data_dir: str | Path | None = None) -> Path | None:
    """The LoCoMo file for ``locomo`` (under the data dirs) or a path in LoCoMo format; None if not LoCoMo."""
    direct = Path(name_or_path).expanduser()
    if direct.is_file() and direct.suffix.lower() == ".json":
        return direct
    if direct.is_dir() and (direct / LOCOMO_FILE).is_file():
        return direct / LOCOMO_FILE
    if name_or_path == "locomo":
        for folder in data_dirs(data_dir):
            if (folder / "locomo" / LOCOMO_FILE).is_file():
                return folder / "locomo" / LOCOMO_FILE
        raise ConfigError(
            "dataset 'locomo' not found: looked for locomo/locomo.json under the data dirs "
            "(give --data-dir or GRAPHMEM_DATA_DIR, or a path to the file)"
        )
    return None
