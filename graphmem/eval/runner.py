"""Run a benchmark: ingest its corpus into a fresh store, ask every question
with graphmem (graph + PPR) and the same-process baselines (dense-only with
the same embedder over the same passages, and BM25), and score the rankings.

What the numbers cover:

- ``recall@k``: mean over questions (with at least one gold id) of
  ``|gold ∩ top-k| / |gold|``, top-k being the first k distinct dataset ids of
  the ranking (:mod:`graphmem.eval.metrics`). Rankings come from
  :meth:`Memory.search_many` run in batches, i.e. one batched PPR per batch
  in graph mode: the path a RAG pipeline with many queries takes.
- ``p50_ms`` / ``p95_ms``: one query at a time through
  ``Retriever.search_many`` with the query vector precomputed, so it is the
  retrieval itself (passage scoring -- dense and BM25 are both computed in
  every mode --, query entity extraction, seeding and PPR in graph mode), not
  the query embedding (reported once as ``query_embedding.ms_per_query``)
  nor the fetch of passage texts from the store.
- ``batch_ms_per_query``: wall time of the batched run divided by the questions
  (includes fetching the passages from the store, excludes embedding).
- ``ingest.passages_per_s``: passages ingested (spaCy extraction, embedding,
  entity resolution and store writes) per second of wall time.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graphmem.config import Settings
from graphmem.errors import ConfigError
from graphmem.eval.datasets import Dataset, Question
from graphmem.eval.metrics import dedupe, mean, percentile, recall_at_k
from graphmem.recipe import pinned

if TYPE_CHECKING:
    from graphmem.eval.locomo import Partition
    from graphmem.ingest.dialogue import Conversation
    from graphmem.ingest.readers import Document
    from graphmem.memory import Memory, SearchMode

SYSTEMS: dict[str, SearchMode] = {"graphmem": "graph", "dense": "dense", "bm25": "bm25"}
DEFAULT_KS = (2, 5, 10)

Advance = Callable[[int], None]
ProgressFactory = Callable[[str, int], AbstractContextManager[Advance]]


@contextlib.contextmanager
def _no_progress(label: str, total: int) -> Iterator[Advance]:
    yield lambda n: None


@dataclass
class EvalReport:
    """Everything one run measured; :meth:`to_json` is the stable file layout."""

    dataset: dict[str, Any]
    settings: dict[str, Any]
    date: str
    systems: dict[str, str]
    ks: tuple[int, ...]
    ingest: dict[str, Any]
    query_embedding: dict[str, Any]
    summary: dict[str, dict[str, Any]]
    questions: list[dict[str, Any]]
    by_category: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    home: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "date": self.date,
            "settings": self.settings,
            "systems": self.systems,
            "ks": list(self.ks),
            "ingest": self.ingest,
            "query_embedding": self.query_embedding,
            "summary": self.summary,
            "by_category": self.by_category,
            "questions": self.questions,
            "home": self.home,
        }


def score(
    questions: Sequence[Question],
    rankings: dict[str, list[list[str | None]]],
    latencies: dict[str, list[float]],
    ks: Sequence[int],
) -> tuple[list[dict], dict, dict]:
    """Per-question results, per-system summary and per-category recall from rankings of dataset ids.

    Questions with no gold ids get ``None`` recall and are left out of the means
    (``questions`` in the summary counts those scored).
    """
    records: list[dict[str, Any]] = []
    for i, q in enumerate(questions):
        systems = {}
        for name, rows in rankings.items():
            # distinct ids in rank order: recall@k is |gold ∩ retrieved[:k]| / |gold| on this list
            entry: dict[str, Any] = {"retrieved": dedupe(rows[i])}
            for k in ks:
                entry[f"recall@{k}"] = recall_at_k(rows[i], q.gold, k) if q.gold else None
            entry["ms"] = round(latencies[name][i], 3) if latencies.get(name) else None
            systems[name] = entry
        records.append(
            {"id": q.id, "question": q.text, "category": q.category, "gold": sorted(q.gold), "systems": systems}
        )
    summary: dict[str, dict[str, Any]] = {}
    for name in rankings:
        metrics: dict[str, Any] = {f"recall@{k}": mean(r["systems"][name][f"recall@{k}"] for r in records) for k in ks}
        ms = latencies.get(name) or []
        metrics["p50_ms"] = percentile(ms, 50)
        metrics["p95_ms"] = percentile(ms, 95)
        metrics["questions"] = sum(1 for q in questions if q.gold)
        summary[name] = metrics
    by_category: dict[str, dict[str, dict[str, Any]]] = {}
    categories = sorted({q.category for q in questions if q.category})
    if categories:
        for name in rankings:
            by_category[name] = {}
            for category in categories:
                members = [r for r in records if r["category"] == category]
                by_category[name][category] = {
                    **{f"recall@{k}": mean(r["systems"][name][f"recall@{k}"] for r in members) for k in ks},
                    "questions": sum(1 for r in members if r["gold"]),
                }
    return records, summary, by_category


def _public_settings(settings: Settings) -> dict[str, Any]:
    data = settings.model_dump(mode="json")
    store = data.get("store", "")
    if "://" in store and "@" in store:  # never write a password into a report
        scheme, rest = store.split("://", 1)
        data["store"] = f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return data


def _run_systems(
    memory: Memory,
    dataset: Dataset,
    texts: list[str],
    vectors: np.ndarray,
    systems: Sequence[str],
    k_max: int,
    batch_size: int,
    progress: ProgressFactory,
) -> tuple[dict[str, list[list[str | None]]], dict[str, list[float]], dict[str, float]]:
    """Rankings (dataset ids), one-by-one latencies (ms) and total batched seconds of every system."""
    retriever = memory.retriever
    rankings: dict[str, list[list[str | None]]] = {}
    latencies: dict[str, list[float]] = {}
    batch_seconds: dict[str, float] = {}
    for name in systems:
        mode = SYSTEMS[name]
        retriever.search_many(
            texts[:1], k_max, mode=mode, query_vectors=vectors[:1]
        )  # warm caches (BM25 index, transition)
        results: list = []
        with progress(f"{name}: batched", len(texts)) as advance:
            started = time.perf_counter()
            for start in range(0, len(texts), batch_size):
                chunk = slice(start, start + batch_size)
                results += memory.search_many(texts[chunk], k_max, mode=mode, query_vectors=vectors[chunk])
                advance(len(texts[chunk]))
            batch_seconds[name] = time.perf_counter() - started
        rankings[name] = [[dataset.passage_id(r) for r in row] for row in results]
        times: list[float] = []
        with progress(f"{name}: one by one", len(texts)) as advance:
            for i, text in enumerate(texts):
                started = time.perf_counter()
                retriever.search_many([text], k_max, mode=mode, query_vectors=vectors[i : i + 1])
                times.append((time.perf_counter() - started) * 1000)
                advance(1)
        latencies[name] = times
    return rankings, latencies, batch_seconds


#: one memory of a run: its settings, the documents or conversations ingested into it, and the
#: questions (indices) asked of it
_Step = tuple[Settings, list["Document"], list["Conversation"], list[int]]


def evaluate(
    dataset: Dataset,
    settings: Settings | None = None,
    *,
    systems: Sequence[str] = tuple(SYSTEMS),
    limit: int | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    home: str | Path | None = None,
    keep: bool = False,
    batch_size: int = 32,
    progress: ProgressFactory | None = None,
) -> EvalReport:
    """Ingest ``dataset`` and score ``systems`` on its questions (the first ``limit`` of them).

    ``home`` is the store's data directory; by default a temporary one that is
    deleted afterwards unless ``keep``. A given ``home`` is kept and reused:
    passages already ingested there are skipped (so repeated runs that tune
    retrieval settings skip the slow ingestion), but it must not hold sources
    outside this dataset, which would pollute the rankings.
    """
    ks, settings, questions, documents = _checked(dataset, settings, systems, limit, ks)
    temporary = home is None
    home_path = Path(tempfile.mkdtemp(prefix="graphmem-eval-")) if home is None else Path(home)
    settings = settings.model_copy(update={"home": home_path})
    # A dataset may split into partitions (LoCoMo: one memory per conversation): each is
    # ingested into its own group and asked only its own questions.
    partitions = dataset.partitions() if hasattr(dataset, "partitions") else None
    plan = _plan(settings, documents, len(questions), partitions)
    run = _Run(dataset, questions, systems, ks[-1], batch_size, progress or _no_progress, home_path)
    try:
        for step in plan:
            run.step(step)
    finally:
        if temporary and not keep:
            shutil.rmtree(home_path, ignore_errors=True)
    if partitions is not None:  # questions of conversations not run (limit) keep empty rankings
        run.keep_asked({i for step in plan for i in step[3]})
    return run.report(
        settings, ks, conversations=partitions is not None, home=None if temporary and not keep else home_path
    )


def _checked(
    dataset: Dataset, settings: Settings | None, systems: Sequence[str], limit: int | None, ks: Sequence[int]
) -> tuple[tuple[int, ...], Settings, list[Question], list[Document]]:
    """The arguments of :func:`evaluate` checked: the sorted ks, the settings pinned, the
    questions asked and the dataset's documents."""
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown or not systems:
        raise ConfigError(f"unknown system(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(SYSTEMS)}")
    ks = tuple(sorted(set(ks)))
    if not ks or ks[0] < 1:
        raise ConfigError("ks must be positive integers")
    if limit is not None and limit < 1:
        raise ConfigError("limit must be at least 1")
    settings = pinned(settings or Settings.from_env())
    questions = list(dataset.questions[:limit] if limit else dataset.questions)
    if not questions:
        raise ConfigError(f"dataset {dataset.name!r} has no questions")
    documents = dataset.documents()
    longest = max((len(d.text.split()) for d in documents), default=0)
    if longest > settings.chunk_words:
        # a split passage still maps back to its id, but the benchmark is defined on whole passages
        raise ConfigError(
            f"chunk_words={settings.chunk_words} would split passages of up to {longest} words; "
            f"use the dataset's pipeline spec (chunker words: 10000) or raise chunk_words"
        )
    return ks, settings, questions, documents


def _plan(
    settings: Settings, documents: list[Document], n_questions: int, partitions: list[Partition] | None
) -> list[_Step]:
    """The memories to ingest and ask: one holding every document, or one per partition
    (its own group) that has questions among the first ``n_questions``."""
    if partitions is None:
        return [(settings, documents, [], list(range(n_questions)))]
    asked = set(range(n_questions))
    plan: list[_Step] = [
        (
            settings.model_copy(update={"group_id": f"{settings.group_id}-{p.key}"}),
            [],
            p.conversations,
            [i for i in p.questions if i in asked],
        )
        for p in partitions
    ]
    return [step for step in plan if step[3]]


@dataclass
class _Run:
    """One evaluation under way: what it asks, and the rankings, latencies and ingestion
    totals gathered so far, question by question, across the memories of its plan."""

    dataset: Dataset
    questions: list[Question]
    systems: Sequence[str]
    k_max: int
    batch_size: int
    progress: ProgressFactory
    home: Path
    rankings: dict[str, list[list[str | None]]] = field(init=False)
    latencies: dict[str, list[float]] = field(init=False)
    batch_total: dict[str, float] = field(init=False)
    totals: dict[str, float] = field(
        default_factory=lambda: {
            "documents": 0,
            "conversations": 0,
            "passages": 0,
            "skipped": 0,
            "entities": 0,
            "facts": 0,
            "seconds": 0.0,
        }
    )
    stats: dict[str, int] = field(default_factory=dict)
    embed_total: float = 0.0

    def __post_init__(self) -> None:
        self.rankings = {name: [[] for _ in self.questions] for name in self.systems}
        self.latencies = {name: [0.0] * len(self.questions) for name in self.systems}
        self.batch_total = {name: 0.0 for name in self.systems}

    def step(self, step: _Step) -> None:
        """Ingest one memory of the plan and ask it its questions with every system."""
        from graphmem.memory import Memory

        with Memory(step[0], update_recipe=True) as memory:  # the group's recipe: what was measured
            self.ingest(memory, step)
            self.ask(memory, step[3])

    def ingest(self, memory: Memory, step: _Step) -> None:
        part_settings, part_documents, part_conversations, _ = step
        wanted = {d.name for d in part_documents} | {c.name for c in part_conversations}
        extra = [row["name"] for row in memory.sources() if row.get("name") not in wanted]
        if extra:
            raise ConfigError(
                f"{self.home} already holds {len(extra)} source(s) outside this dataset "
                f"(e.g. {extra[0]!r}); use a fresh --home"
            )
        if part_conversations:
            turns = sum(len(c.turns) for c in part_conversations)
            with self.progress(f"ingesting {part_settings.group_id}", turns) as advance:
                ingested = memory.ingest_conversations(part_conversations, progress=advance)
            self.totals["conversations"] += len(part_conversations)
        else:
            with self.progress("ingesting", len(part_documents)) as advance:
                ingested = memory.ingest_documents(part_documents, progress=advance)
            self.totals["documents"] += len(part_documents)
        for key in ("passages", "skipped", "entities", "facts"):
            self.totals[key] += getattr(ingested, key)
        self.totals["seconds"] += ingested.seconds
        for key, value in memory.stats().items():
            self.stats[key] = self.stats.get(key, 0) + value

    def ask(self, memory: Memory, indices: list[int]) -> None:
        texts = [self.questions[i].text for i in indices]
        started = time.perf_counter()
        vectors = np.asarray(memory.embedder.embed(texts), dtype=np.float32)
        self.embed_total += time.perf_counter() - started
        part_rankings, part_latencies, part_batch = _run_systems(
            memory, self.dataset, texts, vectors, self.systems, self.k_max, self.batch_size, self.progress
        )
        for name in self.systems:
            for j, i in enumerate(indices):
                self.rankings[name][i] = part_rankings[name][j]
                self.latencies[name][i] = part_latencies[name][j]
            self.batch_total[name] += part_batch[name]

    def keep_asked(self, asked: set[int]) -> None:
        """Only the questions asked (of the partitions run) stay in the report."""
        self.questions = [q for i, q in enumerate(self.questions) if i in asked]
        self.rankings = {name: [r for i, r in enumerate(rows) if i in asked] for name, rows in self.rankings.items()}
        self.latencies = {name: [t for i, t in enumerate(rows) if i in asked] for name, rows in self.latencies.items()}

    def ingest_report(self, conversations: bool) -> dict[str, Any]:
        totals = self.totals
        return {
            **{k: v for k, v in totals.items() if not (k == "conversations" and not conversations)},
            "seconds": round(totals["seconds"], 3),
            "passages_per_s": round(totals["passages"] / totals["seconds"], 3)
            if totals["seconds"] and totals["passages"]
            else None,
            "stats": self.stats,
        }

    def report(self, settings: Settings, ks: tuple[int, ...], *, conversations: bool, home: Path | None) -> EvalReport:
        questions, systems = self.questions, self.systems
        embed_ms = self.embed_total * 1000 / max(1, len(questions))
        batch_ms = {name: self.batch_total[name] * 1000 / max(1, len(questions)) for name in systems}
        records, summary, by_category = score(questions, self.rankings, self.latencies, ks)
        for name in summary:
            summary[name]["batch_ms_per_query"] = round(batch_ms[name], 3)
            for key in ("p50_ms", "p95_ms"):
                if summary[name][key] is not None:
                    summary[name][key] = round(summary[name][key], 3)
        described = self.dataset.describe()
        described["questions_run"] = len(questions)
        return EvalReport(
            dataset=described,
            settings=_public_settings(settings),
            date=datetime.now(UTC).isoformat(timespec="seconds"),
            systems={name: SYSTEMS[name] for name in systems},
            ks=ks,
            ingest=self.ingest_report(conversations),
            query_embedding={"ms_per_query": round(embed_ms, 3), "batched": True, "embedder": settings.embedder},
            summary=summary,
            questions=records,
            by_category=by_category,
            home=None if home is None else str(home),
        )
