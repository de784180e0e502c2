"""The temporal plan against stored facts: which relation a predicate belongs to, the keys
a batch touches, new assertions joining stored runs, and timelines mended after a removal."""

from __future__ import annotations

from graphmem.config import TemporalSettings
from graphmem.resolve.temporal import Assertion, keys_of, plan, relation_of

REL = TemporalSettings().relations()
NOW = 50_000


def _stored(
    uuid: str,
    obj: str,
    valid_at: int | None,
    invalid_at: int | None = None,
    expired_at: int | None = None,
    predicate: str = "live in",
) -> dict:
    return {
        "uuid": uuid,
        "subject": "ana",
        "object": obj,
        "predicate": predicate,
        "valid_at": valid_at,
        "invalid_at": invalid_at,
        "created_at": 1,
        "expired_at": expired_at,
    }


def test_predicates_map_to_their_relation_whatever_their_spacing_and_case():
    assert relation_of("Move  To", REL) == relation_of("reside in", REL) == "lives in"
    assert relation_of("work for", REL) == "works at"
    assert relation_of("visit", REL) is None
    rows = [
        {"subject": "ana", "predicate": "move to"},
        {"subject": "ana", "predicate": "live in"},
        {"subject": "ana", "predicate": "visit"},
        {"subject": "bo", "predicate": "work at"},
    ]
    keys = {(k["subject"], frozenset(k["predicates"])) for k in keys_of(rows, REL)}
    # one key per (subject, relation), asking for every predicate of the relation
    lives = frozenset(p for p, relation in REL.items() if relation == "lives in")
    works = frozenset(p for p, relation in REL.items() if relation == "works at")
    assert {"lives in", "live in", "move to", "settle in"} <= lives and "work at" in works
    assert keys == {("ana", lives), ("bo", works)}


def test_a_new_assertion_of_the_current_value_joins_the_stored_fact():
    stored = [_stored("f-lisbon", "lisbon", 100)]
    new = Assertion("ana", "live in", "lisbon", "ana lives in lisbon", 300, "e2")
    upserts, validity = plan([new], stored, REL, "g", NOW)
    assert [(u["uuid"], u["episodes"], u["valid_at"], u["invalid_at"]) for u in upserts] == [
        ("f-lisbon", ["e2"], 100, None)
    ]
    assert validity == [{"uuid": "f-lisbon", "subject": "ana", "valid_at": 100, "invalid_at": None, "expired_at": None}]


def test_an_ended_fact_keeps_when_it_was_learned_to_have_ended():
    stored = [_stored("f-lisbon", "lisbon", 100, invalid_at=200, expired_at=7_000), _stored("f-berlin", "berlin", 200)]
    new = Assertion("ana", "move to", "porto", "ana moved to porto", 300, "e3")
    upserts, validity = plan([new], stored, REL, "g", NOW)
    by_uuid = {v["uuid"]: v for v in validity}
    assert by_uuid["f-lisbon"]["expired_at"] == 7_000  # kept, not moved to now
    assert (by_uuid["f-berlin"]["invalid_at"], by_uuid["f-berlin"]["expired_at"]) == (300, NOW)
    [porto] = upserts
    assert (porto["object"], porto["valid_at"], porto["invalid_at"], porto["episodes"]) == ("porto", 300, None, ["e3"])


def test_removing_the_newer_fact_makes_the_older_current_again():
    # what retime does after a forget: plan the remaining facts with nothing new
    stored = [_stored("f-lisbon", "lisbon", 100, invalid_at=200, expired_at=7_000)]
    upserts, validity = plan([], stored, REL, "g", NOW)
    assert upserts == []
    assert validity == [{"uuid": "f-lisbon", "subject": "ana", "valid_at": 100, "invalid_at": None, "expired_at": None}]
