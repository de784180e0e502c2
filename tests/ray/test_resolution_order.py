"""Why Ray ingestion resolves entities in one place, in source order (graphmem/ingest/ray_ingest.py).

A name key alone would partition cleanly (the entity's uuid is derived from it), but a
near-identical spelling merges across keys into whichever entity came first, so the
graph depends on the order names are resolved in. These tests pin that down: if they
ever fail, resolution became order-independent and could be partitioned by key.
"""

from __future__ import annotations

import numpy as np

from graphmem.model import entity_key
from graphmem.resolve.entities import EntityIndex, entity_uuid


def _resolve(names: list[str]) -> tuple[list[dict], dict[str, str]]:
    index = EntityIndex("g", 4)
    vector = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)  # the same meaning: cosine 1
    result = index.resolve(dict.fromkeys(names, "FAC"), dict.fromkeys(names, vector))
    return result.new, result.uuid_of


def test_a_near_identical_spelling_merges_across_name_keys_into_the_first_seen():
    a, b = "Kessary Bridge", "Kessary Bridges"
    assert entity_key(a) != entity_key(b)  # two keys: a key partition would resolve them apart
    forward, forward_of = _resolve([a, b])
    backward, backward_of = _resolve([b, a])
    # one entity either way, but not the same one: the first spelling names it
    assert [row["name"] for row in forward] == [a] and [row["name"] for row in backward] == [b]
    assert set(forward_of.values()) == {entity_uuid("g", entity_key(a))}
    assert set(backward_of.values()) == {entity_uuid("g", entity_key(b))}


def test_resolving_each_key_on_its_own_gives_a_different_graph():
    a, b = "Kessary Bridge", "Kessary Bridges"
    together, _ = _resolve([a, b])
    apart = _resolve([a])[0] + _resolve([b])[0]  # as two key partitions would, each alone
    assert len(together) == 1 and len(apart) == 2
