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
        if text[start:match.start()].strip():
            spans.append((start, match.start()))
        start = match.end()
    if text[start:].strip():
        spans.append((start, len(text)))
    return spans


def _word_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    return [(start + m.start(), start + m.end()) for m in _WORD.finditer(text[start:end])]


def chunk_text(text: str, size: int = 200, overlap: int = 30) -> list[str]:
    """Passages of ``text`` (at most ``size`` words unless one word is longer)."""
    if overlap >= size:
        raise ValueError("overlap must be smaller than size")
    # units: sentences, with over-long sentences broken into size-word pieces
    units: list[tuple[int, int, int]] = []  # (start, end, words)
    for s_start, s_end in _sentences(text):
        words = _word_spans(text, s_start, s_end)
        for i in range(0, len(words), size):
            piece = words[i:i + size]
            units.append((piece[0][0], piece[-1][1], len(piece)))
    if not units:
        return []
    passages: list[str] = []
    first = 0
    while first < len(units):
        last, words = first, units[first][2]
        while last + 1 < len(units) and words + units[last + 1][2] <= size:
            last += 1
            words += units[last][2]
        passages.append(text[units[first][0]:units[last][1]])
        if last + 1 >= len(units):
            break
        # step back over trailing sentences worth at most `overlap` words
        next_first, carried = last + 1, 0
        while next_first - 1 > first and carried + units[next_first - 1][2] <= overlap:
            next_first -= 1
            carried += units[next_first][2]
        first = next_first
    return passages
