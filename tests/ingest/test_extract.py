"""spaCy extraction: entities, facts from the parse, pronouns, dates."""

from __future__ import annotations

from datetime import UTC, datetime

from graphmem.extract.dates import parse_date


def test_entities_and_subject_predicate_object_facts(extractor):
    [ex] = extractor.extract(
        [
            "The Halvard Library was designed by Mirela Toskova in 1987. "
            "She later moved to Porto, where she founded Toskova Studio."
        ]
    )
    names = {m.name for m in ex.mentions}
    assert {"Mirela Toskova", "Porto", "Toskova Studio"} <= names
    facts = {(t.subject, t.predicate, t.object) for t in ex.triples}
    assert ("Mirela Toskova", "move to", "Porto") in facts  # "She" resolved to the person
    assert ("Mirela Toskova", "found", "Toskova Studio") in facts
    designed = next(t for t in ex.triples if t.predicate == "design by")
    assert designed.valid_at == datetime(1987, 1, 1, tzinfo=UTC)


def test_definite_noun_phrase_refers_back_to_the_named_entity(extractor):
    [ex] = extractor.extract(["The Kessary Bridge spans the river. Halvane Steelworks built the bridge in 1910."])
    assert any(t.subject == "Halvane Steelworks" and t.object == "Kessary Bridge" for t in ex.triples)


def test_title_is_a_mention_and_backs_up_pronouns(extractor):
    [ex] = extractor.extract(["He played the cello in an orchestra."], titles=["Ilsa Varrow"])
    assert any(m.name == "Ilsa Varrow" for m in ex.mentions)
    assert any(t.subject == "Ilsa Varrow" for t in ex.triples)


def test_first_person_is_the_speaker(extractor):
    [ex] = extractor.extract(["I work at Siemens now."], speakers=["Caroline"])
    assert ("Caroline", "work at", "Siemens") in {(t.subject, t.predicate, t.object) for t in ex.triples}


def test_dates_absolute_and_relative():
    assert parse_date("in 2019") == datetime(2019, 1, 1, tzinfo=UTC)
    ref = datetime(2023, 5, 10, tzinfo=UTC)
    assert parse_date("two weeks ago", ref).date().isoformat() == "2023-04-26"
    assert parse_date("last year", None) is None  # relative with no anchor: unknown, not "now"
    assert parse_date("not a date at all", ref) is None
