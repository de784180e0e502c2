"""Entities a query names, found by looking up the graph's own entity names.

The alternative, spaCy's NER on every query (``query_entities: ner``), costs
several milliseconds on the query path and can only find names it recognises
as such. Here every capitalised span of the query (up to eight words, longest
first) is normalised like an entity name (:func:`graphmem.model.entity_key`)
and kept when the graph holds an entity with that key. Capitalisation stands in
for "a name": lowercase words that happen to be entity keys ("film",
"director", from noun chunks) are hubs, and facts cover them instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from graphmem.model import entity_key

MAX_NAME_WORDS = 8

_WORD = re.compile(r"\S+")
_EDGE_PUNCTUATION = "\"'“”‘’()[]{}<>,.;:!?"
#: capitalised words that start a question or a sentence rather than a name
_NOT_A_NAME_START = frozenset(
    [
        "a",
        "an",
        "the",
        "who",
        "whom",
        "whose",
        "what",
        "which",
        "when",
        "where",
        "why",
        "how",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "do",
        "does",
        "did",
        "has",
        "have",
        "had",
        "can",
        "could",
        "will",
        "would",
        "shall",
        "should",
        "may",
        "might",
        "must",
        "in",
        "on",
        "at",
        "of",
        "for",
        "from",
        "by",
        "with",
        "to",
        "and",
        "or",
        "but",
        "as",
        "if",
        "than",
        "that",
        "this",
        "these",
        "those",
        "there",
        "it",
        "its",
        "he",
        "she",
        "they",
        "his",
        "her",
        "their",
    ]
)


def _is_capitalised(word: str) -> bool:
    return bool(word) and (word[0].isupper() or word[0].isdigit())


def named_entities(keys: Mapping[str, int], query: str, max_words: int = MAX_NAME_WORDS) -> list[int]:
    """Entity indices (sorted) of the names ``keys`` (entity key -> index) holds that
    ``query`` spells out, scanning left to right and preferring the longest span."""
    words = [w.strip(_EDGE_PUNCTUATION) for w in _WORD.findall(query)]
    found: set[int] = set()
    start = 0
    while start < len(words):
        first = words[start]
        if not _is_capitalised(first) or first.casefold() in _NOT_A_NAME_START:
            start += 1
            continue
        matched = 0
        for end in range(min(len(words), start + max_words), start, -1):
            last = words[end - 1]
            if not _is_capitalised(last) and end - 1 > start:
                continue  # a name ends on a capitalised word ("Bank of England", not "Bank of")
            index = keys.get(entity_key(" ".join(words[start:end])))
            if index is not None:
                found.add(index)
                matched = end - start
                break
        start += max(matched, 1)
    return sorted(found)
