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
    # the merged spelling is a key of the index now: the next batch finds it without a comparison
    assert index.uuids[index.by_key["orvalis robotic"]] == orvalis


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
