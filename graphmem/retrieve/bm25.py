"""BM25 over the projection's passages, built once and kept with the projection on disk.

The scores are bm25s's (its tokenizer with English stopwords, its default
Lucene variant: ``idf = ln(1 + (N - df + 0.5) / (df + 0.5))``, term part
``tf / (k1 (1 - b + b dl / avgdl) + tf)``, k1 1.5, b 0.75), computed with the
same float operations, so they equal those of ``bm25s.BM25`` over the same
texts. What differs is the index: bm25s stores each (term, passage) score, which
depends on N, df and the average length of the whole corpus, so adding one
passage would mean rebuilding it from every text. Here the index keeps raw
term frequencies and passage lengths, and the query weighs them: the postings
live in segments, each over a range of passages (term id -> passages, term
frequencies), and an ingestion appends a segment for its own passages. A new
segment that is at least half the size of the one before is merged into it, so
there are O(log passages) segments. Term ids are global (the vocabulary only
grows); a term's df is the sum of its postings over the segments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from graphmem.retrieve.columns import mmap_array, write_array

K1 = 1.5
B = 0.75


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """bm25s's tokens (lower case, ``\\w\\w+`` words, English stopwords out)."""
    import bm25s

    if not texts:
        return []
    return bm25s.tokenize(list(texts), stopwords="en", show_progress=False, return_ids=False)


class Vocabulary(Protocol):
    def get(self, term: str, default=None) -> int | None: ...


@dataclass
class Segment:
    """The postings of one range of passages: ``terms`` (sorted term ids), ``indptr`` into
    ``docs`` (passage rows, ascending within a term) and ``tf`` (term frequencies)."""

    terms: np.ndarray  # (T,) int32
    indptr: np.ndarray  # (T + 1,) int64
    docs: np.ndarray  # (n,) int32
    tf: np.ndarray  # (n,) uint16

    @property
    def size(self) -> int:
        return len(self.docs)

    def postings(self, term: int) -> tuple[np.ndarray, np.ndarray] | None:
        at = int(np.searchsorted(self.terms, term))
        if at >= len(self.terms) or int(self.terms[at]) != term:
            return None
        start, end = int(self.indptr[at]), int(self.indptr[at + 1])
        return self.docs[start:end], self.tf[start:end]

    # -- files -------------------------------------------------------------------------
    FILES = (("terms", np.int32), ("indptr", np.int64), ("docs", np.int32), ("tf", np.uint16))

    def save(self, directory: Path) -> dict:
        directory.mkdir(parents=True, exist_ok=True)
        for name, dtype in self.FILES:
            write_array(directory / f"{name}.bin", np.asarray(getattr(self, name), dtype=dtype))
        return {"dir": directory.name, "terms": len(self.terms), "postings": len(self.docs)}

    @classmethod
    def open(cls, directory: Path, meta: dict) -> "Segment":
        sizes = {"terms": meta["terms"], "indptr": meta["terms"] + 1, "docs": meta["postings"],
                 "tf": meta["postings"]}
        arrays = {name: mmap_array(directory / f"{name}.bin", dtype, sizes[name]) for name, dtype in cls.FILES}
        if meta["terms"] == 0:
            arrays["indptr"] = np.zeros(1, np.int64)
        return cls(**arrays)


def empty_segment() -> Segment:
    return Segment(np.zeros(0, np.int32), np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.uint16))


def segment_of(docs: np.ndarray, terms: np.ndarray, tf: np.ndarray) -> Segment:
    """A segment from (passage, term, tf) triples given in passage order."""
    if not len(docs):
        return empty_segment()
    order = np.argsort(terms, kind="stable")  # stable: passages stay ascending within a term
    terms, docs, tf = terms[order], docs[order], tf[order]
    starts = np.flatnonzero(np.r_[True, terms[1:] != terms[:-1]])
    indptr = np.append(starts, len(terms)).astype(np.int64)
    return Segment(terms[starts].astype(np.int32), indptr, docs.astype(np.int32), tf.astype(np.uint16))


def merge_segments(segments: Sequence[Segment]) -> Segment:
    """One segment holding the postings of ``segments`` (given in passage order)."""
    parts = [s for s in segments if s.size]
    if not parts:
        return empty_segment()
    docs = np.concatenate([s.docs for s in parts])
    terms = np.concatenate([np.repeat(s.terms, np.diff(s.indptr)) for s in parts])
    tf = np.concatenate([s.tf for s in parts])
    return segment_of(docs, terms, tf)


class BM25Builder:
    """Tokenizes passages in order and collects their postings for one new segment.

    ``known(term)`` gives the id of a term the index already has (None: new);
    new terms get ids from ``n_terms`` on, in order of first sight (:attr:`new_terms`).
    """

    def __init__(self, known: Callable[[str], int | None] | None = None, n_terms: int = 0,
                 first_doc: int = 0) -> None:
        self._known = known
        self._ids: dict[str, int] = {}
        self.new_terms: list[str] = []
        self.n_terms = n_terms
        self.next_doc = first_doc
        self._docs: list[np.ndarray] = []
        self._terms: list[np.ndarray] = []
        self._tf: list[np.ndarray] = []

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
            self._tf.append(np.minimum(counts, np.iinfo(np.uint16).max).astype(np.uint16))
        self.next_doc += len(tokenized)
        return lengths.astype(np.int32)

    def segment(self) -> Segment:
        if not self._docs:
            return empty_segment()
        return segment_of(np.concatenate(self._docs), np.concatenate(self._terms), np.concatenate(self._tf))


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
        self._avg: float | None = None

    @classmethod
    def from_texts(cls, texts: Sequence[str]) -> "BM25Index":
        """An in-memory index of ``texts`` (hand-built projections, tests)."""
        builder = BM25Builder()
        lengths = builder.add(list(texts))
        return cls([builder.segment()], lengths, {t: i for i, t in enumerate(builder.new_terms)})

    @property
    def avg_doc_len(self) -> np.float64:
        if self._avg is None:
            # as bm25s computes it: the mean of an integer array (float64, pairwise summation)
            self._avg = np.asarray(self.doc_len, dtype=np.int64).mean() if self.size else np.float64(0.0)
        return self._avg

    def term_weights(self, term: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """(passages, float32 BM25 weight) of one term, one pair per segment that holds it."""
        parts = [p for p in (s.postings(term) for s in self.segments) if p is not None]
        n = self.size
        df = sum(len(docs) for docs, _ in parts)
        idf = np.float32(math.log(1 + (n - df + 0.5) / (df + 0.5)))
        avg = self.avg_doc_len
        weighted = []
        for docs, tf in parts:
            tf64 = tf.astype(np.float64)
            length = self.doc_len[docs].astype(np.float64)
            # bm25s's operations in its order (float64, then the float32 product it stores)
            tfc = tf64 / (K1 * ((1 - B) + B * length / avg) + tf64)
            weighted.append((docs, (idf * tfc).astype(np.float32)))
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
                scores[docs] += values  # a term lists a passage once: no need for np.add.at
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
