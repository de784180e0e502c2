"""EntityIndex: exact keys, fuzzy spelling merges, synonyms, and growth past its first buffer."""

import numpy as np

from graphmem.model import entity_key
from graphmem.resolve.entities import EntityIndex


def _unit(rng, dim=8):
    v = rng.normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def test_vectors_stay_aligned_with_keys_as_the_index_grows():
    rng = np.random.default_rng(0)
    index = EntityIndex("g", 8)
    added = [_unit(rng) for _ in range(2500)]  # past the 1024-row buffer, twice
    for i, v in enumerate(added):
        index.add(f"entity {i}", f"u{i}", v)
    assert index.vectors.shape == (2500, 8)
    assert np.array_equal(index.vectors, np.stack(added))
    assert index.uuids[index.by_key["entity 1999"]] == "u1999"


def test_resolve_exact_fuzzy_new_and_synonyms():
    rng = np.random.default_rng(1)
    index = EntityIndex("g", 8, synonym_threshold=0.9, synonym_top_k=2)
    bridge = _unit(rng)
    index.add(entity_key("Kessary Bridge"), "bridge", bridge)
    near = bridge + 0.01 * _unit(rng)
    near /= np.linalg.norm(near)
    other = _unit(rng)
    result = index.resolve(
        {"the Kessary Bridge": "FAC", "Kessary Bridges": "FAC", "Marwick": "PERSON"},
        {"Kessary Bridges": near, "Marwick": other, "the Kessary Bridge": bridge},
    )
    # same key after normalisation, and a one-letter variant with a close vector: the same entity
    assert result.uuid_of["the Kessary Bridge"] == "bridge"
    assert result.uuid_of["Kessary Bridges"] == "bridge"
    assert result.aliases["bridge"] == {"the Kessary Bridge", "Kessary Bridges"}
    # a new name becomes a new entity, kept in the index for the next batch
    assert [row["name"] for row in result.new] == ["Marwick"]
    assert entity_key("Marwick") in index.by_key and len(index) == 2


def test_synonyms_are_the_nearest_above_the_threshold_best_first():
    rng = np.random.default_rng(2)
    index = EntityIndex("g", 8, synonym_threshold=0.5, synonym_top_k=2)
    base = _unit(rng)
    for i, noise in enumerate([0.05, 0.4, 0.2, 3.0]):
        v = base + noise * _unit(rng)
        index.add(f"name {i}", f"u{i}", v / np.linalg.norm(v))
    result = index.resolve({"Brand New": ""}, {"Brand New": base})
    pairs = [(s["b"], round(s["score"], 6)) for s in result.synonyms]
    sims = {f"u{i}": float(index.vectors[i] @ base) for i in range(4)}
    expected = sorted((u for u in sims if sims[u] >= 0.5), key=lambda u: -sims[u])[:2]
    assert [b for b, _ in pairs] == expected
    assert all(score >= 0.5 for _, score in pairs)


def test_one_batch_resolves_like_one_name_at_a_time():
    # synonyms among stored entities are computed for the whole batch at once;
    # the result must not depend on that (later names also see earlier new ones)
    rng = np.random.default_rng(3)
    centers = [_unit(rng) for _ in range(20)]

    def near(c):
        v = centers[c] + 0.3 * _unit(rng)
        return v / np.linalg.norm(v)

    stored = [(f"stored entity {i}", near(i % 20)) for i in range(300)]
    batch = {f"new name {i}": near(i % 20) for i in range(120)}
    indexes = []
    for _ in range(2):
        index = EntityIndex("g", 8, synonym_threshold=0.8, synonym_top_k=3)
        for i, (name, v) in enumerate(stored):
            index.add(entity_key(name), f"s{i}", v)
        indexes.append(index)
    together = indexes[0].resolve({n: "" for n in batch}, batch)
    apart = [indexes[1].resolve({n: ""}, {n: v}) for n, v in batch.items()]
    assert together.uuid_of == {k: v for r in apart for k, v in r.uuid_of.items()}
    one_by_one = [s for r in apart for s in r.synonyms]
    assert [(s["a"], s["b"]) for s in together.synonyms] == [(s["a"], s["b"]) for s in one_by_one]
    assert np.allclose([s["score"] for s in together.synonyms], [s["score"] for s in one_by_one], atol=1e-5)
    assert any(s["b"].startswith("s") for s in together.synonyms)  # stored neighbours found
    assert any(not s["b"].startswith("s") for s in together.synonyms)  # and new ones of this batch


def test_similar_spellings_equal_a_scan_of_every_key():
    from rapidfuzz import fuzz, process

    rng = np.random.default_rng(4)
    letters = list("abcdefghij ")
    index = EntityIndex("g", 8)
    for i in range(3000):
        index.add("".join(rng.choice(letters, size=int(rng.integers(6, 30)))).strip() + f"{i % 7}", f"u{i}", _unit(rng))
    probes = [index.keys[i][:-1] + "x" for i in range(0, 3000, 50)] + [index.keys[i] + "s" for i in range(0, 3000, 70)]
    probes += [index.keys[i] for i in range(0, 3000, 90)]  # stored keys find themselves first
    matched = 0
    for probe in probes:
        full = process.extract(probe, index.keys, scorer=fuzz.ratio, score_cutoff=index.fuzzy_ratio, limit=3)
        assert sorted(index.similar_spellings(probe)) == sorted(i for _, _, i in full), probe
        matched += bool(full)
    assert matched >= len(probes) // 3  # the probes do reach the cutoff


def test_one_batch_merges_spellings_like_one_name_at_a_time():
    # spelling variants inside one batch and against the store: the batch's
    # all-pairs comparison must merge exactly what name-by-name resolution merges
    rng = np.random.default_rng(5)
    stems = [f"Harrowmoon Fair {w}" for w in ("Society", "Company", "Trust", "Guild", "Board", "Council")]
    vectors = {stem: _unit(rng) for stem in stems}

    def close(v):
        w = v + 0.05 * _unit(rng)
        return w / np.linalg.norm(w)

    stored = {stem: close(vectors[stem]) for stem in stems[:3]}
    batch = {}
    for stem in stems:
        batch[stem + "s"] = close(vectors[stem])  # a variant of a stored or an earlier batch name
        batch[stem.replace("a", "e", 1)] = close(vectors[stem])
        batch[stem + " Hall"] = _unit(rng)  # distinct spelling: a new entity
    batch.update({stem: close(vectors[stem]) for stem in stems[3:]})
    indexes = []
    for _ in range(2):
        index = EntityIndex("g", 8)
        for i, (name, v) in enumerate(stored.items()):
            index.add(entity_key(name), f"s{i}", v)
        indexes.append(index)
    together = indexes[0].resolve({n: "" for n in batch}, batch)
    apart = [indexes[1].resolve({n: ""}, {n: v}) for n, v in batch.items()]
    assert together.uuid_of == {k: v for r in apart for k, v in r.uuid_of.items()}
    assert [row["name"] for row in together.new] == [row["name"] for r in apart for row in r.new]
    into_stored = [n for n in batch if together.uuid_of[n].startswith("s")]
    into_batch = len(batch) - len(together.new) - len(into_stored)
    assert len(into_stored) >= 4 and into_batch >= 3  # variants merged into stored and into new names
    assert indexes[0].keys == indexes[1].keys


def test_score_blocks_of_any_size_give_the_same_resolution(monkeypatch):
    # resolution bounds its memory by splitting score matrices into row blocks; the
    # split must not change what is merged or linked
    import graphmem.resolve.entities as entities

    rng = np.random.default_rng(6)
    centers = [_unit(rng) for _ in range(15)]

    def near(c, noise=0.3):
        v = centers[c] + noise * _unit(rng)
        return v / np.linalg.norm(v)

    stored = [(f"stored entity number {i}", near(i % 15)) for i in range(200)]
    batch = {f"stored entity number {i}s": near(i % 15, 0.02) for i in range(0, 200, 7)}
    batch.update({f"brand new name {i}": near(i % 15) for i in range(150)})
    results = []
    for cells in (1 << 24, 7):  # one block; blocks of a row or two
        monkeypatch.setattr(entities, "_rows_per_block", lambda columns, cells=cells: max(1, cells // max(1, columns)))
        index = EntityIndex("g", 8, synonym_threshold=0.8, synonym_top_k=3)
        for i, (name, v) in enumerate(stored):
            index.add(entity_key(name), f"s{i}", v)
        results.append(index.resolve({n: "" for n in batch}, batch))
    whole, blocked = results
    assert whole.uuid_of == blocked.uuid_of
    assert [(s["a"], s["b"]) for s in whole.synonyms] == [(s["a"], s["b"]) for s in blocked.synonyms]
    assert any(u.startswith("s") for u in whole.uuid_of.values())  # spelling variants merged into stored ones
    assert whole.synonyms  # and synonym edges found


def test_ann_and_exact_neighbour_search_resolve_a_batch_alike():
    # 6,000 stored names in topic clusters (384-d, like MiniLM name vectors), and a batch
    # of 400 new names: variants close to stored ones (synonym candidates), names near
    # each other, and unrelated ones; the HNSW path must decide as the matrix products do
    rng = np.random.default_rng(7)
    dim = 384
    topics = rng.standard_normal((50, dim)).astype(np.float32) + 0.3 * rng.standard_normal(dim).astype(np.float32)

    def unit(v):
        return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)

    stored = unit(topics[rng.integers(0, 50, 6000)] + 1.1 * rng.standard_normal((6000, dim)).astype(np.float32))
    variants = unit(stored[rng.integers(0, 6000, 250)] + 0.02 * rng.standard_normal((250, dim)).astype(np.float32))
    others = unit(topics[rng.integers(0, 50, 150)] + 1.1 * rng.standard_normal((150, dim)).astype(np.float32))
    batch = {f"batch name {i}": v for i, v in enumerate(np.vstack([variants, others]))}
    resolved = []
    for ann_min_rows in (0, None):
        index = EntityIndex("g", dim, synonym_threshold=0.85, synonym_top_k=3, ann_min_rows=ann_min_rows)
        for i, v in enumerate(stored):
            index.add(f"stored entity {i}", f"s{i}", v)
        resolved.append(index.resolve({n: "" for n in batch}, batch))
        assert (index._ann is not None) == (ann_min_rows == 0)
    ann, exact = resolved
    assert ann.uuid_of == exact.uuid_of
    pairs = [(s["a"], s["b"]) for s in exact.synonyms]
    assert len(pairs) >= 250  # the variants found their stored originals
    assert [(s["a"], s["b"]) for s in ann.synonyms] == pairs
    assert np.allclose([s["score"] for s in ann.synonyms], [s["score"] for s in exact.synonyms], atol=1e-5)
