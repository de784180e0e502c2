"""The dialogue retrieval knobs on a hand-built projection: NEXT edges, speaker
edges, provenance seeds, the speaker prior and as_of episode masking."""

from __future__ import annotations

import numpy as np

from graphmem.retrieve.dialogue import apply_speaker_prior, named_speaker_turns
from graphmem.retrieve.projection import Projection
from graphmem.retrieve.provenance import add_fact_episode_seeds
from graphmem.retrieve.seeds import Seeds


# entities: 0 Ana (speaker), 1 Ben (speaker), 2 Berlin; turns: 0 Ana, 1 Ben, 2 Ana
def _projection() -> Projection:
    return Projection(
        entity_ids=["ana", "ben", "berlin"],
        entity_names=["Ana", "Ben", "Berlin"],
        episode_ids=["t0", "t1", "t2"],
        episode_times=np.array([100, 200, -1], dtype=np.int64),
        episode_vectors=np.eye(3, dtype=np.float32),
        mention_pairs=np.array([[0, 0], [1, 1], [2, 0], [2, 2]], dtype=np.int32),
        fact_ids=["f0", "f1"],
        fact_texts=["Ana move to Berlin", "Ben like Berlin"],
        fact_ends=np.array([[0, 2], [1, 2]], dtype=np.int32),
        fact_valid=np.array([[0, 2**62], [0, 2**62]], dtype=np.int64),
        fact_episodes=[["t2"], ["t1", "t0"]],
        fact_vectors=np.eye(2, 3, dtype=np.float32),
        synonym_pairs=np.zeros((0, 2), np.int32),
        synonym_scores=np.zeros(0, np.float32),
        next_pairs=np.array([[0, 1], [1, 2]], dtype=np.int32),
        mention_speaker=np.array([True, True, True, False]),
    )


def test_next_edges_join_the_graph_only_when_weighted():
    p = _projection()
    E = p.n_entities
    plain = p.adjacency().toarray()
    assert plain[E + 0, E + 1] == 0
    walked = p.adjacency(next_weight=2.0).toarray()
    assert walked[E + 0, E + 1] == walked[E + 1, E + 0] == 2.0 and walked[E + 1, E + 2] == 2.0
    assert walked[E + 0, E + 2] == 0


def test_speaker_weight_scales_only_speaker_mentions():
    a = _projection().adjacency(speaker_weight=0.25).toarray()
    E = 3
    assert a[E + 0, 0] == 0.25 and a[E + 2, 0] == 0.25 and a[E + 2, 2] == 1.0


def test_provenance_seeds_follow_fact_scores_and_split_over_episodes():
    p = _projection()
    seeds = Seeds(reset=np.zeros(p.n_nodes, np.float32), facts=[(0, 0.6), (1, 0.2)])
    add_fact_episode_seeds(p, seeds, weight=1.0)
    turns = seeds.reset[p.n_entities :]
    assert np.allclose(turns, [0.125, 0.125, 0.75])  # f0 -> t2 (0.75); f1 -> t1, t0 (0.25 / 2)
    untouched = Seeds(reset=np.zeros(p.n_nodes, np.float32), facts=[(0, 0.6)])
    add_fact_episode_seeds(p, untouched, weight=0.0)
    assert not untouched.reset.any()


def test_speaker_prior_needs_exactly_one_named_speaker():
    p = _projection()
    assert named_speaker_turns(p, [1, 2]).tolist() == [False, True, False]
    assert named_speaker_turns(p, [0, 1]) is None and named_speaker_turns(p, [2]) is None
    hybrid, ppr = apply_speaker_prior(np.zeros(3, np.float32), np.ones(3, np.float32), named_speaker_turns(p, [0]), 0.5)
    assert hybrid.tolist() == [0.5, 0.0, 0.5] and ppr.tolist() == [1.5, 1.0, 1.5]


def test_episodes_known_at_keeps_undated_ones():
    p = _projection()
    assert p.episodes_known_at(None) is None
    assert p.episodes_known_at(150).tolist() == [True, False, True]
    assert p.episodes_known_at(10_000) is None
