"""VectorIndex: recall of the HNSW path against exact search, save/load, adding rows in place."""

from __future__ import annotations

import json

import numpy as np
import pytest

from graphmem.retrieve.ann import VectorIndex, load_or_build


def clustered(n: int, dim: int = 384, topics: int = 40, seed: int = 0) -> np.ndarray:
    """Unit vectors shaped like sentence embeddings: all in one cone (MiniLM vectors of
    unrelated texts still have cosines around 0.1), in topics with subtopics, each row a
    subtopic plus noise (near neighbours at cosines around 0.6-0.8)."""
    rng = np.random.default_rng(seed)
    cone = rng.standard_normal(dim).astype(np.float32)
    topic = 0.35 * cone + rng.standard_normal((topics, dim)).astype(np.float32)
    sub = topic[np.repeat(np.arange(topics), 10)] + 0.8 * rng.standard_normal((10 * topics, dim)).astype(np.float32)
    rows = sub[rng.integers(0, len(sub), n)] + 0.9 * rng.standard_normal((n, dim)).astype(np.float32)
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def exact_top(matrix: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ matrix.T
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f.tolist()) & set(t.tolist())) / len(t) for f, t in zip(found, truth, strict=True)]))


@pytest.fixture(scope="module")
def pool() -> np.ndarray:
    return clustered(4300)


@pytest.fixture(scope="module")
def vectors(pool) -> np.ndarray:
    return pool[:4000]


@pytest.fixture(scope="module")
def queries(pool) -> np.ndarray:
    """Rows of the same distribution that are not in the index."""
    return pool[4000:]


def test_hnsw_recall_at_10_against_exact_search(vectors, queries):
    index = VectorIndex.build(vectors, exact_below=0)
    assert not index.exact and len(index) == len(vectors)
    ids, scores = index.search_many(queries, 10)
    assert recall_at(ids, exact_top(vectors, queries, 10)) >= 0.95
    # the scores are the stored vectors' inner products with the query, best first
    assert np.allclose(scores, np.take_along_axis(queries @ vectors.T, ids, 1), atol=1e-5)
    assert (np.diff(scores, axis=1) <= 1e-6).all()


def test_small_indexes_are_exact_and_switch_to_hnsw_at_the_threshold(vectors):
    index = VectorIndex(vectors.shape[1], exact_below=3000)
    index.add(vectors[:2500])
    assert index.exact
    query = vectors[7] + 0.1 * vectors[8]
    ids, scores = index.search(query, 5)
    assert ids.tolist() == exact_top(vectors[:2500], query[None], 5)[0].tolist()
    assert np.allclose(scores, vectors[ids] @ query, atol=1e-6)
    index.add(vectors[2500:])  # crosses 3000: every row goes into the HNSW graph
    assert not index.exact and len(index) == 4000
    assert index.search(vectors[3999], 1)[0].tolist() == [3999]
    assert index.search(vectors[12], 1)[0].tolist() == [12]


def test_add_in_place_finds_the_new_rows(vectors):
    index = VectorIndex.build(vectors[:3000], exact_below=0)
    index.add(vectors[3000:3500])
    index.extend_to(vectors)  # the matrix grew again: only rows 3500.. are added
    assert len(index) == 4000
    new = np.arange(3000, 4000, 37)
    found = index.search_many(vectors[new], 1)[0][:, 0]
    assert (found == new).mean() >= 0.95
    with pytest.raises(ValueError):
        index.extend_to(vectors[:10])


@pytest.mark.parametrize("exact_below,dtype", [(0, "f32"), (0, "f16"), (10**9, "f32")])
def test_save_load_round_trip(tmp_path, vectors, queries, exact_below, dtype):
    index = VectorIndex.build(vectors[:3000], exact_below=exact_below, dtype=dtype)
    path = tmp_path / "passages.ann"
    index.save(path)
    manifest = json.loads((tmp_path / "passages.ann.json").read_text())
    assert manifest["rows"] == 3000 and manifest["kind"] == ("faiss-hnsw" if exact_below == 0 else "exact")
    assert path.read_bytes()[:2] != b"\x80\x04"  # not a pickle
    loaded = VectorIndex.load(path)
    assert len(loaded) == 3000 and loaded.exact == index.exact
    for a, b in zip(index.search_many(queries, 10), loaded.search_many(queries, 10), strict=True):
        assert np.array_equal(a, b)
    # a mapped file is read-only: adding reads it into memory first, the file stays as saved
    loaded.add(vectors[3000:])
    assert len(loaded) == 4000 and loaded.search(vectors[3900], 1)[0].tolist() == [3900]
    assert len(VectorIndex.load(path)) == 3000


def test_load_or_build_extends_a_saved_index_and_rebuilds_a_foreign_one(tmp_path, vectors):
    path = tmp_path / "facts.ann"
    first = load_or_build(path, vectors[:2000], exact_below=0)
    assert len(first) == 2000
    grown = load_or_build(path, vectors[:2600], exact_below=0)  # loaded, 600 rows appended, saved
    assert len(grown) == 2600 and len(VectorIndex.load(path)) == 2600
    smaller = load_or_build(path, vectors[:100], exact_below=0)  # more rows saved than the matrix has
    assert len(smaller) == 100
    (tmp_path / "facts.ann.json").write_text("{}")
    assert len(load_or_build(path, vectors[:50], exact_below=0)) == 50  # unreadable manifest: rebuilt


def test_load_refuses_inconsistent_files(tmp_path, vectors):
    path = tmp_path / "x.ann"
    with pytest.raises(ValueError, match="manifest"):
        VectorIndex.load(path)
    VectorIndex.build(vectors[:100], exact_below=10**9).save(path)
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(ValueError, match="values"):
        VectorIndex.load(path)


def test_empty_and_short_indexes():
    index = VectorIndex(8)
    ids, scores = index.search(np.ones(8, np.float32), 5)
    assert len(ids) == 0 and len(scores) == 0
    index.add(np.eye(3, 8, dtype=np.float32))
    ids, _ = index.search(np.eye(1, 8, dtype=np.float32)[0], 10)
    assert ids.tolist()[0] == 0 and len(ids) == 3
