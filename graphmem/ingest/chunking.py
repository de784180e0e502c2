"""Split a document into passages of about ``size`` words, overlapping by
``overlap`` words, cut at sentence ends where possible. Each passage is an
exact slice of the original text.

The split is a stream (:func:`iter_spans`): a document of any length is read a
passage at a time, and chunking can restart at any passage's start offset and
give the same passages from there on (what lets a long document be ingested in
batches, and resumed after the last batch written).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n")
_WORD = re.compile(r"\S+")
_NON_SPACE = re.compile(r"\S")


def _sentences(text: str, start: int = 0) -> Iterator[tuple[int, int]]:
    """(start, end) of each sentence from ``start`` on, without copying the text."""
    for match in _SENTENCE_END.finditer(text, start):
        if _NON_SPACE.search(text, start, match.start()):
            yield start, match.start()
        start = match.end()
    if _NON_SPACE.search(text, start):
        yield start, len(text)


def _word_spans(text: str, start: int, end: int, max_chars: int) -> Iterator[tuple[int, int]]:
    for m in _WORD.finditer(text, start, end):
        a, b = m.start(), m.end()
        # a "word" longer than a passage may be (base64, a URL list...) is cut in pieces
        for i in range(a, b, max_chars):
            yield i, min(i + max_chars, b)


def _units(text: str, start: int, size: int, max_chars: int) -> Iterator[tuple[int, int, int]]:
    """(start, end, words) of sentences from ``start`` on, a sentence with no end in sight
    (a single-line dump, a transcript without punctuation) broken into pieces of at most
    ``size`` words and ``max_chars`` characters."""
    for s_start, s_end in _sentences(text, start):
        piece_start, piece_end, words = -1, -1, 0
        for a, b in _word_spans(text, s_start, s_end, max_chars):
            if words and (words >= size or b - piece_start > max_chars):
                yield piece_start, piece_end, words
                words = 0
            if not words:
                piece_start = a
            piece_end, words = b, words + 1
        if words:
            yield piece_start, piece_end, words


#: default bound on a passage's length in characters (what an embedder and
#: spaCy are asked to take at once), whatever its word count
MAX_PASSAGE_CHARS = 10_000


def iter_spans(
    text: str, size: int = 200, overlap: int = 30, max_chars: int = MAX_PASSAGE_CHARS, start: int = 0
) -> Iterator[tuple[int, int]]:
    """(start, end) character offsets of the passages of ``text``, one at a time: at most
    ``size`` words and ``max_chars`` characters each. ``start``: a passage's start offset
    (as yielded before) to go on from; the passages from there are the same as a split
    from the beginning gives. Memory stays bounded by a passage's units, whatever the
    text's length."""
    if overlap >= size:
        raise ValueError("overlap must be smaller than size")
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    units = _units(text, start, size, max_chars)
    window: list[tuple[int, int, int]] = []  # the units from the current passage's first on

    def have(n: int) -> bool:
        while len(window) < n:
            unit = next(units, None)
            if unit is None:
                return False
            window.append(unit)
        return True

    if not have(1):
        return
    while True:
        last, words = 0, window[0][2]
        while (
            have(last + 2) and words + window[last + 1][2] <= size and window[last + 1][1] - window[0][0] <= max_chars
        ):
            last += 1
            words += window[last][2]
        yield window[0][0], window[last][1]
        if not have(last + 2):
            return
        # step back over trailing sentences worth at most `overlap` words
        next_first, carried = last + 1, 0
        while next_first - 1 > 0 and carried + window[next_first - 1][2] <= overlap:
            next_first -= 1
            carried += window[next_first][2]
        del window[:next_first]


def chunk_text(text: str, size: int = 200, overlap: int = 30, max_chars: int = MAX_PASSAGE_CHARS) -> list[str]:
    """Passages of ``text``: at most ``size`` words and at most ``max_chars`` characters."""
    return [text[a:b] for a, b in iter_spans(text, size, overlap, max_chars)]
