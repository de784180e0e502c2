"""The PPR power iteration against igraph's reference implementation."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from graphmem.retrieve.ppr import personalized_pagerank, transition_matrix


def _random_graph(n=200, m=800, seed=0):
    import igraph as ig

    graph = ig.Graph.Erdos_Renyi(n=n, m=m)
    graph.es["weight"] = np.random.default_rng(seed).uniform(0.1, 2.0, graph.ecount()).tolist()
    adjacency = sp.csr_matrix(graph.get_adjacency_sparse(attribute="weight"), dtype=np.float32)
    return graph, adjacency


def test_matches_igraph_personalized_pagerank():
    graph, adjacency = _random_graph()
    reset = np.zeros(graph.vcount())
    reset[[3, 17, 42]] = [1.0, 2.0, 0.5]
    ours = personalized_pagerank(transition_matrix(adjacency), reset, damping=0.5, iterations=200, tolerance=1e-10)
    reference = np.array(graph.personalized_pagerank(damping=0.5, reset=reset.tolist(), weights="weight"))
    assert np.allclose(ours, reference, atol=1e-6)
    assert abs(ours.sum() - 1) < 1e-5


def test_batch_equals_one_at_a_time_and_zero_columns_stay_zero():
    graph, adjacency = _random_graph(seed=1)
    T = transition_matrix(adjacency)
    rng = np.random.default_rng(2)
    resets = np.zeros((graph.vcount(), 3), dtype=np.float32)
    resets[rng.integers(0, graph.vcount(), 5), 0] = 1
    resets[rng.integers(0, graph.vcount(), 5), 1] = 1
    batch = personalized_pagerank(T, resets, 0.5, 100, 1e-9)
    for column in range(2):
        single = personalized_pagerank(T, resets[:, column], 0.5, 100, 1e-9)
        assert np.allclose(batch[:, column], single, atol=1e-6)
    assert not batch[:, 2].any()


def test_isolated_seed_keeps_its_mass():
    adjacency = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=np.float32))
    scores = personalized_pagerank(transition_matrix(adjacency), np.array([0, 0, 1.0]), 0.5)
    assert np.allclose(scores, [0, 0, 1])


def test_row_blocks_on_threads_give_the_same_scores():
    from graphmem.retrieve.ppr import RowBlocks

    graph, adjacency = _random_graph(n=301, m=1500, seed=3)
    transition = transition_matrix(adjacency)
    blocks = RowBlocks(transition, 3)
    assert blocks.shape == transition.shape and len(blocks.blocks) == 3
    reset = np.zeros((graph.vcount(), 2), dtype=np.float32)
    reset[[5, 80], 0] = 1.0
    reset[[200, 300], 1] = [0.3, 0.7]
    expected = personalized_pagerank(transition, reset, damping=0.5, iterations=100, tolerance=1e-9)
    assert np.allclose(
        personalized_pagerank(blocks, reset, damping=0.5, iterations=100, tolerance=1e-9), expected, atol=1e-7
    )
    single = personalized_pagerank(blocks, reset[:, 1], damping=0.5, iterations=100, tolerance=1e-9)
    assert single.shape == (graph.vcount(),) and np.allclose(single, expected[:, 1], atol=1e-7)
