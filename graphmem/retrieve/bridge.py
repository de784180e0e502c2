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

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from graphmem.retrieve.projection import Projection
from graphmem.retrieve.seeds import top_indices


class BridgeSettings(NamedTuple):
    anchors: int  # the top fused passages whose entities lead to the next hop
    weight: float  # reciprocal-rank bonus of bridge passages, relative to the fusion's 1
    temperature: float  # softmax temperature of the query cosine in the bridge score
    rrf_k: int  # reciprocal-rank constant
    hub: int  # entities mentioned by more passages are left out of the flat path's links


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


def _anchors(
    projection: Projection, scores: np.ndarray, query: str, named: list[int], anchors: int, weight: float
) -> tuple[np.ndarray, np.ndarray, set[int]] | None:
    """What both bridge steps start from: which passages are rankable, the ``anchors`` best of
    them, and the entities the query names (their links do not count); None when the step is
    off (no anchors, no weight) or nothing is rankable."""
    if anchors <= 0 or weight <= 0 or not len(scores):
        return None
    finite = np.isfinite(scores)
    n = min(anchors, int(finite.sum()))
    if n <= 0:
        return None
    top = top_indices(np.where(finite, scores, -np.inf), n)
    candidates = np.unique(projection.episode_entities()[top].indices)
    return finite, top, query_named_entities(projection, query, named, candidates)


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
    chosen = _anchors(projection, scores, query, named, anchors, weight)
    if chosen is None:
        return scores
    finite, top, excluded = chosen
    bridge = bridge_scores(projection, top, np.where(finite, dense, -np.inf), excluded, temperature)
    bonus = np.zeros(len(scores), dtype=np.float64)
    linked = np.flatnonzero(bridge > 0)
    order = linked[np.argsort(-bridge[linked], kind="stable")]
    bonus[order] = weight / (rrf_k + np.arange(1, len(order) + 1))
    bonus[top] = weight / (rrf_k + 1)
    return np.where(finite, scores + bonus, scores)


def linked_passages(
    projection: Projection,
    entity_passages: sp.csr_matrix,
    anchors: np.ndarray,
    excluded: set[int],
    hub: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(passages, link) of :func:`bridge_scores` computed from the anchors' entities outwards:
    only the passages that share an entity with an anchor are touched, so the cost follows the
    anchors' neighbourhood, not the store. Entities mentioned by more than ``hub`` passages
    are left out (their link weight, 1 / count, is below 1 / ``hub``): a hub would touch a
    large share of the store for a negligible link. ``entity_passages`` is the transposed
    MENTIONS incidence (entity rows). Passages come sorted, anchors left out."""
    incidence = projection.episode_entities()
    counts = projection.entity_passage_counts()
    weights: dict[int, float] = {}
    for anchor in anchors.tolist():
        for entity in incidence[anchor].indices.tolist():
            weights[entity] = weights.get(entity, 0.0) + 1.0 / max(float(counts[entity]), 1.0)
    entities = np.array([e for e in weights if e not in excluded and counts[e] <= hub], dtype=np.int64)
    if not len(entities):
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    indptr, indices, data = entity_passages.indptr, entity_passages.indices, entity_passages.data
    starts, ends = indptr[entities], indptr[entities + 1]
    spans = [np.arange(s, e) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
    positions = np.concatenate(spans) if spans else np.zeros(0, np.int64)
    per_entity = np.array([weights[int(e)] for e in entities], dtype=np.float64)
    values = np.repeat(per_entity, ends - starts) * data[positions]
    passages, inverse = np.unique(indices[positions], return_inverse=True)
    link = np.bincount(inverse, weights=values, minlength=len(passages))
    keep = ~np.isin(passages, anchors)
    return passages[keep].astype(np.int64), link[keep]


def apply_bridge_local(
    projection: Projection,
    entity_passages: sp.csr_matrix,
    scores: np.ndarray,
    dense: np.ndarray,
    dense_of: Callable[[np.ndarray], np.ndarray],
    query: str,
    named: list[int],
    settings: BridgeSettings,
) -> np.ndarray:
    """:func:`apply_bridge` for the flat query path: the linked passages come from
    :func:`linked_passages` (hubs left out) and only they get exact dense scores
    (``dense_of(rows)``: cosines of those passages with the query); ``dense`` holds the
    candidates' scores and their floor elsewhere. Equal to :func:`apply_bridge` over exact
    dense scores when no anchor entity is a hub."""
    anchors, weight, temperature, rrf_k, hub = settings
    chosen = _anchors(projection, scores, query, named, anchors, weight)
    if chosen is None:
        return scores
    finite, top, excluded = chosen
    passages, link = linked_passages(projection, entity_passages, top, excluded, hub)
    usable = finite[passages]
    passages, link = passages[usable], link[usable]
    out = scores.copy()
    out[top] += weight / (rrf_k + 1)
    if not len(passages):
        return out
    close = dense_of(passages).astype(np.float64)
    visible = np.where(finite, dense, -np.inf)
    best = max(float(visible.max()), float(close.max()))
    bridge = link * np.exp((close - best) / temperature)
    linked = np.flatnonzero(bridge > 0)
    order = linked[np.argsort(-bridge[linked], kind="stable")]
    out[passages[order]] += weight / (rrf_k + np.arange(1, len(order) + 1))
    return out
