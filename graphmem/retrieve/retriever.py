"""Search as composable steps: score passages (dense + BM25) -> seed -> expand
(PPR over the projection) -> fuse -> bridge (bridge.py) and rank, with
provenance for every hit."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.sparse as sp

from graphmem.config import RetrievalSettings
from graphmem.embed.base import Embedder
from graphmem.retrieve.ann import VectorIndex, load_or_build
from graphmem.retrieve.bm25 import BM25Index
from graphmem.retrieve.bridge import BridgeSettings, apply_bridge, apply_bridge_local
from graphmem.retrieve.currency import demote, superseded_passages
from graphmem.retrieve.dialogue import apply_speaker_prior, carry_to_answers, damp_speaker_names, named_speaker_turns
from graphmem.retrieve.names import named_entities
from graphmem.retrieve.ppr import PushOperator, personalized_pagerank, push_operator, push_pagerank
from graphmem.retrieve.projection import Projection
from graphmem.retrieve.provenance import add_fact_episode_seeds
from graphmem.retrieve.seeds import Seeds, build_seeds, minmax, top_indices
from graphmem.timeutil import to_ms

Mode = Literal["graph", "dense", "bm25"]
MODES = ("graph", "dense", "bm25")
#: with push PPR the fusion ranks only this many passages of each list (the rest tie below them):
#: a passage below both can gain at most 1 / (rrf_k + FUSION_DEPTH) there, far from the top k
FUSION_DEPTH = 1000
#: in ANN mode the bridge step follows the anchors' entities to the passages that mention them,
#: leaving out entities mentioned by more passages than this (their link weight, 1 / count, is nil)
BRIDGE_HUB = 2000
#: in ANN mode the lowest dense score (for min-max scaling) is the lowest over this many sampled passages
FLOOR_SAMPLE = 2048


@dataclass
class Hit:
    """One ranked passage (or dialogue turn) and why it was found."""

    uuid: str
    score: float
    rank: int
    entities: list[str] = field(default_factory=list)  # seed entities this passage mentions
    facts: list[str] = field(default_factory=list)  # seed facts touching this passage


@dataclass
class _Derived:
    """Indexes a retriever derives from its projection on first use (shared with the
    per-call copies of the retriever, like its ANN indexes)."""

    push: dict[str, PushOperator] = field(default_factory=dict)  # by as_of and edge weights
    floor_sample: np.ndarray | None = None  # see Retriever._floor_sample
    entity_passages: sp.csr_matrix | None = None  # entity -> passages incidence

    def clear(self) -> None:
        self.push.clear()
        self.floor_sample = self.entity_passages = None


#: a passage's (hybrid, dense, bm25) scores, as Retriever.passage_scores gives them
Scores = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass
class _Batch:
    """The queries of one graph-mode search and what is worked out for them, query by query."""

    queries: Sequence[str]
    vectors: np.ndarray
    scored: list[Scores]
    known: np.ndarray | None  # the episodes that had happened by as_of (None: all)
    as_of_ms: int | None
    named: list[list[int]] = field(default_factory=list)  # entities named in each query
    speaker_turns: list[np.ndarray | None] = field(default_factory=list)  # turns of the speaker named, if any


class Retriever:
    """Ranks the passages of one :class:`Projection` for natural-language queries."""

    def __init__(
        self,
        projection: Projection,
        embedder: Embedder,
        settings: RetrievalSettings,
        query_entities: Callable[[str], list[str]] | None = None,
    ) -> None:
        self.projection = projection
        self.embedder = embedder
        self.settings = settings
        self._query_entities = query_entities
        self._ann: dict[str, VectorIndex] = {}  # "episodes" / "facts": extended in place as rows are added
        self._derived = _Derived()

    def reset_indexes(self) -> None:
        """Forget indexes derived from the projection (after it was extended). The ANN
        indexes stay: they take the new rows on their next use."""
        self._derived.clear()

    # -- the flat query path: which method runs, and its indexes -----------------------
    def vector_index(self, name: Literal["episodes", "facts"]) -> VectorIndex | None:
        """The ANN index over the projection's passage (``episodes``) or fact vectors, or
        None where search is exact (``vector_index`` setting). Built on first use, or loaded
        from the projection's build directory, and extended to rows added since; saved
        there (``ann-<name>.faiss``) so other processes map the same file."""
        matrix = self.projection.episode_vectors if name == "episodes" else self.projection.fact_vectors
        mode = self.settings.vector_index
        rows = len(matrix)
        if mode == "exact" or rows == 0 or (mode == "auto" and rows < self.settings.ann_min_rows):
            return None
        directory = getattr(self.projection, "build_dir", None)
        path = Path(directory) / f"ann-{name}.faiss" if directory is not None else None
        index = self._ann.get(name)
        if index is None or len(index) > rows or index.dim != matrix.shape[1]:
            index = load_or_build(path, matrix, exact_below=0)
            self._ann[name] = index
        elif len(index) < rows:
            index.extend_to(matrix)
            if path is not None:
                index.save(path)
        index.tune(self.settings.ann_expansion)
        return index

    def uses_push(self) -> bool:
        """Whether PPR runs as forward push (``ppr`` setting) on this projection."""
        mode = self.settings.ppr
        return mode == "push" or (mode == "auto" and self.projection.n_nodes >= self.settings.push_min_nodes)

    def push_operator(self, as_of_ms: int | None) -> PushOperator:
        s = self.settings
        key = f"push:{as_of_ms}:{s.next_weight}:{s.speaker_weight}"
        if key not in self._derived.push:
            if as_of_ms is None:  # the current graph: saved with the projection, mapped by every process
                name = f"push_{s.next_weight:g}_{s.speaker_weight:g}"
                arrays = self.projection.derived_arrays(
                    name,
                    lambda: push_operator(self.projection.transition(None, s.next_weight, s.speaker_weight)).arrays(),
                )
                self._derived.push[key] = PushOperator.from_arrays(arrays)
            else:
                self._derived.push[key] = push_operator(
                    self.projection.transition(as_of_ms, s.next_weight, s.speaker_weight)
                )
        return self._derived.push[key]

    @property
    def bm25(self) -> BM25Index:
        """The projection's BM25 index (built with it and saved with it on disk)."""
        if self.projection.bm25 is None:
            raise ValueError(
                "this projection has no BM25 index (a hand-built one: pass bm25=BM25Index.from_texts(...))"
            )
        return self.projection.bm25

    # -- steps ------------------------------------------------------------------
    def passage_scores(self, query: str, query_vector: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(hybrid, dense, bm25) scores of every passage.

        With an ANN index (:meth:`vector_index`) only candidates get a dense score: the
        index's ``ann_candidates`` nearest passages and the ``passage_top_k`` best by BM25
        (so a passage that matches the query's words is scored on both). Every other
        passage counts as the lowest candidate score (its true score is at most that).
        Min-max scaling of the dense scores needs the lowest score of every passage: it
        is estimated from a fixed sample of passages (:data:`FLOOR_SAMPLE`), so the dense
        and BM25 parts of the hybrid score keep the weights they have in exact mode (the
        passage seeds' softmax is sensitive to that scale).
        """
        P = len(self.projection.episode_ids)
        bm25 = self.bm25.scores(query)
        index = self.vector_index("episodes") if P else None
        if index is None:
            dense = self.projection.episode_vectors @ query_vector if P else np.zeros(0, np.float32)
        else:
            ids, _ = index.search(query_vector, self.settings.ann_candidates)
            if len(bm25):
                best = top_indices(bm25, self.settings.passage_top_k)
                ids = np.union1d(ids, best[bm25[best] > 0])
            scores = self._dense_of(ids, query_vector)
            floor = float(scores.min()) if len(scores) else 0.0
            dense = np.full(P, floor, dtype=np.float32)
            dense[ids] = scores
            low = min(floor, float((self._floor_sample() @ query_vector).min()))
            high = float(scores.max()) if len(scores) else 0.0
            w = self.settings.bm25_weight
            scaled = (dense - low) / (high - low) if high - low > 1e-9 else minmax(dense)
            return (1 - w) * scaled + w * minmax(bm25), dense, bm25
        w = self.settings.bm25_weight
        hybrid = (1 - w) * minmax(dense) + w * minmax(bm25) if len(dense) else dense
        return hybrid, dense, bm25

    def _floor_sample(self) -> np.ndarray:
        """The vectors of a fixed random sample of passages (at most :data:`FLOOR_SAMPLE`)."""
        if self._derived.floor_sample is None:
            P = len(self.projection.episode_ids)
            rows = np.sort(np.random.default_rng(0).choice(P, min(P, FLOOR_SAMPLE), replace=False))
            self._derived.floor_sample = np.asarray(self.projection.episode_vectors[rows], dtype=np.float32)
        return self._derived.floor_sample

    def entities_in(self, query: str) -> list[int]:
        """Entity indices the query names: by looking up the graph's names (``lookup``,
        graphmem/retrieve/names.py) or by spaCy NER on the query (``ner``)."""
        if self.settings.query_entities == "lookup":
            return named_entities(self.projection.entity_key_index(), query)
        if self._query_entities is None:
            return []
        from graphmem.model import entity_key

        keys = self.projection.entity_key_index()
        return sorted({keys[k] for k in (entity_key(n) for n in self._query_entities(query)) if k in keys})

    # -- search ------------------------------------------------------------------
    def search(self, query: str, k: int = 5, *, mode: Mode = "graph", as_of: datetime | None = None) -> list[Hit]:
        return self.search_many([query], k, mode=mode, as_of=as_of)[0]

    def search_many(
        self,
        queries: Sequence[str],
        k: int = 5,
        *,
        mode: Mode = "graph",
        as_of: datetime | None = None,
        query_vectors: np.ndarray | None = None,
    ) -> list[list[Hit]]:
        """Rank passages for every query; graph mode runs one batched PPR for all of them."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        if not queries:
            return []
        P = len(self.projection.episode_ids)
        if P == 0:
            return [[] for _ in queries]
        if mode == "bm25":  # the query's words alone: no embedding, so no model is loaded
            return self._bm25_search(queries, k, as_of)
        vectors = self.embedder.embed(list(queries)) if query_vectors is None else query_vectors
        if mode == "graph":  # the dense and BM25 modes are baselines: the query as asked
            vectors = damp_speaker_names(
                self.projection,
                queries,
                vectors,
                self.settings.speaker_name_weight,
                lambda names: self.embedder.embed(names),
            )  # only called when on
        scored = [self.passage_scores(q, v) for q, v in zip(queries, vectors, strict=False)]
        if mode == "graph":
            carry, weight = self.settings.answer_carry, self.settings.question_turn_weight
            scored = [(carry_to_answers(self.projection, s[0], carry, weight), s[1], s[2]) for s in scored]
        as_of_ms = to_ms(as_of) if as_of is not None else None
        known = self.projection.episodes_known_at(as_of_ms)
        if known is not None:  # as_of: episodes that had not happened yet are not returned
            scored = [_only_known(s, known) for s in scored]
        if mode == "dense":
            return [self._rank(s[1], k) for s in scored]
        return self._graph_search(_Batch(queries, vectors, scored, known, as_of_ms), k)

    def _bm25_search(self, queries: Sequence[str], k: int, as_of: datetime | None) -> list[list[Hit]]:
        """BM25 mode: each query's BM25 ranking of the passages known at ``as_of``."""
        known = self.projection.episodes_known_at(to_ms(as_of) if as_of is not None else None)
        scores = [self.bm25.scores(query) for query in queries]
        if known is not None:  # as in _only_known: episodes that had not happened yet are not returned
            scores = [np.where(known, s, -np.inf) for s in scores]
        return [self._rank(s, k) for s in scores]

    def _graph_search(self, batch: _Batch, k: int) -> list[list[Hit]]:
        """Graph mode: seed each query, one PPR walk for all, then fuse and bridge per query."""
        mask = self.projection.facts_valid_at(batch.as_of_ms)
        batch.named = [self.entities_in(q) for q in batch.queries]
        boost = self.settings.speaker_boost
        batch.speaker_turns = [named_speaker_turns(self.projection, n) if boost > 0 else None for n in batch.named]
        batch.scored = [
            (apply_speaker_prior(s[0], None, t, boost)[0], s[1], s[2])
            for s, t in zip(batch.scored, batch.speaker_turns, strict=True)
        ]
        fact_index = self.vector_index("facts")
        seeds = [
            build_seeds(self.projection, v, s[0], n, self.settings, mask, fact_index)
            for n, v, s in zip(batch.named, batch.vectors, batch.scored, strict=True)
        ]
        for seed in seeds:
            add_fact_episode_seeds(self.projection, seed, self.settings.fact_episode_weight)
        push = self.uses_push()
        ppr = self._pagerank(np.stack([s.reset for s in seeds], axis=1), batch.as_of_ms, push)
        local = self.vector_index("episodes") is not None
        depth = FUSION_DEPTH if push else None
        finals = [self._final_scores(batch, c, ppr, depth, local) for c in range(len(seeds))]
        finals = [self._current_first(f, v, mask, fact_index) for f, v in zip(finals, batch.vectors, strict=True)]
        return [self._rank(f, k, seed) for f, seed in zip(finals, seeds, strict=True)]

    def _current_first(
        self, scores: np.ndarray, query_vector: np.ndarray, valid: np.ndarray, fact_index: VectorIndex | None
    ) -> np.ndarray:
        """Passages whose best evidence for the query is a fact not valid at the query's time
        (``valid``: as_of, else now) lose ``superseded_weight`` of their score (retrieve/currency.py)."""
        weight = self.settings.superseded_weight
        if weight == 1.0:
            return scores
        rows = superseded_passages(self.projection, query_vector, valid, self.settings, fact_index)
        return demote(scores, rows, weight)

    def _pagerank(self, reset: np.ndarray, as_of_ms: int | None, push: bool) -> np.ndarray:
        """Personalised PageRank of every reset column (forward push or power iteration)."""
        if push:
            return push_pagerank(self.push_operator(as_of_ms), reset, self.settings.damping, self.settings.push_epsilon)
        transition = self.projection.walk_operator(as_of_ms, self.settings.next_weight, self.settings.speaker_weight)
        return personalized_pagerank(
            transition, reset, self.settings.damping, self.settings.ppr_iterations, self.settings.ppr_tolerance
        )

    def _final_scores(self, batch: _Batch, column: int, ppr: np.ndarray, depth: int | None, local: bool) -> np.ndarray:
        """One query's passage scores: its PPR column (with the speaker prior) fused with its
        hybrid scores (to ``depth``), unknown episodes left out, then the bridge step (``local``:
        over the anchors' neighbourhood, as with an ANN index over the passages)."""
        hybrid, dense, _ = batch.scored[column]
        passage_ppr = ppr[self.projection.n_entities :, column]
        _, boosted = apply_speaker_prior(hybrid, passage_ppr, batch.speaker_turns[column], self.settings.speaker_boost)
        passage_ppr = passage_ppr if boosted is None else boosted
        final = self._fuse(passage_ppr, hybrid, depth)
        if batch.known is not None:
            final = np.where(batch.known, final, -np.inf)
        s = self.settings
        if local:  # cost bounded by the anchors' neighbourhood, hubs left out
            return apply_bridge_local(
                self.projection,
                self._entity_passages(),
                final,
                dense,
                partial(self._dense_of, query_vector=batch.vectors[column]),
                batch.queries[column],
                batch.named[column],
                BridgeSettings(s.bridge_anchors, s.bridge_weight, s.bridge_temperature, s.rrf_k, BRIDGE_HUB),
            )
        return apply_bridge(
            self.projection,
            final,
            dense,
            batch.queries[column],
            batch.named[column],
            s.bridge_anchors,
            s.bridge_weight,
            s.bridge_temperature,
            s.rrf_k,
        )

    def _fuse(self, ppr: np.ndarray, hybrid: np.ndarray, depth: int | None = None) -> np.ndarray:
        """Reciprocal-rank fusion of the PPR ranking with the hybrid passage ranking.
        ``depth``: rank only the top ``depth`` of each list (a partial sort), the others
        share the rank after them."""
        w, c = self.settings.fusion_weight, self.settings.rrf_k
        fused = np.zeros_like(ppr, dtype=np.float64)
        for weight, scores in ((w, ppr), (1 - w, hybrid)):
            if weight <= 0:
                continue
            if depth is not None and depth < len(scores):
                top = top_indices(scores, depth)
                fused += weight / (c + depth + 1)
                fused[top] += weight / (c + np.arange(1, len(top) + 1)) - weight / (c + depth + 1)
                continue
            order = np.argsort(-scores, kind="stable")
            ranks = np.empty_like(order)
            ranks[order] = np.arange(len(order))
            fused += weight / (c + ranks + 1)
        return fused

    def _dense_of(self, rows: np.ndarray, query_vector: np.ndarray) -> np.ndarray:
        """Exact cosines of the passages ``rows`` (sorted ids) with the query."""
        if not len(rows):
            return np.zeros(0, dtype=np.float32)
        return np.asarray(self.projection.episode_vectors[rows], dtype=np.float32) @ query_vector

    def _entity_passages(self) -> sp.csr_matrix:
        """The MENTIONS incidence by entity (rows: entities, columns: passages)."""
        if self._derived.entity_passages is None:
            self._derived.entity_passages = sp.csr_matrix(self.projection.episode_entities().T)
        return self._derived.entity_passages

    def _rank(self, scores: np.ndarray, k: int, seeds: Seeds | None = None) -> list[Hit]:
        top = top_indices(scores, k)
        top = top[np.isfinite(scores[top])]
        hits = []
        for rank, index in enumerate(top, start=1):
            hit = Hit(uuid=self.projection.episode_ids[index], score=float(scores[index]), rank=rank)
            if seeds is not None:
                self._explain(hit, int(index), seeds)
            hits.append(hit)
        return hits

    def _explain(self, hit: Hit, episode: int, seeds: Seeds) -> None:
        mentioned = set(self.projection.episode_entities()[episode].indices.tolist())
        names = self.projection.entity_names
        hit.entities = [names[e] for e in sorted(seeds.entities, key=lambda e: -seeds.entities[e]) if e in mentioned]
        for fact, _ in seeds.facts:
            s, o = self.projection.fact_ends[fact]
            if hit.uuid in self.projection.fact_episodes[fact] or s in mentioned or o in mentioned:
                hit.facts.append(self.projection.fact_texts[fact])


def _only_known(
    scored: tuple[np.ndarray, np.ndarray, np.ndarray], known: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hybrid, dense, bm25) with episodes outside ``known`` unrankable (and no passage seed)."""
    hybrid, dense, bm25 = scored
    return (
        np.where(known, hybrid, 0.0).astype(np.float32),
        np.where(known, dense, -np.inf),
        np.where(known, bm25, -np.inf),
    )
