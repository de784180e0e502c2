"""Entity resolution with the real MiniLM name vectors: one key per name however it is
written, spelling variants merged only when their meaning agrees, synonym edges between
different names of one thing."""

from __future__ import annotations

import numpy as np
import pytest

from graphmem.model import entity_key
from graphmem.resolve.entities import EntityIndex, entity_uuid

pytestmark = pytest.mark.slow

STORED = {"Orvalis Robotics": "ORG", "Serrin River": "LOC", "Halvard Library": "FAC", "Petra Hallgrim": "PERSON"}


@pytest.mark.parametrize(
    "name, key",
    [
        ("The Orvalis Robotics Inc.", "orvalis robotics"),
        ("Halvane Steelworks Ltd", "halvane steelworks"),
        ("Pellgrave Brothers Corp.", "pellgrave brothers"),
        ("the Kessary  Bridge!", "kessary bridge"),
        ("Mirela Toskova's", "mirela toskova"),
        ("Co", "co"),  # a suffix alone is a name
    ],
)
def test_entity_key_ignores_case_articles_suffixes_and_possessives(name, key):
    assert entity_key(name) == key


@pytest.fixture
def index(embedder) -> EntityIndex:
    """An index holding the STORED entities, resolved from nothing like a first ingestion."""
    index = EntityIndex("g", embedder.dim)
    first = index.resolve(STORED, dict(zip(STORED, embedder.embed(list(STORED)), strict=True)))
    assert [row["name"] for row in first.new] == list(STORED) and not first.synonyms
    return index


def _resolve(index: EntityIndex, embedder, names: dict[str, str]):
    return index.resolve(names, dict(zip(names, embedder.embed(list(names)), strict=True)))


def test_same_key_and_close_spelling_with_close_meaning_are_one_entity(index, embedder):
    orvalis = entity_uuid("g", "orvalis robotics")
    result = _resolve(index, embedder, {"The Orvalis Robotics Inc.": "ORG", "Orvalis Robotic": "ORG"})
    assert result.uuid_of == {"The Orvalis Robotics Inc.": orvalis, "Orvalis Robotic": orvalis}
    assert result.aliases == {orvalis: {"The Orvalis Robotics Inc.", "Orvalis Robotic"}}
    assert not result.new and len(index) == 4
    # the index holds entities by their own keys, as the store does: a later batch (or a run
    # resumed from the store after a crash) compares the spelling again, and merges it again
    assert "orvalis robotic" not in index.by_key
    again = _resolve(index, embedder, {"Orvalis Robotic": "ORG"})
    assert again.uuid_of == {"Orvalis Robotic": orvalis} and not again.new


def test_resolution_does_not_depend_on_the_order_entities_were_added(embedder):
    """A run holds its entities in creation order, a run resumed after a crash loads them in
    uuid order: equal spelling scores must not be broken by that order."""
    names = ["Harbour Projecta", "Harbour Projectb"]  # one letter from "Harbour Project" each
    vectors = embedder.embed(names)
    query = {"Harbour Project": "ORG"}
    query_vectors = dict(zip(query, embedder.embed(list(query)), strict=True))
    targets = set()
    for order in (names, names[::-1]):
        index = EntityIndex("g", embedder.dim, merge_cosine=0.5)
        for name in order:
            index.add(entity_key(name), entity_uuid("g", entity_key(name)), vectors[names.index(name)])
        targets.add(index.resolve(query, query_vectors).uuid_of["Harbour Project"])
    assert targets == {entity_uuid("g", "harbour projecta")}  # ties go to the first key


def test_discarded_entities_are_found_no_more(embedder):
    names = {"Orrin Hale": "PERSON", "Orrin Hales": "PERSON", "Veldt Clockworks": "ORG"}
    index = EntityIndex("g", embedder.dim)
    index.resolve({"Orrin Hale": "PERSON"}, dict(zip(["Orrin Hale"], embedder.embed(["Orrin Hale"]), strict=True)))
    hale = entity_uuid("g", "orrin hale")
    index.discard({hale})
    assert len(index) == 0 and "orrin hale" not in index.by_key
    result = index.resolve(names, dict(zip(names, embedder.embed(list(names)), strict=True)))
    # created again (same uuid), not merged into the discarded row, and no edge to it
    assert [row["name"] for row in result.new][0] == "Orrin Hale" and result.uuid_of["Orrin Hale"] == hale
    assert all(
        index.uuids[index.by_key[entity_key(n)]] == result.uuid_of[n] for n in ("Orrin Hale", "Veldt Clockworks")
    )
    assert len(index) == len(result.new)


def test_a_close_spelling_that_means_something_else_stays_apart(index, embedder):
    # "Libary" is one letter from "Library" (ratio 97) but MiniLM puts it far away (cosine 0.64)
    result = _resolve(index, embedder, {"Halvard Libary": "FAC"})
    assert [row["name_key"] for row in result.new] == ["halvard libary"]
    assert result.uuid_of["Halvard Libary"] == entity_uuid("g", "halvard libary") != entity_uuid("g", "halvard library")
    assert not result.synonyms


def test_another_name_of_the_same_thing_gets_a_synonym_edge(index, embedder):
    result = _resolve(index, embedder, {"River Serrin": "LOC", "Greyford Bridge": "FAC"})
    river = entity_uuid("g", "river serrin")
    assert [row["name"] for row in result.new] == ["River Serrin", "Greyford Bridge"]
    [synonym] = result.synonyms
    assert (synonym["a"], synonym["b"]) == (river, entity_uuid("g", "serrin river"))
    assert synonym["score"] == pytest.approx(float(np.dot(*embedder.embed(["River Serrin", "Serrin River"]))), abs=1e-5)
    assert synonym["score"] >= index.synonym_threshold


def test_entity_ids_depend_on_group_and_key_only(embedder):
    names = {"Petra Hallgrim": "PERSON", "the Serrin River": "LOC"}
    vectors = dict(zip(names, embedder.embed(list(names)), strict=True))
    one, two = EntityIndex("g", embedder.dim), EntityIndex("g", embedder.dim)
    other_group = EntityIndex("h", embedder.dim)
    # two processes resolving the same names apart agree without asking each other
    assert one.resolve(names, vectors).uuid_of == two.resolve(dict(reversed(names.items())), vectors).uuid_of
    assert set(other_group.resolve(names, vectors).uuid_of.values()).isdisjoint(one.uuids)
