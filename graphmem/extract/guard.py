"""Bounds on what one passage may add to the graph, so that degenerate text (a
single-line dump, a transcript without punctuation, word salad) does not turn
into thousands of junk entities, facts and synonym edges.

A passage is *degenerate* when it has almost no sentence boundaries: more than
:data:`RUN_ON_WORDS` words per sentence end on average (ordinary prose has 15 to
25; the sample corpus at most 14). Its dependency parse runs clauses together,
so only its strongest mentions and its first few facts are kept. Every passage,
degenerate or not, keeps at most :data:`MAX_MENTIONS` mentions and
:data:`MAX_TRIPLES` facts (far above what ordinary text yields, about 20 and 13
per 200-word passage of the sample corpus).
"""

from __future__ import annotations

import re

from graphmem.extract.base import Extraction, Mention

#: a noun chunk with more words than this is a runaway run of nouns, not an entity's name
MAX_CHUNK_WORDS = 5
#: no entity's name is longer than this many characters
MAX_NAME_CHARS = 60
#: average words per sentence end above which a passage is degenerate
RUN_ON_WORDS = 60
MAX_MENTIONS = 64
MAX_TRIPLES = 48
#: what a degenerate passage keeps, and the longest noun chunk it may name
RUN_ON_MENTIONS = 8
RUN_ON_TRIPLES = 2
RUN_ON_CHUNK_WORDS = 3

_SENTENCE_END = re.compile(r"[.!?;:](?:\s|$)|\n")
_WORD = re.compile(r"\S+")


def degenerate(text: str) -> bool:
    """True when ``text`` has more than :data:`RUN_ON_WORDS` words per sentence end."""
    words = sum(1 for _ in _WORD.finditer(text))
    ends = sum(1 for _ in _SENTENCE_END.finditer(text))
    return words > RUN_ON_WORDS * (ends + 1)


def _rank(mention: Mention) -> tuple[int, int]:
    """Named entities before noun-chunk concepts, then the most often mentioned (stable sort
    keeps reading order among equals)."""
    return (mention.type == "CONCEPT", -mention.count)


def bound(extraction: Extraction, text: str, keep: set[str] | frozenset[str] = frozenset()) -> Extraction:
    """``extraction`` of ``text`` within the bounds above; facts whose ends were dropped go
    too. ``keep``: names never dropped (a dialogue's speaker, a document's title)."""
    run_on = degenerate(text)
    max_mentions, max_triples = (RUN_ON_MENTIONS, RUN_ON_TRIPLES) if run_on else (MAX_MENTIONS, MAX_TRIPLES)
    if len(extraction.mentions) <= max_mentions and len(extraction.triples) <= max_triples and not run_on:
        return extraction
    mentions = [
        m
        for m in extraction.mentions
        if m.name in keep or not (run_on and m.type == "CONCEPT" and len(m.name.split()) > RUN_ON_CHUNK_WORDS)
    ]
    kept = {m.name for m in sorted(mentions, key=_rank)[:max_mentions]} | set(keep)
    triples = [t for t in extraction.triples if t.subject in kept and t.object in kept][:max_triples]
    return Extraction(mentions=[m for m in mentions if m.name in kept], triples=triples)
