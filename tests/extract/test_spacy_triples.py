"""spaCy extraction with the installed English pipeline: what real sentences yield, and
the character spans that tie each triple back to the words of its passage."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from graphmem.extract.base import Extraction
from graphmem.extract.dates import parse_date

pytestmark = pytest.mark.slow

TEXTS = [
    "Ana Keller did not join Orvalis Robotics.",
    "The Kessary Bridge was built by Halvane Steelworks in 1910.",
    "Petra Hallgrim visited Lisbon and Porto.",
    "Mirela Toskova, an architect from Porto, designed the Halvard Library.",
    "Last week I moved to Berlin.",
]
WRITTEN = datetime(2023, 5, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def extracted(extractor) -> list[Extraction]:
    return extractor.extract(
        TEXTS, reference_times=[None, None, None, None, WRITTEN], speakers=["", "", "", "", "Caroline"]
    )


def _triples(extraction: Extraction) -> set[tuple[str, str, str]]:
    return {(t.subject, t.predicate, t.object) for t in extraction.triples}


def _words(text: str, spans: list[tuple[int, int]]) -> list[str]:
    return [text[start:end] for start, end in spans]


def test_negation_is_part_of_the_predicate(extracted):
    [triple] = extracted[0].triples
    assert (triple.subject, triple.predicate, triple.object) == ("Ana Keller", "not join", "Orvalis Robotics")
    assert triple.text == "Ana Keller not join Orvalis Robotics"
    assert _words(TEXTS[0], triple.spans) == ["Ana Keller", "join", "Orvalis Robotics"]


def test_passive_agent_and_the_sentence_date(extracted):
    [triple] = extracted[1].triples
    assert (triple.subject, triple.predicate, triple.object) == ("Kessary Bridge", "build by", "Halvane Steelworks")
    assert triple.text == "Kessary Bridge built by Halvane Steelworks"
    assert triple.valid_at == datetime(1910, 1, 1, tzinfo=UTC)
    assert _words(TEXTS[1], triple.spans) == ["Kessary Bridge", "built", "by", "Halvane Steelworks"]
    assert "1910" not in {m.name for m in extracted[1].mentions}  # dates are times, not entities


def test_each_conjunct_object_gets_its_own_triple(extracted):
    assert _triples(extracted[2]) == {("Petra Hallgrim", "visit", "Lisbon"), ("Petra Hallgrim", "visit", "Porto")}
    spans = {m.name: m.spans for m in extracted[2].mentions}
    assert spans == {"Petra Hallgrim": [(0, 14)], "Lisbon": [(23, 29)], "Porto": [(34, 39)]}


def test_apposition_says_what_someone_is(extracted):
    assert _triples(extracted[3]) == {
        ("Mirela Toskova", "design", "Halvard Library"),
        ("Mirela Toskova", "be", "architect"),
    }
    names = {m.name for m in extracted[3].mentions}
    assert {"Mirela Toskova", "Porto", "architect", "Halvard Library"} <= names
    assert not any(name.lower().startswith(("the ", "an ")) for name in names)  # determiners trimmed


def test_first_person_is_the_speaker_and_relative_dates_use_the_time_written(extracted):
    [triple] = extracted[4].triples
    assert (triple.subject, triple.predicate, triple.object) == ("Caroline", "move to", "Berlin")
    assert triple.valid_at == datetime(2023, 5, 3, tzinfo=UTC)  # "last week", written on 10 May
    mentions = {m.name: m for m in extracted[4].mentions}
    assert mentions["Caroline"].type == "PERSON" and mentions["Caroline"].spans == []  # named only as "I"
    assert mentions["Berlin"].spans == [(21, 27)]


def test_question_mentions_are_names_only(extractor):
    question = "Where did Mirela Toskova open her studio after leaving the Halvard Library in 1990?"
    assert extractor.query_mentions(question) == ["Mirela Toskova", "Halvard Library"]


@pytest.mark.parametrize(
    "text, reference, expected",
    [
        ("May 3, 2021", None, datetime(2021, 5, 3, tzinfo=UTC)),
        ("since 1887", None, datetime(1887, 1, 1, tzinfo=UTC)),
        ("1990s", None, datetime(1990, 1, 1, tzinfo=UTC)),
        ("yesterday", WRITTEN, datetime(2023, 5, 9, tzinfo=UTC)),
        ("yesterday", None, None),  # relative with no anchor: unknown
        ("in 0999", None, None),
        ("x" * 80, WRITTEN, None),
    ],
)
def test_parse_date(text, reference, expected):
    got = parse_date(text, reference)
    if expected is None:
        assert got is None
    else:
        assert got is not None and got.date() == expected.date() and got.utcoffset().total_seconds() == 0
