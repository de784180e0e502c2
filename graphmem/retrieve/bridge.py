"""Bridge step: move up the passages that continue the top passages' chain
(off when ``bridge_anchors`` is 0).

A multi-hop question's second passage is about a *bridge* entity that the
first passage names and the question does not ("the company Novair is part
of" -> the Novair passage names the Rank Organisation -> the Rank
Organisation passage). PPR reaches it, but spreads the top passage's mass
evenly over all its entities and their passages, so the one that also
matches the rest of the question ("... dissolve?") often lands at rank
10-30. This step asks for both at once, as an iterative retriever would:

* anchors: the ``anchors`` best passages of the fused ranking;
* link(p): sum over entities ``p`` shares with an anchor, each counted as
  1 / (passages mentioning it), leaving out the entities the query names
  itself (those link passages that already match the question, e.g. the two
  sides of a comparison);
* bridge(p) = link(p) * exp((dense(p) - best dense) / ``temperature``):
  linked *and* close to the query;
* passages with bridge > 0 gain ``weight / (rrf_k + rank)`` by their bridge
  rank, the anchors gain ``weight / (rrf_k + 1)`` so they keep their places.
"""

from __future__ import annotations

import numpy as np

from graphmem.retrieve.projection import Projection
from graphmem.retrieve.seeds import top_indices


def bridge_scores(
    projection: Projection, anchors: np.ndarray, dense: np.ndarray, excluded: set[int], temperature: float
) -> np.ndarray:
    """Bridge score of every passage for one query: linked to an ``anchors`` passage
    through entities outside ``excluded`` (the ones the query names), weighted by
    closeness to the query (``dense``: cosine, -inf where not rankable)."""
    incidence = projection.episode_entities()
    counts = projection.entity_passage_counts()
    link_weight = np.zeros(projection.n_entities, dtype=np.float32)  # the incidence's dtype: no upcast copy
    for anchor in anchors:
        entities = incidence[anchor].indices
        link_weight[entities] += 1.0 / np.maximum(counts[entities], 1.0)
    if excluded:
        link_weight[list(excluded)] = 0.0
    link = np.asarray(incidence @ link_weight, dtype=np.float64).ravel()
    link[anchors] = 0.0  # an anchor is not its own next hop
    usable = np.isfinite(dense)
    if not usable.any():
        return np.zeros(len(dense), dtype=np.float64)
    relevance = np.zeros(len(dense), dtype=np.float64)
    relevance[usable] = np.exp((dense[usable] - float(dense[usable].max())) / temperature)
    return link * relevance


def query_named_entities(projection: Projection, query: str, named: list[int], candidates: np.ndarray) -> set[int]:
    """Entities the query names: its NER matches plus any ``candidates`` whose name occurs in its text."""
    text = query.lower()
    names = projection.entity_names
    found = set(named)
    for entity in candidates.tolist():
        name = names[entity].lower()
        if len(name) > 1 and name in text:
            found.add(int(entity))
    return found


def apply_bridge(
    projection: Projection,
    scores: np.ndarray,
    dense: np.ndarray,
    query: str,
    named: list[int],
    anchors: int,
    weight: float,
    temperature: float,
    rrf_k: int,
) -> np.ndarray:
    """``scores`` plus the bridge bonus (a new array; unchanged when ``anchors`` or ``weight`` is 0)."""
    if anchors <= 0 or weight <= 0 or not len(scores):
        return scores
    finite = np.isfinite(scores)
    n = min(anchors, int(finite.sum()))
    if n <= 0:
        return scores
    top = top_indices(np.where(finite, scores, -np.inf), n)
    candidates = np.unique(projection.episode_entities()[top].indices)
    excluded = query_named_entities(projection, query, named, candidates)
    bridge = bridge_scores(projection, top, np.where(finite, dense, -np.inf), excluded, temperature)
    bonus = np.zeros(len(scores), dtype=np.float64)
    linked = np.flatnonzero(bridge > 0)
    order = linked[np.argsort(-bridge[linked], kind="stable")]
    bonus[order] = weight / (rrf_k + np.arange(1, len(order) + 1))
    bonus[top] = weight / (rrf_k + 1)
    return np.where(finite, scores + bonus, scores)
