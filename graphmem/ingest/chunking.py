"""Split a document into passages of about ``size`` words, overlapping by
``overlap`` words, cut at sentence ends where possible. Each passage is an
exact slice of the original text."""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n")
_WORD = re.compile(r"\S+")


def _sentences(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        if text[start : match.start()].strip():
            spans.append((start, match.start()))
        start = match.end()
    if text[start:].strip():
        spans.append((start, len(text)))
    return spans


def _word_spans(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    spans = []
    for m in _WORD.finditer(text[start:end]):
        a, b = start + m.start(), start + m.end()
        # a "word" longer than a passage may be (base64, a URL list...) is cut in pieces
        spans += [(i, min(i + max_chars, b)) for i in range(a, b, max_chars)]
    return spans


#: default bound on a passage's length in characters (what an embedder and
#: spaCy are asked to take at once), whatever its word count
MAX_PASSAGE_CHARS = 10_000


def chunk_text(text: str, size: int = 200, overlap: int = 30, max_chars: int = MAX_PASSAGE_CHARS) -> list[str]:
    """Passages of ``text``: at most ``size`` words and at most ``max_chars`` characters."""
    if overlap >= size:
        raise ValueError("overlap must be smaller than size")
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    # units: sentences, with over-long sentences broken into pieces of at most
    # size words and max_chars characters
    units: list[tuple[int, int, int]] = []  # (start, end, words)
    for s_start, s_end in _sentences(text):
        piece: list[tuple[int, int]] = []
        for span in _word_spans(text, s_start, s_end, max_chars):
            if piece and (len(piece) >= size or span[1] - piece[0][0] > max_chars):
                units.append((piece[0][0], piece[-1][1], len(piece)))
                piece = []
            piece.append(span)
        if piece:
            units.append((piece[0][0], piece[-1][1], len(piece)))
    if not units:
        return []
    passages: list[str] = []
    first = 0
    while first < len(units):
        last, words = first, units[first][2]
        while (
            last + 1 < len(units)
            and words + units[last + 1][2] <= size
            and units[last + 1][1] - units[first][0] <= max_chars
        ):
            last += 1
            words += units[last][2]
        passages.append(text[units[first][0] : units[last][1]])
        if last + 1 >= len(units):
            break
        # step back over trailing sentences worth at most `overlap` words
        next_first, carried = last + 1, 0
        while next_first - 1 > first and carried + units[next_first - 1][2] <= overlap:
            next_first -= 1
            carried += units[next_first][2]
        first = next_first
    return passages
