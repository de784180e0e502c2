"""The in-memory projection of one group's graph that retrieval runs on.

Nodes are entities (``0 .. E-1``) and passages/turns (``E .. E+P-1``); edges are
MENTIONS (passage-entity), FACT (entity-entity, one unit of weight per fact)
and SYNONYM (weighted by similarity). python-igraph holds the graph for graph
algorithms; PPR runs on a scipy transition matrix built from it. The dense
vectors retrieval scores against (passages, facts) live here too, so a query
needs no round trip to the store until the winners' texts are fetched.

Loading reads the store page by page; a copy is cached under
``<home>/cache`` keyed by the graph's revision, so a new process reuses it
until the next ingestion bumps the revision.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from graphmem.retrieve.ppr import parallel_operator, transition_matrix
from graphmem.store.graph import Graph

CACHE_VERSION = 3
FAR_FUTURE = 2**62


@dataclass
class Projection:
    entity_ids: list[str]
    entity_names: list[str]
    episode_ids: list[str]
    episode_texts: list[str]
    episode_times: np.ndarray  # int64 ms, -1 when unknown
    episode_vectors: np.ndarray  # (P, d) float32
    mention_pairs: np.ndarray  # (M, 2) int32: episode index, entity index
    fact_ids: list[str]
    fact_texts: list[str]
    fact_ends: np.ndarray  # (F, 2) int32 entity indices (subject, object)
    fact_valid: np.ndarray  # (F, 2) int64 ms: valid_at (or -inf), invalid_at (or +inf)
    fact_episodes: list[list[str]]
    fact_vectors: np.ndarray  # (F, d) float32
    synonym_pairs: np.ndarray  # (S, 2) int32 entity indices
    synonym_scores: np.ndarray  # (S,) float32
    revision: int = 0
    # dialogue structure: NEXT edges between episodes, and which mentions are "speaker said this turn"
    next_pairs: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int32))  # (N, 2) episode indices
    mention_speaker: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # (M,) per mention_pairs row
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    # -- sizes and lookups ---------------------------------------------------
    @property
    def n_entities(self) -> int:
        return len(self.entity_ids)

    @property
    def n_nodes(self) -> int:
        return len(self.entity_ids) + len(self.episode_ids)

    def entity_index(self) -> dict[str, int]:
        if "entity_index" not in self._cache:
            self._cache["entity_index"] = {u: i for i, u in enumerate(self.entity_ids)}
        return self._cache["entity_index"]

    def entity_key_index(self) -> dict[str, int]:
        if "entity_key_index" not in self._cache:
            from graphmem.resolve.entities import entity_key

            self._cache["entity_key_index"] = {entity_key(n): i for i, n in enumerate(self.entity_names)}
        return self._cache["entity_key_index"]

    def entity_passage_counts(self) -> np.ndarray:
        """How many passages mention each entity (for inverse-frequency seed weights)."""
        if "entity_counts" not in self._cache:
            counts = np.bincount(self.mention_pairs[:, 1], minlength=self.n_entities) if len(self.mention_pairs) else np.zeros(self.n_entities)
            self._cache["entity_counts"] = counts.astype(np.float32)
        return self._cache["entity_counts"]

    def episode_entities(self) -> sp.csr_matrix:
        """(P, E) incidence matrix of MENTIONS."""
        if "episode_entities" not in self._cache:
            m = self.mention_pairs
            self._cache["episode_entities"] = sp.csr_matrix(
                (np.ones(len(m), np.float32), (m[:, 0], m[:, 1])) if len(m) else ([], ([], [])),
                shape=(len(self.episode_ids), self.n_entities))
        return self._cache["episode_entities"]

    def episode_index(self) -> dict[str, int]:
        if "episode_index" not in self._cache:
            self._cache["episode_index"] = {u: i for i, u in enumerate(self.episode_ids)}
        return self._cache["episode_index"]

    def episode_speakers(self) -> np.ndarray:
        """(P,) entity index of each turn's speaker (-1 for passages and unknown speakers)."""
        if "episode_speakers" not in self._cache:
            speakers = np.full(len(self.episode_ids), -1, dtype=np.int64)
            if len(self.mention_speaker) == len(self.mention_pairs) and len(self.mention_pairs):
                pairs = self.mention_pairs[self.mention_speaker]
                speakers[pairs[:, 0]] = pairs[:, 1]
            self._cache["episode_speakers"] = speakers
        return self._cache["episode_speakers"]

    def speaker_set(self) -> set[int]:
        if "speaker_set" not in self._cache:
            self._cache["speaker_set"] = {int(e) for e in self.episode_speakers() if e >= 0}
        return self._cache["speaker_set"]

    def facts_valid_at(self, as_of_ms: int | None) -> np.ndarray:
        """Boolean mask of facts valid at ``as_of_ms`` (None: now, i.e. not invalidated)."""
        if as_of_ms is None:
            return self.fact_valid[:, 1] == FAR_FUTURE
        return (self.fact_valid[:, 0] <= as_of_ms) & (as_of_ms < self.fact_valid[:, 1])

    def episodes_known_at(self, as_of_ms: int | None) -> np.ndarray | None:
        """Boolean mask of episodes that had happened by ``as_of_ms`` (unknown time counts as
        known); None when every episode qualifies."""
        if as_of_ms is None:
            return None
        known = self.episode_times <= as_of_ms
        return None if bool(known.all()) else known

    # -- graph -------------------------------------------------------------------
    def adjacency(self, fact_mask: np.ndarray | None = None, next_weight: float = 0.0,
                  speaker_weight: float = 1.0) -> sp.csr_matrix:
        """Symmetric weighted adjacency. ``next_weight``: weight of NEXT (turn order) edges,
        0 leaves them out; ``speaker_weight``: weight of a turn's MENTIONS edge to its speaker."""
        E, n = self.n_entities, self.n_nodes
        rows, cols, weights = [], [], []
        if len(self.mention_pairs):
            rows.append(self.mention_pairs[:, 0] + E)
            cols.append(self.mention_pairs[:, 1])
            mention_w = np.ones(len(self.mention_pairs), np.float32)
            if speaker_weight != 1.0 and len(self.mention_speaker) == len(self.mention_pairs):
                mention_w[self.mention_speaker] = speaker_weight
            weights.append(mention_w)
        if next_weight > 0 and len(self.next_pairs):
            rows.append(self.next_pairs[:, 0] + E)
            cols.append(self.next_pairs[:, 1] + E)
            weights.append(np.full(len(self.next_pairs), next_weight, np.float32))
        ends = self.fact_ends if fact_mask is None else self.fact_ends[fact_mask]
        if len(ends):
            rows.append(ends[:, 0])
            cols.append(ends[:, 1])
            weights.append(np.ones(len(ends), np.float32))
        if len(self.synonym_pairs):
            rows.append(self.synonym_pairs[:, 0])
            cols.append(self.synonym_pairs[:, 1])
            weights.append(self.synonym_scores.astype(np.float32))
        if not rows:
            return sp.csr_matrix((n, n), dtype=np.float32)
        r, c, w = np.concatenate(rows), np.concatenate(cols), np.concatenate(weights)
        upper = sp.coo_matrix((w, (r, c)), shape=(n, n))
        return sp.csr_matrix(upper + upper.T, dtype=np.float32)

    def transition(self, as_of_ms: int | None = None, next_weight: float = 0.0,
                   speaker_weight: float = 1.0) -> sp.csr_matrix:
        key = f"transition:{as_of_ms}:{next_weight}:{speaker_weight}"
        if key not in self._cache:
            self._cache[key] = transition_matrix(self.adjacency(self.facts_valid_at(as_of_ms), next_weight,
                                                                speaker_weight))
        return self._cache[key]

    def walk_operator(self, as_of_ms: int | None = None, next_weight: float = 0.0, speaker_weight: float = 1.0):
        """:meth:`transition` as PPR multiplies by it: split over the cores on large graphs
        (:func:`graphmem.retrieve.ppr.parallel_operator`)."""
        key = f"operator:{as_of_ms}:{next_weight}:{speaker_weight}"
        if key not in self._cache:
            self._cache[key] = parallel_operator(self.transition(as_of_ms, next_weight, speaker_weight))
        return self._cache[key]

    def igraph(self):
        """The projection as an undirected weighted ``igraph.Graph`` (node attribute ``uuid``)."""
        import igraph as ig

        adjacency = sp.triu(self.adjacency()).tocoo()
        graph = ig.Graph(n=self.n_nodes, edges=list(zip(adjacency.row.tolist(), adjacency.col.tolist())))
        graph.es["weight"] = adjacency.data.tolist()
        graph.vs["uuid"] = self.entity_ids + self.episode_ids
        graph.vs["kind"] = ["entity"] * self.n_entities + ["episode"] * len(self.episode_ids)
        return graph

    # -- incremental update ------------------------------------------------------
    def extend(self, delta, revision: int) -> None:
        """Add what one ingestion run wrote (a ``GraphDelta``) without reloading the store.

        Only additions are handled; after removals the caller reloads instead.
        Facts already present (the same statement from another passage) gain the
        new supporting episodes rather than a duplicate.
        """
        entity_at = dict(self.entity_index())
        for row in delta.entities:
            if row["uuid"] not in entity_at:
                entity_at[row["uuid"]] = len(self.entity_ids)
                self.entity_ids.append(row["uuid"])
                self.entity_names.append(row["name"])
        first_new = len(self.episode_ids)
        episode_at = {u: i for i, u in enumerate(self.episode_ids)}
        fresh = [i for i, row in enumerate(delta.episodes) if row["uuid"] not in episode_at]
        for i in fresh:
            row = delta.episodes[i]
            episode_at[row["uuid"]] = len(self.episode_ids)
            self.episode_ids.append(row["uuid"])
            self.episode_texts.append(row["content"])
        if fresh:
            times = [delta.episodes[i]["occurred_at"] if delta.episodes[i]["occurred_at"] is not None else -1 for i in fresh]
            self.episode_times = np.concatenate([self.episode_times, np.array(times, dtype=np.int64)])
            vectors = np.vstack([delta.episode_vectors[i] for i in fresh]).astype(np.float32)
            self.episode_vectors = np.vstack([self.episode_vectors, vectors]) if len(self.episode_vectors) else vectors
        pairs = [(episode_at[m["episode"]], entity_at[m["entity"]]) for m in delta.mentions
                 if m["episode"] in episode_at and m["entity"] in entity_at and episode_at[m["episode"]] >= first_new]
        if pairs:
            self.mention_pairs = np.vstack([self.mention_pairs, np.array(pairs, dtype=np.int32)])
            roles = [m.get("role") == "speaker" for m in delta.mentions
                     if m["episode"] in episode_at and m["entity"] in entity_at and episode_at[m["episode"]] >= first_new]
            self.mention_speaker = np.concatenate([self.mention_speaker, np.array(roles, dtype=bool)])
        nexts = [(episode_at[x["from"]], episode_at[x["to"]]) for x in getattr(delta, "nexts", [])
                 if x["from"] in episode_at and x["to"] in episode_at]
        if nexts:
            self.next_pairs = np.vstack([self.next_pairs, np.array(nexts, dtype=np.int32)])
        fact_at = {u: i for i, u in enumerate(self.fact_ids)}
        new_facts, new_vectors = [], []
        for row, vector in zip(delta.facts, delta.fact_vectors):
            if row["uuid"] in fact_at:
                known = self.fact_episodes[fact_at[row["uuid"]]]
                known += [e for e in row["episodes"] if e not in known]
            elif row["subject"] in entity_at and row["object"] in entity_at:
                fact_at[row["uuid"]] = len(self.fact_ids)
                self.fact_ids.append(row["uuid"])
                self.fact_texts.append(row["text"])
                self.fact_episodes.append(list(row["episodes"]))
                new_facts.append(row)
                new_vectors.append(vector)
        if new_facts:
            ends = np.array([(entity_at[f["subject"]], entity_at[f["object"]]) for f in new_facts], dtype=np.int32)
            valid = np.array([(f["valid_at"] if f["valid_at"] is not None else -FAR_FUTURE,
                               f["invalid_at"] if f["invalid_at"] is not None else FAR_FUTURE) for f in new_facts],
                             dtype=np.int64)
            self.fact_ends = np.vstack([self.fact_ends, ends])
            self.fact_valid = np.vstack([self.fact_valid, valid])
            vectors = np.vstack(new_vectors).astype(np.float32)
            self.fact_vectors = np.vstack([self.fact_vectors, vectors]) if len(self.fact_vectors) else vectors
        synonyms = [(entity_at[s["a"]], entity_at[s["b"]], s["score"]) for s in delta.synonyms
                    if s["a"] in entity_at and s["b"] in entity_at]
        if synonyms:
            self.synonym_pairs = np.vstack([self.synonym_pairs, np.array([s[:2] for s in synonyms], dtype=np.int32)])
            self.synonym_scores = np.concatenate([self.synonym_scores, np.array([s[2] for s in synonyms], np.float32)])
        self.revision = revision
        self._cache.clear()

    # -- persistence -----------------------------------------------------------
    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v for k, v in self.__dict__.items() if k != "_cache"}
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as handle:
            pickle.dump((CACHE_VERSION, state), handle, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)

    @classmethod
    def load_cached(cls, path: Path, revision: int) -> "Projection | None":
        try:
            with open(path, "rb") as handle:
                version, state = pickle.load(handle)
        except (OSError, pickle.UnpicklingError, EOFError, ValueError):
            return None
        if version != CACHE_VERSION or state.get("revision") != revision:
            return None
        return cls(**state)


def _vectors(rows: list[dict], dim: int | None) -> np.ndarray:
    vectors = [r.get("embedding") for r in rows]
    if dim is None:
        dim = next((len(v) for v in vectors if v is not None), 0)
    out = np.zeros((len(rows), dim), dtype=np.float32)
    for i, vector in enumerate(vectors):
        if vector is not None and len(vector) == dim:
            out[i] = vector
    return out


def load_projection(graph: Graph, cache_dir: Path | None = None) -> Projection:
    """The current projection of ``graph``, from the cache when its revision matches."""
    revision = graph.revision()
    cache = cache_dir / f"projection-{graph.group_id}.pkl" if cache_dir is not None else None
    if cache is not None and revision > 0:
        cached = Projection.load_cached(cache, revision)
        if cached is not None:
            return cached
    entities = list(graph.pages("projection_entities"))
    episodes = list(graph.pages("projection_episodes"))
    mentions = list(graph.pages("projection_mentions"))
    facts = list(graph.pages("projection_facts"))
    synonyms = list(graph.pages("projection_synonyms"))
    nexts = list(graph.pages("projection_next"))
    entity_at = {row["uuid"]: i for i, row in enumerate(entities)}
    episode_at = {row["uuid"]: i for i, row in enumerate(episodes)}
    episode_vectors = _vectors(episodes, None)
    dim = episode_vectors.shape[1] if len(episodes) else None
    mentions = [m for m in mentions if m["episode"] in episode_at and m["entity"] in entity_at]
    mention_pairs = np.array([(episode_at[m["episode"]], entity_at[m["entity"]]) for m in mentions],
                             dtype=np.int32).reshape(-1, 2)
    facts = [f for f in facts if f["subject"] in entity_at and f["object"] in entity_at]
    # a fact asserted only by passages of sources still being written is not
    # visible yet (projection_episodes holds complete sources only)
    facts = [{**f, "episodes": [e for e in f["episodes"] if e in episode_at]} for f in facts
             if not f["episodes"] or any(e in episode_at for e in f["episodes"])]
    synonyms = [s for s in synonyms if s["a"] in entity_at and s["b"] in entity_at]
    projection = Projection(
        entity_ids=[row["uuid"] for row in entities],
        entity_names=[row["name"] or "" for row in entities],
        episode_ids=[row["uuid"] for row in episodes],
        episode_texts=[row["content"] or "" for row in episodes],
        episode_times=np.array([row["occurred_at"] if row["occurred_at"] is not None else -1 for row in episodes], dtype=np.int64),
        episode_vectors=episode_vectors,
        mention_pairs=mention_pairs,
        fact_ids=[f["uuid"] for f in facts],
        fact_texts=[f["text"] or "" for f in facts],
        fact_ends=np.array([(entity_at[f["subject"]], entity_at[f["object"]]) for f in facts], dtype=np.int32).reshape(-1, 2),
        fact_valid=np.array([(f["valid_at"] if f["valid_at"] is not None else -FAR_FUTURE,
                              f["invalid_at"] if f["invalid_at"] is not None else FAR_FUTURE) for f in facts],
                            dtype=np.int64).reshape(-1, 2),
        fact_episodes=[list(f["episodes"] or []) for f in facts],
        fact_vectors=_vectors(facts, dim),
        synonym_pairs=np.array([(entity_at[s["a"]], entity_at[s["b"]]) for s in synonyms], dtype=np.int32).reshape(-1, 2),
        synonym_scores=np.array([s["score"] for s in synonyms], dtype=np.float32),
        revision=revision,
        next_pairs=np.array([(episode_at[x["a"]], episode_at[x["b"]]) for x in nexts
                             if x["a"] in episode_at and x["b"] in episode_at], dtype=np.int32).reshape(-1, 2),
        mention_speaker=np.array([m.get("role") == "speaker" for m in mentions], dtype=bool),
    )
    if cache is not None and revision > 0:
        projection.save(cache)
    return projection
