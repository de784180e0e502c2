"""Seeds: where the random walk restarts for a query (the reset vector of PPR).

Three kinds of seed, as in HippoRAG 2, with an LLM-free recognition step:

* fact seeds: facts whose embedding is close to the query (cosine above
  ``fact_threshold``, top ``fact_top_k``) give weight to their subject and
  object entities (found by an exact scan, or through the ANN index over the
  fact vectors on large stores: :func:`best_facts`);
* query-entity seeds: entities named in the query itself;
* passage seeds: the best hybrid (dense + BM25) passages, weighted by a
  softmax of their scores (``passage_temperature``) times
  ``passage_seed_weight``; the walk then spreads from them through their
  entities to passages that share no words with the query.

Entity weights are divided by how many passages mention the entity, so rare,
specific entities steer the walk and hubs do not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from graphmem.config import RetrievalSettings
from graphmem.retrieve.ann import VectorIndex
from graphmem.retrieve.projection import Projection


@dataclass
class Seeds:
    reset: np.ndarray  # (n_nodes,) float32
    entities: dict[int, float] = field(default_factory=dict)  # entity index -> weight before normalising
    facts: list[tuple[int, float]] = field(default_factory=list)  # (fact index, score)


#: from this many scores on, :func:`top_indices` narrows them down by a threshold first
THRESHOLD_TOP_MIN = 65_536
#: scores sampled (evenly spaced) to pick that threshold
THRESHOLD_SAMPLE = 4096


def top_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores, best first (a partition, then a sort of the ``k``
    only: the full sort of every passage or fact is the cost). Equal scores keep the order the
    partition gave them; on large arrays, where several scores tie for the last place, the
    lowest indices are taken (:func:`_top_by_threshold`)."""
    n = len(scores)
    if k <= 0:
        return np.zeros(0, dtype=np.intp)
    if k >= n:
        top = np.arange(n)
    elif n >= THRESHOLD_TOP_MIN and k * 64 <= n:
        top = _top_by_threshold(scores, k)
    else:
        top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top], kind="stable")]


def _top_by_threshold(scores: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` highest of many scores (unordered), without partitioning all of them.

    ``t``, the k-th highest of an evenly spaced sample, is at most the k-th highest of all
    the scores (a subset's k-th highest cannot exceed the whole set's), so the scores above
    ``t`` and the ties at ``t`` hold the top ``k``. Per query a million scores cost two
    comparisons and a partition of the few above ``t`` (a partition of every score took
    about 8 ms at a million). Most score arrays are a floor value almost everywhere
    (passages no candidate list or walk reached), so few scores pass ``t``.
    """
    sample = scores[:: max(1, len(scores) // THRESHOLD_SAMPLE)]
    t = np.partition(sample, len(sample) - k)[len(sample) - k]
    if np.isnan(t):  # NaN sorts above every number: no threshold to cut at, so partition all
        return np.argpartition(-scores, k - 1)[:k]
    above = np.flatnonzero(scores > t)
    if len(above) < k:  # the k-th highest is t itself: the lowest indices of the ties at t fill up
        return np.concatenate([above, np.flatnonzero(scores == t)[: k - len(above)]])
    values = scores[above]
    kth = np.partition(values, len(values) - k)[len(values) - k]
    better = above[values > kth]
    return np.concatenate([better, above[values == kth][: k - len(better)]])


def minmax(scores: np.ndarray) -> np.ndarray:
    if scores.size == 0:
        return scores
    low, high = float(scores.min()), float(scores.max())
    if high - low < 1e-9:
        return np.ones_like(scores) if high > 0 else np.zeros_like(scores)
    return (scores - low) / (high - low)


def best_facts(
    projection: Projection,
    query_vector: np.ndarray,
    k: int,
    fact_mask: np.ndarray | None = None,
    index: VectorIndex | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(fact indices, cosines) of the ``k`` facts closest to the query, best first, among
    those ``fact_mask`` allows. Exact over every fact vector, or, with ``index`` (the ANN
    index over them), over its candidates: ``4 k`` first, more while the mask hides so
    many that fewer than ``k`` remain. Cosines are recomputed from the fact vectors."""
    F = len(projection.fact_ids)
    if index is None:
        scores = projection.fact_vectors @ query_vector
        if fact_mask is not None:
            scores = np.where(fact_mask, scores, -np.inf)
        top = top_indices(scores, k)
        return top, scores[top]
    wanted = 4 * k
    while True:
        ids, _ = index.search(query_vector, min(wanted, F))
        if fact_mask is not None:
            ids = ids[fact_mask[ids]]
        if len(ids) >= k or wanted >= F:
            break
        wanted *= 4
    ids = np.sort(ids)
    scores = np.asarray(projection.fact_vectors[ids], dtype=np.float32) @ query_vector
    order = top_indices(scores, k)
    return ids[order], scores[order]


def build_seeds(
    projection: Projection,
    query_vector: np.ndarray,
    passage_scores: np.ndarray,
    query_entities: list[int],
    settings: RetrievalSettings,
    fact_mask: np.ndarray | None = None,
    fact_index: VectorIndex | None = None,
) -> Seeds:
    """The reset vector for one query.

    ``passage_scores`` are the hybrid scores of every passage (higher is better);
    ``query_entities`` are entity indices named in the query; ``fact_mask``
    hides facts not valid at the query's time; ``fact_index``, when given, finds
    the seed facts (:func:`best_facts`).
    """
    E = projection.n_entities
    reset = np.zeros(projection.n_nodes, dtype=np.float32)
    entity_weight: dict[int, float] = {}
    used_facts: list[tuple[int, float]] = []

    if settings.fact_top_k and len(projection.fact_ids):
        top, scores = best_facts(projection, query_vector, settings.fact_top_k, fact_mask, fact_index)
        best = float(scores[0]) if len(top) else 0.0
        for index, score in zip(top.tolist(), scores.tolist(), strict=True):
            if score < settings.fact_threshold:
                break
            used_facts.append((int(index), score))
            # a softmax over fact scores: the best-matching facts steer, near-misses barely
            weight = float(np.exp((score - best) / settings.fact_temperature))
            for entity in projection.fact_ends[index]:
                entity_weight[int(entity)] = max(entity_weight.get(int(entity), 0.0), weight)
    for entity in query_entities:
        entity_weight[entity] = max(entity_weight.get(entity, 0.0), settings.query_entity_weight)

    if entity_weight:
        counts = projection.entity_passage_counts()
        for entity, weight in entity_weight.items():
            reset[entity] = weight / max(1.0, float(counts[entity]))

    if len(passage_scores):
        # passage seeds on the same scale as entity seeds (as in HippoRAG 2): a
        # passage that matches the query outright still starts the walk, but with
        # a small weight so the graph, not the dense ranking, leads
        top = top_indices(passage_scores, settings.passage_top_k)
        if settings.passage_temperature is None:
            weights = minmax(passage_scores[top])
        else:
            # a softmax, as for facts: only passages close to the best one seed the walk
            # (min-max would hand a 30th-ranked passage a sizeable weight, which floods a
            # small corpus and blurs a large one)
            weights = np.exp((passage_scores[top] - passage_scores[top[0]]) / settings.passage_temperature)
        reset[E + top] = (settings.passage_seed_weight if entity_weight else 1.0) * weights
    return Seeds(reset=reset, entities=entity_weight, facts=used_facts)
