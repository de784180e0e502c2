"""BM25 over the projection's passages, built once and kept with the projection on disk.

The scores are bm25s's (its tokens: lower case, ``\\w\\w+`` words, English stopwords
out; its default Lucene variant: ``idf = ln(1 + (N - df + 0.5) / (df + 0.5))``,
term part ``tf / (k1 (1 - b + b dl / avgdl) + tf)``, k1 1.5, b 0.75), equal to those
of ``bm25s.BM25`` over the same texts to float32 rounding. What differs is the
index: bm25s stores each (term, passage) score, which depends on N, df and the
average length of the whole corpus, so adding one passage would mean rebuilding
it from every text. Here the index keeps what does not change as passages are
added (term frequencies, passage lengths) and the query weighs them with the
current N, df and average length, so an index extended in place scores exactly as
one built at once.

The postings live in segments, each over a range of passages (term id ->
passages), and an ingestion appends a segment for its own passages; a new
segment at least half the size of the one before is merged into it, so there
are O(log passages) segments. A posting stores its (tf, passage length) pair as
a row of its segment's small table of distinct pairs, weighed once per query
(:meth:`BM25Index._table`), so a posting costs a lookup and an add, as a
precomputed score would. Term ids are global (the vocabulary only grows); a
term's df is the sum of its postings over the segments.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from graphmem.retrieve.columns import mmap_array, write_array

K1 = 1.5
B = 0.75


_WORDS = re.compile(r"(?u)\b\w\w+\b").findall
_STOPWORDS: frozenset[str] | None = None


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """bm25s's tokens: what ``bm25s.tokenize(texts, stopwords="en", return_ids=False)``
    returns (lower case, ``\\w\\w+`` words, its English stopwords out), without its progress
    bars and per-call set-up, which cost more than the splitting for a query."""
    global _STOPWORDS
    if _STOPWORDS is None:
        from bm25s.stopwords import STOPWORDS_EN

        _STOPWORDS = frozenset(STOPWORDS_EN)
    stop = _STOPWORDS
    return [[t for t in _WORDS(text.lower()) if t not in stop] for text in texts]


class Vocabulary(Protocol):
    def get(self, term: str, /) -> int | None: ...


@dataclass
class Segment:
    """The postings of one range of passages: ``terms`` (sorted term ids), ``indptr`` into
    ``docs`` (passage rows, ascending within a term) and ``combo``: each posting's (term
    frequency, passage length) pair as a row of ``combo_tf`` / ``combo_len``. A segment
    holds few distinct pairs, so a query weighs them once per pair (a small table) and
    each posting costs one lookup, not the BM25 arithmetic."""

    terms: np.ndarray  # (T,) int32
    indptr: np.ndarray  # (T + 1,) int64
    docs: np.ndarray  # (n,) int32
    combo: np.ndarray  # (n,) uint16 or uint32
    combo_tf: np.ndarray  # (C,) int32
    combo_len: np.ndarray  # (C,) int32

    @property
    def size(self) -> int:
        return len(self.docs)

    def span(self, term: int) -> tuple[int, int] | None:
        """Where ``term``'s postings are (start, end), or None."""
        at = int(np.searchsorted(self.terms, self.terms.dtype.type(term)))  # same dtype: no converted copy
        if at >= len(self.terms) or int(self.terms[at]) != term:
            return None
        return int(self.indptr[at]), int(self.indptr[at + 1])

    def triples(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(passages, terms, term frequencies, passage lengths), one per posting."""
        terms = np.repeat(self.terms, np.diff(self.indptr))
        return self.docs, terms, self.combo_tf[self.combo], self.combo_len[self.combo]

    # -- files -------------------------------------------------------------------------
    FILES = (
        ("terms", np.int32),
        ("indptr", np.int64),
        ("docs", np.int32),
        ("combo", None),
        ("combo_tf", np.int32),
        ("combo_len", np.int32),
    )

    def save(self, directory: Path) -> dict:
        directory.mkdir(parents=True, exist_ok=True)
        for name, dtype in self.FILES:
            write_array(directory / f"{name}.bin", np.asarray(getattr(self, name), dtype=dtype))
        return {
            "dir": directory.name,
            "terms": len(self.terms),
            "postings": len(self.docs),
            "combos": len(self.combo_tf),
            "combo_dtype": np.dtype(self.combo.dtype).name,
        }

    @classmethod
    def open(cls, directory: Path, meta: dict) -> Segment:
        sizes = {
            "terms": meta["terms"],
            "indptr": meta["terms"] + 1,
            "docs": meta["postings"],
            "combo": meta["postings"],
            "combo_tf": meta["combos"],
            "combo_len": meta["combos"],
        }
        arrays = {
            name: mmap_array(directory / f"{name}.bin", dtype or meta["combo_dtype"], sizes[name])
            for name, dtype in cls.FILES
        }
        if meta["terms"] == 0:
            arrays["indptr"] = np.zeros(1, np.int64)
        return cls(**arrays)


def empty_segment() -> Segment:
    return Segment(
        np.zeros(0, np.int32),
        np.zeros(1, np.int64),
        np.zeros(0, np.int32),
        np.zeros(0, np.uint16),
        np.zeros(0, np.int32),
        np.zeros(0, np.int32),
    )


def segment_of(docs: np.ndarray, terms: np.ndarray, tf: np.ndarray, lengths: np.ndarray) -> Segment:
    """A segment from (passage, term, tf, passage length) postings given in passage order."""
    if not len(docs):
        return empty_segment()
    order = np.argsort(terms, kind="stable")  # stable: passages stay ascending within a term
    terms, docs = terms[order], docs[order]
    pairs = (np.asarray(tf, dtype=np.int64)[order] << 32) | np.asarray(lengths, dtype=np.int64)[order]
    unique, combo = np.unique(pairs, return_inverse=True)
    starts = np.flatnonzero(np.r_[True, terms[1:] != terms[:-1]])
    indptr = np.append(starts, len(terms)).astype(np.int64)
    combo_dtype = np.uint16 if len(unique) <= np.iinfo(np.uint16).max + 1 else np.uint32
    return Segment(
        terms[starts].astype(np.int32),
        indptr,
        docs.astype(np.int32),
        combo.astype(combo_dtype),
        (unique >> 32).astype(np.int32),
        (unique & 0xFFFFFFFF).astype(np.int32),
    )


def merge_segments(segments: Sequence[Segment]) -> Segment:
    """One segment holding the postings of ``segments`` (given in passage order)."""
    parts = [s.triples() for s in segments if s.size]
    if not parts:
        return empty_segment()
    return segment_of(*(np.concatenate([p[i] for p in parts]) for i in range(4)))


class BM25Builder:
    """Tokenizes passages in order and collects their postings for one new segment.

    ``known(term)`` gives the id of a term the index already has (None: new);
    new terms get ids from ``n_terms`` on, in order of first sight (:attr:`new_terms`).
    """

    def __init__(self, known: Callable[[str], int | None] | None = None, n_terms: int = 0, first_doc: int = 0) -> None:
        self._known = known
        self._ids: dict[str, int] = {}
        self.new_terms: list[str] = []
        self.n_terms = n_terms
        self.next_doc = first_doc
        self._docs: list[np.ndarray] = []
        self._terms: list[np.ndarray] = []
        self._tf: list[np.ndarray] = []
        self._len: list[np.ndarray] = []

    def _term_id(self, term: str) -> int:
        found = self._ids.get(term)
        if found is None:
            found = self._known(term) if self._known is not None else None
            if found is None:
                found = self.n_terms
                self.n_terms += 1
                self.new_terms.append(term)
            self._ids[term] = found
        return found

    def add(self, texts: Sequence[str]) -> np.ndarray:
        """Index the next ``len(texts)`` passages; returns their lengths in tokens (int32)."""
        tokenized = tokenize(texts)
        lengths = np.fromiter((len(t) for t in tokenized), dtype=np.int64, count=len(tokenized))
        flat = [token for tokens in tokenized for token in tokens]
        if flat:
            ids = {token: self._term_id(token) for token in dict.fromkeys(flat)}
            terms = np.fromiter((ids[t] for t in flat), dtype=np.int64, count=len(flat))
            local = np.repeat(np.arange(len(tokenized), dtype=np.int64), lengths)
            keys, counts = np.unique((local << 32) | terms, return_counts=True)  # sorted: passage, then term
            self._docs.append(((keys >> 32) + self.next_doc).astype(np.int32))
            self._terms.append((keys & 0xFFFFFFFF).astype(np.int32))
            self._tf.append(counts.astype(np.int32))
            self._len.append(lengths[keys >> 32].astype(np.int32))
        self.next_doc += len(tokenized)
        return lengths.astype(np.int32)

    def segment(self) -> Segment:
        if not self._docs:
            return empty_segment()
        return segment_of(
            np.concatenate(self._docs), np.concatenate(self._terms), np.concatenate(self._tf), np.concatenate(self._len)
        )


class BM25Index:
    """BM25 scores of every passage for a query (see the module doc).

    ``segments`` cover the passages in order; ``doc_len`` is each passage's length in
    tokens; ``vocabulary`` maps a term to its id (a dict, or the on-disk hash index).
    """

    def __init__(self, segments: Sequence[Segment], doc_len: np.ndarray, vocabulary: Vocabulary) -> None:
        self.segments = list(segments)
        self.doc_len = doc_len
        self.vocabulary = vocabulary
        self.size = len(doc_len)
        self._avg: np.float64 | None = None
        self._tables: dict[int, np.ndarray] | None = None

    @classmethod
    def from_texts(cls, texts: Sequence[str]) -> BM25Index:
        """An in-memory index of ``texts`` (hand-built projections, tests)."""
        builder = BM25Builder()
        lengths = builder.add(list(texts))
        return cls([builder.segment()], lengths, {t: i for i, t in enumerate(builder.new_terms)})

    @property
    def avg_doc_len(self) -> np.float64:
        if self._avg is None:
            # as bm25s computes it: the mean of an integer array (float64, pairwise summation)
            self._avg = np.float64(np.asarray(self.doc_len, dtype=np.int64).mean() if self.size else 0.0)
        return self._avg

    def _table(self, segment: int) -> np.ndarray:
        """The BM25 term part of each (tf, length) pair of a segment at the current avgdl:
        ``tf / (k1 (1 - b + b dl / avgdl) + tf)``, computed as bm25s computes it per posting
        (float64), kept as float32."""
        if self._tables is None:
            self._tables = {}
        table = self._tables.get(segment)
        if table is None:
            s = self.segments[segment]
            tf = s.combo_tf.astype(np.float64)
            table = (tf / (K1 * ((1 - B) + B * s.combo_len.astype(np.float64) / self.avg_doc_len) + tf)).astype(
                np.float32
            )
            self._tables[segment] = table
        return table

    def term_weights(self, term: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """(passages, float32 BM25 weight) of one term, one pair per segment that holds it."""
        spans = [(i, span) for i, span in ((i, s.span(term)) for i, s in enumerate(self.segments)) if span]
        n = self.size
        df = sum(end - start for _, (start, end) in spans)
        idf = np.float32(math.log(1 + (n - df + 0.5) / (df + 0.5)))
        weighted = []
        for i, (start, end) in spans:
            segment = self.segments[i]
            values = self._table(i)[segment.combo[start:end]]  # a gathered copy: scaled in place
            values *= idf
            weighted.append((segment.docs[start:end], values))
        return weighted

    def term_ids(self, query: str) -> list[int]:
        tokens = tokenize([query])[0] if query else []
        ids = (self.vocabulary.get(t) for t in tokens)
        return [i for i in ids if i is not None]

    def scores(self, query: str) -> np.ndarray:
        if not self.size:
            return np.zeros(0, dtype=np.float32)
        scores = np.zeros(self.size, dtype=np.float32)
        weights: dict[int, list] = {}
        for term in self.term_ids(query):  # a repeated query word counts each time, as in bm25s
            if term not in weights:
                weights[term] = self.term_weights(term)
            for docs, values in weights[term]:
                np.add.at(scores, docs, values)
        return scores


def add_segment(segments: list[Segment], new: Segment) -> tuple[list[Segment], int]:
    """The segment list after appending ``new``: while the last segment is at least half the
    size of the one before, the two are merged. Returns (segments, how many of the
    given segments were kept as they were)."""
    segments = list(segments) + [new]
    kept = len(segments) - 1
    while len(segments) > 1 and segments[-1].size * 2 >= segments[-2].size:
        merged = merge_segments(segments[-2:])
        segments = segments[:-2] + [merged]
        kept = min(kept, len(segments) - 1)
    return segments, kept
