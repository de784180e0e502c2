"""Finding the entities a query names by looking up the graph's own names."""

from graphmem.model import entity_key
from graphmem.retrieve.names import named_entities

NAMES = [
    "New York",
    "New York City",
    "York",
    "Bank of England",
    "Ada Lovelace",
    "film",
    "Kessary Bridge",
    "Halvane Steelworks",
    "U.S.",
    "Who",
]
KEYS = {entity_key(name): index for index, name in enumerate(NAMES)}


def names(query: str) -> list[str]:
    return [NAMES[i] for i in named_entities(KEYS, query)]


def test_longest_capitalised_span_wins():
    assert names("Which museum in New York City shows Ada Lovelace's notes?") == ["New York City", "Ada Lovelace"]
    assert names("Is New York bigger than York?") == ["New York", "York"]


def test_a_name_may_hold_lowercase_words_inside_but_not_at_its_ends():
    assert names("When did the Bank of England open?") == ["Bank of England"]
    assert names("Who founded the Bank of?") == []


def test_lowercase_entity_keys_and_question_words_are_not_names():
    assert names("which film did the director shoot?") == []
    assert names("Who built the Kessary Bridge?") == ["Kessary Bridge"]


def test_punctuation_and_abbreviations():
    assert names('Where is "Halvane Steelworks", in the U.S.?') == ["Halvane Steelworks", "U.S."]
    assert names("") == [] and named_entities({}, "Ada Lovelace") == []
