"""Entity and fact vectors pooled from their passage's own forward pass ("late chunking").

Embedding every new entity name and every fact text on its own costs about as
much model time as embedding the passages (a passage of 100 words yields some
15 names and 7 facts), which made ingestion three times slower than embedding
alone. The passage's forward pass already holds a contextual vector for every
token, so a name's vector is the mean of the tokens it covers where it is
first mentioned, and a fact's the mean over its subject, predicate and object
words. Names and facts whose words the model did not see (a speaker named only
by "I", text past the model's input limit) and embedders that cannot pool
(the HTTP service) fall back to embedding the text on its own.

Character offsets come from the extractor, which reads the *extraction* text;
:class:`TextMap` carries them over to the text the embedder reads.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from graphmem.embed.base import ContextEmbedder, Embedder
from graphmem.extract.base import Extraction

_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


@dataclass
class TextMap:
    """Maps character offsets of a derived text back to the text it was derived from.

    ``pieces`` are ``(start in derived, start in original, length)`` runs copied
    unchanged; an offset in text the derivation added maps to the end of the run
    before it. ``prefix`` is added to every result (a title line put before the
    content in the embedded text).
    """

    pieces: list[tuple[int, int, int]] = field(default_factory=list)
    prefix: int = 0

    def __call__(self, offset: int) -> int:
        if not self.pieces:
            return self.prefix + offset
        k = bisect.bisect_right([p[0] for p in self.pieces], offset) - 1
        if k < 0:
            return self.prefix
        derived, original, length = self.pieces[k]
        return self.prefix + original + min(offset - derived, length)

    def ranges(self, spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
        return [(self(start), self(end)) for start, end in spans]


def extraction_text_and_map(content: str) -> tuple[str, TextMap]:
    """What the extractor reads, and the map of its offsets back to ``content``.

    Markdown headings become sentences, so spaCy does not glue a title onto the
    paragraph after it ("Anselm Vey\\n\\nAnselm Vey was ...").
    """
    parts: list[str] = []
    pieces: list[tuple[int, int, int]] = []
    written = 0  # length of the derived text so far
    copied = 0  # position in content up to which it is accounted for

    def copy(start: int, end: int) -> None:
        nonlocal written
        if end > start:
            pieces.append((written, start, end - start))
            parts.append(content[start:end])
            written += end - start

    for match in _HEADING.finditer(content):
        copy(copied, match.start())
        name = match.group(1).rstrip(".")
        copy(match.start(1), match.start(1) + len(name))
        parts.append(".")
        written += 1
        copied = match.end()
    copy(copied, len(content))
    return "".join(parts), TextMap(pieces)


@dataclass
class UnitVectors:
    """The vectors of one batch: one row per unit (passage or turn) and, by text,
    those of the names and facts pooled from the units."""

    units: np.ndarray
    names: dict[str, np.ndarray] = field(default_factory=dict)
    facts: dict[str, np.ndarray] = field(default_factory=dict)


def embed_units(
    embedder: Embedder,
    texts: Sequence[str],
    extractions: Sequence[Extraction],
    maps: Sequence[TextMap],
    *,
    pool: bool = True,
) -> UnitVectors:
    """Embed ``texts`` (what the embedder reads of each unit) and, when ``pool`` and
    the embedder can, pool the vectors of the names and facts ``extractions`` found
    (their offsets mapped into ``texts`` by ``maps``). A name or fact met in several
    units keeps the vector of its first occurrence."""
    if not pool or not isinstance(embedder, ContextEmbedder):
        return UnitVectors(embedder.embed(list(texts)))
    groups: list[list[list[tuple[int, int]]]] = []
    labels: list[list[tuple[str, str]]] = []
    for extraction, text_map in zip(extractions, maps, strict=True):
        mine: list[list[tuple[int, int]]] = []
        what: list[tuple[str, str]] = []
        for mention in extraction.mentions:
            if mention.spans:
                mine.append(text_map.ranges(mention.spans[:1]))
                what.append(("name", mention.name))
        for triple in extraction.triples:
            if triple.spans:
                mine.append(text_map.ranges(triple.spans))
                what.append(("fact", triple.text))
        groups.append(mine)
        labels.append(what)
    vectors, pooled = embedder.embed_in_context(list(texts), groups)
    result = UnitVectors(vectors)
    for rows, what in zip(pooled, labels, strict=False):
        for row, (kind, text) in zip(rows, what, strict=False):
            if row.any():
                (result.names if kind == "name" else result.facts).setdefault(text, row)
    return result


def vectors_for(texts: Sequence[str], known: dict[str, np.ndarray], embedder: Embedder) -> np.ndarray:
    """One row per text: pooled where ``known`` has it, else embedded now (in one call)."""
    missing = [t for t in dict.fromkeys(texts) if t not in known]
    fresh = dict(zip(missing, embedder.embed(missing), strict=True)) if missing else {}
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    return np.vstack([known[t] if t in known else fresh[t] for t in texts]).astype(np.float32)
