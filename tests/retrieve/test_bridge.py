"""The bridge step on a hand-built projection: which passages count as the next
hop of the anchors, and how the bonus reorders a ranking."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from graphmem.config import RetrievalSettings
from graphmem.retrieve.bm25 import BM25Index
from graphmem.retrieve.bridge import (
    BridgeSettings,
    apply_bridge,
    apply_bridge_local,
    bridge_scores,
    query_named_entities,
)
from graphmem.retrieve.projection import Projection
from graphmem.retrieve.retriever import Retriever

QUERY = "What year did the company Novair International Airways is part of dissolve?"
# entities: 0 Novair International Airways (named in the query), 1 Rank Organisation (the bridge),
# 2 airline (a hub: in every passage but the last), 3 Odeon (mentioned once, off the chain)
NAMES = ["Novair International Airways", "Rank Organisation", "airline", "Odeon"]
# passages: 0 the anchor (Novair, part of Rank), 1 Rank dissolved (the next hop, close to the query),
# 2 another Novair passage (linked only through the query's own entity), 3 Rank's cinemas (linked,
# far from the query), 4 Odeon (not linked to the anchor)
MENTIONS = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 0), (3, 1), (3, 2), (3, 3), (4, 3)]
DENSE = np.array([0.9, 0.6, 0.7, 0.3, 0.65], dtype=np.float32)
RRF = 1 / (60 + np.arange(1, 6))  # reciprocal-rank scores of ranks 1..5, as the fusion gives


def _projection() -> Projection:
    vectors = np.zeros((5, 2), np.float32)
    vectors[:, 0] = DENSE
    vectors[:, 1] = np.sqrt(1 - DENSE**2)
    return Projection(
        entity_ids=[f"e{i}" for i in range(4)],
        entity_names=list(NAMES),
        episode_ids=[f"p{i}" for i in range(5)],
        bm25=BM25Index.from_texts(
            [
                "Novair International Airways was formed by the Rank Organisation.",
                "In 1995 the Rank Organisation was dissolved into the Rank Group.",
                "Novair International Airways flew charter flights from Gatwick.",
                "The Rank Organisation owned the Odeon cinemas.",
                "Odeon cinemas opened in 1930.",
            ]
        ),
        episode_times=np.full(5, -1, dtype=np.int64),
        episode_vectors=vectors,
        mention_pairs=np.array(MENTIONS, dtype=np.int32),
        fact_ids=[],
        fact_texts=[],
        fact_ends=np.zeros((0, 2), np.int32),
        fact_valid=np.zeros((0, 2), np.int64),
        fact_episodes=[],
        fact_vectors=np.zeros((0, 2), np.float32),
        synonym_pairs=np.zeros((0, 2), np.int32),
        synonym_scores=np.zeros(0, np.float32),
    )


def test_links_go_through_entities_the_query_does_not_name():
    p = _projection()
    bridge = bridge_scores(p, np.array([0]), DENSE.copy(), {0}, temperature=0.1)
    assert bridge[0] == 0  # the anchor itself
    assert bridge[2] == 0 and bridge[4] == 0  # 2 shares only the query's entity, 4 nothing
    assert bridge[1] > bridge[3] > 0  # both linked; the one closer to the query wins
    without_exclusion = bridge_scores(p, np.array([0]), DENSE.copy(), set(), temperature=0.1)
    assert without_exclusion[2] > bridge[2]  # Novair links passage 2 only when the query's entity counts


def test_entities_named_in_the_query_text_are_excluded_even_without_ner():
    p = _projection()
    found = query_named_entities(p, QUERY, [], np.array([0, 1, 2]))
    assert found == {0}
    assert query_named_entities(p, "Who founded the Rank Organisation?", [3], np.array([0, 1])) == {1, 3}


def test_bonus_lifts_the_next_hop_and_keeps_the_anchors_in_place():
    p = _projection()
    fused = RRF[[0, 3, 2, 4, 1]]  # ranks: anchor 0, then 4, 2, the next hop 1, and 3
    out = apply_bridge(p, fused, DENSE, QUERY, [], anchors=1, weight=0.4, temperature=0.1, rrf_k=60)
    order = np.argsort(-out).tolist()
    assert order[0] == 0 and order[1] == 1, order
    assert out[4] == fused[4]  # unlinked passages keep their score
    assert apply_bridge(p, fused, DENSE, QUERY, [], anchors=0, weight=0.4, temperature=0.1, rrf_k=60) is fused
    assert apply_bridge(p, fused, DENSE, QUERY, [], anchors=1, weight=0.0, temperature=0.1, rrf_k=60) is fused


def test_unrankable_passages_stay_out_and_are_never_anchors():
    p = _projection()
    fused = np.array([-np.inf, *RRF[[3, 2, 4, 1]]])  # the best passage is hidden (as_of)
    out = apply_bridge(
        p,
        fused,
        np.where(np.isfinite(fused), DENSE, -np.inf),
        QUERY,
        [],
        anchors=1,
        weight=0.4,
        temperature=0.1,
        rrf_k=60,
    )
    assert out[0] == -np.inf
    # the anchor is passage 4 (Odeon): its entity Odeon leads to passage 3, not to the Rank passage 1
    assert out[3] > fused[3] and out[1] == fused[1]


def test_retriever_applies_the_bridge_setting():
    """Graph search with the step on = the fused ranking with the step off, plus the bonus
    computed from the query's dense scores."""
    p = _projection()
    vector = np.array([[1.0, 0.0]], np.float32)
    scores = {}
    for anchors in (0, 1):
        settings = RetrievalSettings(bridge_anchors=anchors, bridge_weight=0.4, fact_top_k=0, bm25_weight=0.0)
        retriever = Retriever(
            p,
            embedder=None,
            settings=settings,  # type: ignore[arg-type]
            query_entities=lambda q: ["Novair International Airways"],
        )
        hits = retriever.search_many([QUERY], 5, query_vectors=vector)[0]
        scores[anchors] = {h.uuid: h.score for h in hits}
    fused = np.array([scores[0][f"p{i}"] for i in range(5)])
    expected = apply_bridge(p, fused, DENSE, QUERY, [0], anchors=1, weight=0.4, temperature=0.1, rrf_k=60)
    assert np.allclose([scores[1][f"p{i}"] for i in range(5)], expected, rtol=1e-5)
    assert scores[1]["p1"] > scores[0]["p1"] and scores[1]["p2"] == scores[0]["p2"]


def _random_projection(seed: int, passages: int = 300, entities: int = 60) -> tuple[Projection, np.ndarray]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((passages, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    # Zipf-like mentions: a few entities in many passages, most in a handful
    pairs = {(int(p), int(min(entities - 1, rng.zipf(1.6) - 1))) for p in range(passages) for _ in range(3)}
    projection = Projection(
        entity_ids=[f"e{i}" for i in range(entities)],
        entity_names=[f"name{i}" for i in range(entities)],
        episode_ids=[f"p{i}" for i in range(passages)],
        bm25=None,
        episode_times=np.full(passages, -1, dtype=np.int64),
        episode_vectors=vectors,
        mention_pairs=np.array(sorted(pairs), dtype=np.int32),
        fact_ids=[],
        fact_texts=[],
        fact_ends=np.zeros((0, 2), np.int32),
        fact_valid=np.zeros((0, 2), np.int64),
        fact_episodes=[],
        fact_vectors=np.zeros((0, 8), np.float32),
        synonym_pairs=np.zeros((0, 2), np.int32),
        synonym_scores=np.zeros(0, np.float32),
    )
    query = rng.standard_normal(8).astype(np.float32)
    return projection, query / np.linalg.norm(query)


def test_the_local_bridge_equals_the_global_one_without_hubs():
    """The flat path's bridge (from the anchors' entities outwards) gives the same scores as the
    one over every passage when no entity is left out as a hub; with a small hub size the
    hubs' passages lose only their link through the hub."""
    for seed in range(5):
        p, query = _random_projection(seed)
        dense = p.episode_vectors @ query
        fused = np.random.default_rng(seed + 100).random(len(dense))
        fused[seed] = -np.inf  # a passage hidden by as_of
        by_entity = sp.csr_matrix(p.episode_entities().T)
        counts = p.entity_passage_counts()

        def dense_of(rows: np.ndarray, query: np.ndarray = query, p: Projection = p) -> np.ndarray:
            return p.episode_vectors[rows] @ query

        named = [0]
        expected = apply_bridge(p, fused, np.where(np.isfinite(fused), dense, -np.inf), "q", named, 4, 0.4, 0.1, 60)
        no_hubs = BridgeSettings(4, 0.4, 0.1, 60, hub=len(dense))
        local = apply_bridge_local(p, by_entity, fused, dense, dense_of, "q", named, no_hubs)
        assert np.array_equal(np.isfinite(local), np.isfinite(expected))
        assert np.allclose(local[np.isfinite(local)], expected[np.isfinite(expected)], rtol=1e-9, atol=1e-12)
        assert (local != fused)[np.isfinite(fused)].sum() > 4  # the bonus reached linked passages

        hub = int(np.sort(counts)[-3])  # the two most mentioned entities become hubs
        capped = apply_bridge_local(p, by_entity, fused, dense, dense_of, "q", named, no_hubs._replace(hub=hub - 1))
        hub_only = np.ones(len(dense), bool)  # passages whose every entity is a hub or the query's
        for passage in range(len(dense)):
            entities = p.episode_entities()[passage].indices
            hub_only[passage] = all(counts[e] >= hub or e in named for e in entities)
        gained = (capped != fused) & np.isfinite(fused)
        anchors = np.argsort(-np.where(np.isfinite(fused), fused, -np.inf))[:4]
        gained[anchors] = False
        assert not (gained & hub_only).any()
