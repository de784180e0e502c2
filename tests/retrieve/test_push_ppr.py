"""Forward-push PPR: the same scores as the power iteration, with work bounded by the seeds' neighbourhood."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from graphmem.retrieve.ppr import personalized_pagerank, push_operator, push_pagerank, transition_matrix


def _symmetric(rows, cols, weights, n) -> sp.csr_matrix:
    upper = sp.coo_matrix((weights, (rows, cols)), shape=(n, n))
    return sp.csr_matrix(upper + upper.T, dtype=np.float32)


def _communities(n_groups: int, size: int, seed: int = 0) -> sp.csr_matrix:
    """Dense-ish communities joined by a few bridges (like entities around topics)."""
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    for g in range(n_groups):
        base = g * size
        a = rng.integers(0, size, 4 * size) + base
        b = rng.integers(0, size, 4 * size) + base
        rows.append(a)
        cols.append(b)
    a = rng.integers(0, n_groups * size, n_groups)
    b = rng.integers(0, n_groups * size, n_groups)
    rows.append(a)
    cols.append(b)
    r, c = np.concatenate(rows), np.concatenate(cols)
    keep = r != c
    return _symmetric(r[keep], c[keep], rng.uniform(0.5, 2.0, keep.sum()), n_groups * size)


def _top(scores: np.ndarray, k: int) -> set[int]:
    return set(np.argsort(-scores, kind="stable")[:k].tolist())


def test_push_matches_the_power_iteration_on_a_synthetic_graph():
    adjacency = _communities(20, 150)
    T = transition_matrix(adjacency)
    operator = push_operator(T)
    rng = np.random.default_rng(1)
    resets = np.zeros((T.shape[0], 4))
    for column in range(4):
        resets[rng.integers(0, T.shape[0], 6), column] = rng.uniform(0.2, 2.0, 6)
    exact = personalized_pagerank(T, resets, 0.5, 300, 1e-12)
    pushed = push_pagerank(operator, resets, 0.5, 1e-7)
    assert pushed.shape == exact.shape
    assert np.abs(pushed - exact).max() < 1e-5
    for column in range(4):
        assert _top(pushed[:, column], 20) == _top(exact[:, column], 20)
    # one column at a time gives the same as the batch
    assert np.allclose(push_pagerank(operator, resets[:, 2], 0.5, 1e-7), pushed[:, 2])


def test_dangling_and_isolated_seeds_and_empty_columns_behave_as_in_the_power_iteration():
    adjacency = sp.csr_matrix(np.array([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]], np.float32))
    T = transition_matrix(adjacency)
    resets = np.array([[1.0, 0, 0], [0, 0, 0], [0, 0, 0], [1.0, 1.0, 0]])
    exact = personalized_pagerank(T, resets, 0.5, 500, 1e-12)
    pushed = push_pagerank(push_operator(T), resets, 0.5, 1e-9)
    assert np.allclose(pushed, exact, atol=1e-6)
    assert np.allclose(pushed[:, 1], [0, 0, 0, 1])  # an isolated seed keeps its mass
    assert not pushed[:, 2].any()


def test_work_stays_in_the_seeds_component_of_a_big_graph():
    # one small component (10 nodes) inside a graph of 200,000 nodes
    big = _communities(400, 500, seed=2)
    n = big.shape[0] + 10
    small_rows = np.arange(n - 10, n - 1)
    adjacency = sp.csr_matrix(
        sp.block_diag([big, _symmetric(small_rows - (n - 10), small_rows - (n - 10) + 1, np.ones(9), 10)]),
        dtype=np.float32,
    )
    operator = push_operator(transition_matrix(adjacency))
    reset = np.zeros(n)
    reset[n - 5] = 1.0
    stats: dict = {}
    scores = push_pagerank(operator, reset, 0.5, 1e-8, stats)
    assert set(np.flatnonzero(scores).tolist()) <= set(range(n - 10, n))
    assert stats["touched"] <= 10 and stats["edges"] < 5_000
    assert abs(scores.sum() - 1) < 1e-6


def test_work_is_bounded_by_the_tolerance_not_the_graph():
    big = _communities(400, 500, seed=3)
    operator = push_operator(transition_matrix(big))
    reset = np.zeros(big.shape[0])
    reset[[10, 20]] = 1.0
    stats: dict = {}
    push_pagerank(operator, reset, 0.5, 1e-4, stats)
    # at most about 1 / (epsilon (1 - damping)) edge visits, whatever the size
    assert stats["edges"] <= 2 / (1e-4 * 0.5)
    assert stats["touched"] < 2_000


@pytest.mark.slow
def test_push_agrees_with_power_on_the_sample_memory(sample_memory, sample_questions):
    """The retriever on a real small graph: the same top 5 passages with push PPR as with
    the power iteration (and with ANN vector search as with exact search)."""
    from graphmem.config import RetrievalSettings
    from graphmem.retrieve.retriever import Retriever

    base = sample_memory.retriever
    questions = [q["question"] for q in sample_questions]
    vectors = sample_memory.embedder.embed(questions)
    flat = Retriever(
        base.projection, base.embedder, RetrievalSettings(vector_index="ann", ppr="push", ann_candidates=30)
    )
    exact = Retriever(base.projection, base.embedder, RetrievalSettings(vector_index="exact", ppr="power"))
    assert flat.uses_push() and flat.vector_index("episodes") is not None
    assert not exact.uses_push() and exact.vector_index("episodes") is None
    got = flat.search_many(questions, 5, query_vectors=vectors)
    want = exact.search_many(questions, 5, query_vectors=vectors)
    overlap = np.mean(
        [len({h.uuid for h in a} & {h.uuid for h in b}) / max(1, len(b)) for a, b in zip(got, want, strict=True)]
    )
    assert overlap >= 0.9
    # the PPR scores themselves: push from the same reset, compared on the whole graph
    projection = base.projection
    T = projection.transition()
    reset = np.zeros(projection.n_nodes)
    reset[: min(5, projection.n_entities)] = 1.0
    power = personalized_pagerank(T, reset, 0.5, 300, 1e-12)
    pushed = push_pagerank(push_operator(T), reset, 0.5, 1e-7)
    assert np.abs(power - pushed).max() < 1e-5
    assert _top(pushed, 10) == _top(power, 10)
