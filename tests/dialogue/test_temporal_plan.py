"""The timeline rules of graphmem/resolve/temporal.py, on plain rows (no store)."""

from __future__ import annotations

import itertools

from graphmem.config import TemporalSettings
from graphmem.resolve.temporal import Assertion, plan

REL = TemporalSettings().relations()
NOW = 10_000


def _run(batches):
    """Feed assertion batches one after another, keeping the 'store' as plan sees it."""
    stored: dict[str, dict] = {}
    for batch in batches:
        upserts, validity = plan(batch, list(stored.values()), REL, "g", NOW)
        for row in upserts:
            old = stored.get(row["uuid"])
            if old is None:
                stored[row["uuid"]] = {
                    k: row[k]
                    for k in (
                        "uuid",
                        "subject",
                        "object",
                        "predicate",
                        "valid_at",
                        "invalid_at",
                        "created_at",
                        "expired_at",
                    )
                }
        for v in validity:
            stored[v["uuid"]].update(valid_at=v["valid_at"], invalid_at=v["invalid_at"], expired_at=v["expired_at"])
    return stored


def _timeline(stored):
    return sorted((r["object"], r["valid_at"], r["invalid_at"]) for r in stored.values())


def a(obj, t, pred="live in", seq=0):
    return Assertion(
        subject="ana", predicate=pred, object=obj, text=f"ana {pred} {obj}", valid_at=t, episode=f"e-{obj}-{t}", seq=seq
    )


def test_newer_fact_ends_older_one():
    stored = _run([[a("lisbon", 100)], [a("berlin", 200, "move to")]])
    assert _timeline(stored) == [("berlin", 200, None), ("lisbon", 100, 200)]
    lisbon = next(r for r in stored.values() if r["object"] == "lisbon")
    assert lisbon["expired_at"] == NOW


def test_late_older_fact_is_stored_invalid_and_does_not_end_the_newer():
    stored = _run([[a("berlin", 200)], [a("lisbon", 100)]])
    assert _timeline(stored) == [("berlin", 200, None), ("lisbon", 100, 200)]


def test_any_arrival_order_gives_the_same_timeline():
    facts = [a("lisbon", 100), a("berlin", 200), a("munich", 300), a("berlin", 250, "reside in")]
    expected = None
    for order in itertools.permutations(facts):
        timeline = _timeline(_run([[f] for f in order]))
        expected = expected or timeline
        assert timeline == expected
    assert expected == [("berlin", 200, 300), ("lisbon", 100, 200), ("munich", 300, None)]


def test_a_value_that_comes_back_gets_its_own_interval():
    stored = _run([[a("lisbon", 100)], [a("berlin", 200)], [a("lisbon", 300)]])
    assert _timeline(stored) == [("berlin", 200, 300), ("lisbon", 100, 200), ("lisbon", 300, None)]


def test_equal_times_the_later_turn_wins_and_other_relations_are_untouched():
    batch = [
        a("lisbon", 100, seq=0),
        a("berlin", 100, seq=1),
        a("acme", 100, "work at", seq=2),
        Assertion("ana", "like", "jazz", "ana like jazz", 100, "e", 3),
    ]
    stored = _run([batch])
    assert _timeline(stored) == [("acme", 100, None), ("berlin", 100, None), ("lisbon", 100, 100)]


def test_undated_facts_are_ordered_by_when_they_were_recorded():
    stored = _run([[a("lisbon", 100)], [a("berlin", None)]])
    assert _timeline(stored) == [("berlin", None, None), ("lisbon", 100, NOW)]
