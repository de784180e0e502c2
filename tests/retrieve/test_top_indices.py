"""top_indices on arrays large enough for its threshold path, against a full sort."""

import numpy as np
import pytest

from graphmem.retrieve.seeds import THRESHOLD_TOP_MIN, top_indices


def _reference(scores: np.ndarray, k: int) -> np.ndarray:
    """The k best by (score descending, index ascending): a full stable sort."""
    return np.argsort(-scores, kind="stable")[:k]


def _arrays(rng: np.random.Generator) -> list[np.ndarray]:
    n = THRESHOLD_TOP_MIN + 1234
    floor = np.full(n, 0.25, dtype=np.float32)  # a floor almost everywhere, a few above it
    floor[rng.choice(n, 150, replace=False)] = rng.random(150, dtype=np.float32) + 0.3
    sparse = np.zeros(n, dtype=np.float64)  # a walk's mass: most nodes unreached
    sparse[rng.choice(n, 20, replace=False)] = rng.random(20)
    ties = rng.integers(0, 5, size=n).astype(np.float32)  # few distinct values: ties at the cut
    spread = rng.standard_normal(n).astype(np.float32)
    with_inf = spread.copy()
    with_inf[rng.random(n) < 0.9] = -np.inf
    return [floor, sparse, ties, spread, with_inf]


@pytest.mark.parametrize("k", [1, 5, 30, 200, 1000])
def test_threshold_path_returns_the_true_top_k(k: int) -> None:
    rng = np.random.default_rng(k)
    for scores in _arrays(rng):
        got = top_indices(scores, k)
        want = _reference(scores, k)
        assert len(got) == k
        assert len(set(got.tolist())) == k
        # the same scores, best first; where scores tie at the cut the lowest indices are taken
        np.testing.assert_array_equal(scores[got], scores[want])
        assert set(got.tolist()) == set(want.tolist())


def test_fewer_scores_above_the_floor_than_k() -> None:
    scores = np.zeros(THRESHOLD_TOP_MIN * 2, dtype=np.float32)
    scores[[7, 70_000, 99_999]] = [0.5, 0.9, 0.1]
    got = top_indices(scores, 10)
    assert got[:3].tolist() == [70_000, 7, 99_999]
    assert got[3:].tolist() == list(range(7)) and len(got) == 10
