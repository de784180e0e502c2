"""The projection of one group's graph that retrieval runs on, kept on disk as columns.

Nodes are entities (``0 .. E-1``) and passages/turns (``E .. E+P-1``); edges are
MENTIONS (passage-entity), FACT (entity-entity, one unit of weight per fact)
and SYNONYM (weighted by similarity). PPR runs on a scipy transition matrix
built from them. The dense vectors retrieval scores against (passages, facts)
and the BM25 index live here too, so a query needs no round trip to the store
until the winners' texts are fetched (``Graph.episodes``): passage texts are
not held here at all.

On disk (``<home>/cache/<group>/``, see :func:`load_projection`)::

    manifest.json           format, revision, build, row counts, vector width: written last, atomically
    lock                    one writer (build or extension) at a time, across processes
    b-<token>/              one full build, extended in place by later ingestions
        <column>.bin        raw arrays (graphmem/retrieve/columns.py), memory-mapped read-only
        <column>.off/.utf8  strings (entity names, fact texts, BM25 terms)
        bm25-<n>/           BM25 postings segments (graphmem/retrieve/bm25.py)
        r<revision>/        files of one revision: the sorted orders of the id and key columns,
                            and arrays derived from the columns (``Projection.cache_dir``,
                            ``Projection.derived_arrays``: adjacency, transition, incidence, ...)

Opening is reading the manifest and mapping the files (milliseconds at any
size); every process that opens the same revision shares the pages through the
page cache. A full build streams the store page by page into a temporary
directory that is renamed into place. An ingestion that only added rows
appends them to the columns (:meth:`Projection.extend`) and carries the derived
arrays forward to the new revision; after anything was removed or replaced the
next search builds anew. Superseded builds and
revision directories are deleted once the manifest no longer names them
(processes that still map them keep their pages until they move on).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import tempfile
import uuid as uuidlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, SupportsIndex, overload

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike

from graphmem.retrieve.bm25 import BM25Builder, BM25Index, Segment, add_segment
from graphmem.retrieve.columns import (
    CorruptColumns,
    HashIndex,
    IdColumn,
    IdLookup,
    KeyMap,
    StrColumn,
    append_array,
    encode_ids,
    encode_strings,
    find_sorted,
    key_hashes,
    locked,
    merged_order,
    mmap_array,
    order_of,
    read_json,
    sync_dir,
    write_array,
    write_json,
)
from graphmem.retrieve.ppr import RowBlocks, parallel_operator, transition_matrix
from graphmem.store.graph import Graph

if TYPE_CHECKING:
    import igraph

log = logging.getLogger("graphmem.projection")

FORMAT = 1
FAR_FUTURE = 2**62
MANIFEST = "manifest.json"
LOCK = "lock"
#: rows per chunk when streaming the store into the columns (a page of the projection queries)
CHUNK = 5_000

# Columns by table. A table's row count is in the manifest; every column of it has that many rows.
# Arrays: name -> (table, dtype, row shape); "dim" is the vector width, "vector" the vector dtype.
ARRAYS: dict[str, tuple[str, Any, tuple]] = {
    "entity_key_hash": ("entities", np.uint64, ()),
    "episode_times": ("episodes", np.int64, ()),
    "episode_vectors": ("episodes", "vector", ("dim",)),
    "episode_questions": ("episodes", np.bool_, ()),
    "episode_doc_len": ("episodes", np.int32, ()),
    "mention_pairs": ("mentions", np.int32, (2,)),
    "mention_speaker": ("mentions", np.bool_, ()),
    "fact_ends": ("facts", np.int32, (2,)),
    "fact_valid": ("facts", np.int64, (2,)),
    "fact_vectors": ("facts", "vector", ("dim",)),
    "fact_episode_rows": ("fact_episodes", np.int32, ()),  # CSR indices: episode rows, fact by fact
    "fact_episode_extra": ("fact_episode_extra", np.int32, (2,)),  # (fact, episode) added by later ingestions
    # (fact, valid_at, invalid_at) set by later ingestions
    "fact_valid_updates": ("fact_valid_updates", np.int64, (3,)),
    "synonym_pairs": ("synonyms", np.int32, (2,)),
    "synonym_scores": ("synonyms", np.float32, ()),
    "next_pairs": ("nexts", np.int32, (2,)),
    "term_hash": ("terms", np.uint64, ()),
}
#: offsets columns (int64, rows + 1 entries, the first 0): strings (name.off + name.utf8) and the CSR of fact episodes
STRINGS = {"entity_names": "entities", "fact_texts": "facts", "terms": "terms"}
OFFSETS = {"fact_episode_offsets": "facts"}
IDS = {"entity_ids": "entities", "episode_ids": "episodes", "fact_ids": "facts"}
#: columns with a sorted order per revision (for lookups by id or by key hash)
ORDERED = ("entity_ids", "episode_ids", "fact_ids", "entity_key_hash", "term_hash")


def ends_with_question(text: str) -> bool:
    """A turn that asks something: its text ends with a question mark. A turn that shares a
    photo ends with the caption ("... [shares a photo of ...]"): the photo is content."""
    return text.rstrip().endswith("?")


class Delta(Protocol):
    """What one ingestion run added, as an extension reads it (the ingestor's ``GraphDelta``):
    rows as the store holds them, and the vectors of the episodes and facts in the same order.
    ``nexts`` and ``validity`` are read when the delta has them."""

    @property
    def entities(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def episodes(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def episode_vectors(self) -> Sequence[np.ndarray]: ...
    @property
    def mentions(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def facts(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def fact_vectors(self) -> Sequence[np.ndarray]: ...
    @property
    def synonyms(self) -> Sequence[Mapping[str, Any]]: ...


class FactEpisodes(Sequence[list[str]]):
    """The episodes asserting each fact (uuids), read from the CSR columns: ``offsets``
    into ``rows`` (episode rows), plus ``extra`` (fact, episode) pairs that later
    ingestions added to facts already stored."""

    def __init__(self, offsets: np.ndarray, rows: np.ndarray, extra: np.ndarray, episode_ids: Sequence[str]) -> None:
        self.offsets, self.rows, self.extra, self.episode_ids = offsets, rows, extra, episode_ids
        self._extra: dict[int, list[int]] | None = None

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def rows_of(self, fact: int) -> np.ndarray:
        base = self.rows[int(self.offsets[fact]) : int(self.offsets[fact + 1])]
        if not len(self.extra):
            return base
        if self._extra is None:
            grouped: dict[int, list[int]] = {}
            for f, e in self.extra.tolist():
                grouped.setdefault(f, []).append(e)
            self._extra = grouped
        more = self._extra.get(int(fact))
        return np.concatenate([base, np.array(more, dtype=base.dtype)]) if more else base

    @overload
    def __getitem__(self, fact: SupportsIndex) -> list[str]: ...

    @overload
    def __getitem__(self, fact: slice) -> list[list[str]]: ...

    def __getitem__(self, fact: SupportsIndex | slice) -> list[str] | list[list[str]]:
        if isinstance(fact, slice):
            return [self[i] for i in range(*fact.indices(len(self)))]
        return [self.episode_ids[int(r)] for r in self.rows_of(int(fact))]


@dataclass
class Projection:
    entity_ids: Sequence[str]
    entity_names: Sequence[str]
    episode_ids: Sequence[str]
    episode_times: np.ndarray  # int64 ms, -1 when unknown
    episode_vectors: np.ndarray  # (P, d) float32
    mention_pairs: np.ndarray  # (M, 2) int32: episode index, entity index
    fact_ids: Sequence[str]
    fact_texts: Sequence[str]
    fact_ends: np.ndarray  # (F, 2) int32 entity indices (subject, object)
    fact_valid: np.ndarray  # (F, 2) int64 ms: valid_at (or -inf), invalid_at (or +inf)
    fact_episodes: Sequence[Sequence[str]]  # episode uuids per fact (a FactEpisodes view when on disk)
    fact_vectors: np.ndarray  # (F, d) float32
    synonym_pairs: np.ndarray  # (S, 2) int32 entity indices
    synonym_scores: np.ndarray  # (S,) float32
    revision: int = 0
    # dialogue structure: NEXT edges between episodes, and which mentions are "speaker said this turn"
    next_pairs: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int32))  # (N, 2) episode indices
    mention_speaker: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # (M,) per mention_pairs row
    #: (P,) whether each episode's text ends with a question (:func:`ends_with_question`); None: none does
    episode_questions: np.ndarray | None = None
    #: BM25 over the episodes' texts (built with the projection; None on a hand-built one without texts)
    bm25: BM25Index | None = None
    #: (U, 3) int64: (fact, valid_at, invalid_at) that later ingestions set on facts already in
    #: ``fact_valid`` (a newer value of a single-valued fact ends the old one); the last row of a
    #: fact wins. :meth:`facts_valid_at` and :meth:`fact_validity` apply them.
    fact_valid_updates: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int64))
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)
    _disk: DiskState | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.episode_questions is None:
            self.episode_questions = np.zeros(len(self.episode_ids), dtype=bool)

    # -- where it lives --------------------------------------------------------------
    @property
    def cache_dir(self) -> Path | None:
        """A directory for files derived from this revision of the projection (ANN indexes,
        saved matrices), None when the projection is not on disk. It is this revision's
        own: it goes away once the group's projection moves on to a newer revision (an
        extension or a rebuild), and a process still on this revision that then finds a
        file missing must rebuild what it needs in memory. Write files there under a
        temporary name and rename them into place. Files that should survive in-place
        extensions (e.g. an appendable index with its own row count) belong in
        :attr:`build_dir`."""
        return self._disk.revision_dir if self._disk is not None else None

    @property
    def build_dir(self) -> Path | None:
        """The directory of this build: it lives through every in-place extension and
        goes with the next full rebuild (None when not on disk)."""
        return self._disk.build_dir if self._disk is not None else None

    # -- sizes and lookups ---------------------------------------------------
    @property
    def n_entities(self) -> int:
        return len(self.entity_ids)

    @property
    def n_nodes(self) -> int:
        return len(self.entity_ids) + len(self.episode_ids)

    def episode_index(self) -> Mapping[str, int]:
        if "episode_index" not in self._cache:
            self._cache["episode_index"] = self._id_lookup("episode_ids")
        return self._cache["episode_index"]

    def fact_index(self) -> Mapping[str, int]:
        if "fact_index" not in self._cache:
            self._cache["fact_index"] = self._id_lookup("fact_ids")
        return self._cache["fact_index"]

    def _id_lookup(self, name: str) -> Mapping[str, int]:
        ids = getattr(self, name)
        if self._disk is not None and isinstance(ids, IdColumn):
            return IdLookup(ids, self._disk.orders[name])
        return {u: i for i, u in enumerate(ids)}

    def entity_key_index(self) -> Mapping[str, int]:
        """Entity key (:func:`graphmem.model.entity_key`) -> row of the last entity
        with that key: on disk, a lookup through the saved key hashes, no dict to build."""
        if "entity_key_index" not in self._cache:
            from graphmem.model import entity_key

            if self._disk is not None:
                names = self.entity_names
                index = HashIndex(
                    self._disk.key_hashes, self._disk.orders["entity_key_hash"], lambda row: entity_key(names[row])
                )
                self._cache["entity_key_index"] = KeyMap(index, self.n_entities)
            else:
                self._cache["entity_key_index"] = {entity_key(n): i for i, n in enumerate(self.entity_names)}
        return self._cache["entity_key_index"]

    def fact_episode_rows(self, fact: int) -> np.ndarray:
        """Rows of the episodes that assert ``fact``."""
        if isinstance(self.fact_episodes, FactEpisodes):
            return self.fact_episodes.rows_of(fact)
        index = self.episode_index()
        return np.array([index[u] for u in self.fact_episodes[fact] if u in index], dtype=np.int64)

    def entity_passage_counts(self) -> np.ndarray:
        """How many passages mention each entity (for inverse-frequency seed weights); saved
        with the projection (:meth:`derived_arrays`)."""
        if "entity_counts" not in self._cache:

            def build() -> dict[str, np.ndarray]:
                m = self.mention_pairs
                counts = np.bincount(m[:, 1], minlength=self.n_entities) if len(m) else np.zeros(self.n_entities)
                return {"counts": counts.astype(np.float32)}

            self._cache["entity_counts"] = self.derived_arrays("entity-counts", build)["counts"]
        return self._cache["entity_counts"]

    def episode_entities(self) -> sp.csr_matrix:
        """(P, E) incidence matrix of MENTIONS; saved with the projection (:meth:`derived_arrays`)."""
        if "episode_entities" not in self._cache:

            def build() -> dict[str, np.ndarray]:
                m = self.mention_pairs
                matrix = sp.csr_matrix(
                    (np.ones(len(m), np.float32), (m[:, 0], m[:, 1])) if len(m) else ([], ([], [])),
                    shape=(len(self.episode_ids), self.n_entities),
                    dtype=np.float32,
                )
                return {"data": matrix.data, "indices": matrix.indices, "indptr": matrix.indptr}

            arrays = self.derived_arrays("incidence", build)
            self._cache["episode_entities"] = sp.csr_matrix(
                (arrays["data"], arrays["indices"], arrays["indptr"]),
                shape=(len(self.episode_ids), self.n_entities),
                copy=False,
            )
        return self._cache["episode_entities"]

    def episode_speakers(self) -> np.ndarray:
        """(P,) entity index of each turn's speaker (-1 for passages and unknown speakers)."""
        if "episode_speakers" not in self._cache:
            speakers = np.full(len(self.episode_ids), -1, dtype=np.int64)
            if len(self.mention_speaker) == len(self.mention_pairs) and len(self.mention_pairs):
                pairs = self.mention_pairs[self.mention_speaker]
                speakers[pairs[:, 0]] = pairs[:, 1]
            self._cache["episode_speakers"] = speakers
        return self._cache["episode_speakers"]

    def speaker_set(self) -> set[int]:
        if "speaker_set" not in self._cache:
            self._cache["speaker_set"] = {int(e) for e in self.episode_speakers() if e >= 0}
        return self._cache["speaker_set"]

    def _valid_updates(self) -> tuple[np.ndarray, np.ndarray]:
        """(fact rows, (n, 2) validity) of :attr:`fact_valid_updates`, the last update of each fact."""
        if "valid_updates" not in self._cache:
            u = self.fact_valid_updates
            if not len(u):
                self._cache["valid_updates"] = (np.zeros(0, np.int64), np.zeros((0, 2), np.int64))
            else:
                last = len(u) - 1 - np.unique(u[::-1, 0], return_index=True)[1]  # each fact's last row
                self._cache["valid_updates"] = (u[last, 0], u[last, 1:])
        return self._cache["valid_updates"]

    def fact_validity(self) -> np.ndarray:
        """(F, 2) valid_at, invalid_at of every fact with the updates applied (a copy when there are any)."""
        rows, values = self._valid_updates()
        if not len(rows):
            return self.fact_valid
        out = np.array(self.fact_valid, copy=True)
        out[rows] = values
        return out

    def facts_valid_at(self, as_of_ms: int | None) -> np.ndarray:
        """Boolean mask of facts valid at ``as_of_ms`` (None: now, i.e. not invalidated)."""
        rows, values = self._valid_updates()
        if as_of_ms is None:
            if "facts_valid_now" not in self._cache:  # every query asks: one pass over the facts, not one each
                mask = self.fact_valid[:, 1] == FAR_FUTURE
                mask[rows] = values[:, 1] == FAR_FUTURE
                mask.setflags(write=False)
                self._cache["facts_valid_now"] = mask
            return self._cache["facts_valid_now"]
        mask = (self.fact_valid[:, 0] <= as_of_ms) & (as_of_ms < self.fact_valid[:, 1])
        mask[rows] = (values[:, 0] <= as_of_ms) & (as_of_ms < values[:, 1])
        return mask

    def episodes_known_at(self, as_of_ms: int | None) -> np.ndarray | None:
        """Boolean mask of episodes that had happened by ``as_of_ms`` (unknown time counts as
        known); None when every episode qualifies."""
        if as_of_ms is None:
            return None
        # unknown (-1) is checked apart: as_of dates before 1970 are negative, and an undated
        # passage must still count there, as its facts (valid_at unknown) do
        known = (self.episode_times <= as_of_ms) | (self.episode_times == -1)
        return None if bool(known.all()) else known

    # -- graph -------------------------------------------------------------------
    def adjacency(
        self, fact_mask: np.ndarray | None = None, next_weight: float = 0.0, speaker_weight: float = 1.0
    ) -> sp.csr_matrix:
        """Symmetric weighted adjacency. ``next_weight``: weight of NEXT (turn order) edges,
        0 leaves them out; ``speaker_weight``: weight of a turn's MENTIONS edge to its speaker."""
        E, n = self.n_entities, self.n_nodes
        rows, cols, weights = [], [], []
        if len(self.mention_pairs):
            rows.append(self.mention_pairs[:, 0] + E)
            cols.append(self.mention_pairs[:, 1])
            mention_w = np.ones(len(self.mention_pairs), np.float32)
            if speaker_weight != 1.0 and len(self.mention_speaker) == len(self.mention_pairs):
                mention_w[self.mention_speaker] = speaker_weight
            weights.append(mention_w)
        if next_weight > 0 and len(self.next_pairs):
            rows.append(self.next_pairs[:, 0] + E)
            cols.append(self.next_pairs[:, 1] + E)
            weights.append(np.full(len(self.next_pairs), next_weight, np.float32))
        ends = self.fact_ends if fact_mask is None else self.fact_ends[fact_mask]
        if len(ends):
            rows.append(ends[:, 0])
            cols.append(ends[:, 1])
            weights.append(np.ones(len(ends), np.float32))
        if len(self.synonym_pairs):
            rows.append(self.synonym_pairs[:, 0])
            cols.append(self.synonym_pairs[:, 1])
            weights.append(self.synonym_scores.astype(np.float32))
        if not rows:
            return sp.csr_matrix((n, n)).astype(np.float32)
        r, c, w = np.concatenate(rows), np.concatenate(cols), np.concatenate(weights)
        upper = sp.coo_matrix((w, (r, c)), shape=(n, n))
        return sp.csr_matrix(upper + upper.T, dtype=np.float32)

    def transition(
        self, as_of_ms: int | None = None, next_weight: float = 0.0, speaker_weight: float = 1.0
    ) -> sp.csr_matrix:
        """The column-stochastic transition matrix PPR walks. The one for the present
        (``as_of_ms`` None) is saved with the projection (:meth:`saved_adjacency`, and its
        normalised values): built by the first process that needs it, mapped by the others,
        and carried forward by an extension (the new edges added, not built again)."""
        key = f"transition:{as_of_ms}:{next_weight}:{speaker_weight}"
        if key not in self._cache:
            if as_of_ms is None:
                adjacency = self.saved_adjacency(next_weight, speaker_weight)
                values = self.derived_arrays(
                    f"transition_{next_weight:g}_{speaker_weight:g}", lambda: {"data": _normalised(adjacency)}
                )["data"]
                matrix = sp.csr_matrix((values, adjacency.indices, adjacency.indptr), shape=adjacency.shape, copy=False)
            else:
                matrix = transition_matrix(self.adjacency(self.facts_valid_at(as_of_ms), next_weight, speaker_weight))
            self._cache[key] = matrix
        return self._cache[key]

    def saved_adjacency(self, next_weight: float = 0.0, speaker_weight: float = 1.0) -> sp.csr_matrix:
        """:meth:`adjacency` of the facts valid now, canonical CSR (sorted indices, no
        duplicates), saved with the projection (:meth:`derived_arrays`, ``adjacency_<next
        weight>_<speaker weight>``). Symmetric: row ``u`` lists ``u``'s neighbours and edge
        weights, for any walk that needs them."""
        key = f"adjacency:{next_weight}:{speaker_weight}"
        if key not in self._cache:

            def build() -> dict[str, np.ndarray]:
                matrix = self.adjacency(self.facts_valid_at(None), next_weight, speaker_weight)
                matrix.sum_duplicates()
                matrix.sort_indices()
                return {"data": matrix.data, "indices": matrix.indices, "indptr": matrix.indptr}

            arrays = self.derived_arrays(f"adjacency_{next_weight:g}_{speaker_weight:g}", build)
            self._cache[key] = sp.csr_matrix(
                (arrays["data"], arrays["indices"], arrays["indptr"]), shape=(self.n_nodes, self.n_nodes), copy=False
            )
        return self._cache[key]

    def derived_arrays(self, name: str, build: Callable[[], Mapping[str, np.ndarray]]) -> Mapping[str, np.ndarray]:
        """Arrays derived from this revision that cost time to build (a matrix, an operator):
        mapped from ``cache_dir/<name>/`` when some process saved them, else built, saved
        there (``<key>.npy``, a temporary directory renamed into place: when two processes
        race, one set wins and both map it) and mapped, so every process shares one copy.
        Kept in memory for a projection not on disk. ``name`` must say everything the
        arrays depend on beyond the revision (settings, parameters)."""
        key = f"derived:{name}"
        if key not in self._cache:
            directory = self.cache_dir / name if self.cache_dir is not None else None
            arrays = _load_derived(directory) if directory is not None else None
            if arrays is None:
                built = {k: np.asarray(v) for k, v in build().items()}
                arrays = built
                if directory is not None:
                    with contextlib.suppress(OSError):
                        _save_derived(directory, built)
                    arrays = _load_derived(directory) or built
            self._cache[key] = arrays
        return self._cache[key]

    def walk_operator(
        self, as_of_ms: int | None = None, next_weight: float = 0.0, speaker_weight: float = 1.0
    ) -> sp.csr_matrix | RowBlocks:
        """:meth:`transition` as PPR multiplies by it: split over the cores on large graphs
        (:func:`graphmem.retrieve.ppr.parallel_operator`)."""
        key = f"operator:{as_of_ms}:{next_weight}:{speaker_weight}"
        if key not in self._cache:
            self._cache[key] = parallel_operator(self.transition(as_of_ms, next_weight, speaker_weight))
        return self._cache[key]

    def igraph(self) -> igraph.Graph:
        """The projection as an undirected weighted ``igraph.Graph`` (node attribute ``uuid``)."""
        import igraph as ig

        adjacency = sp.triu(self.adjacency()).tocoo()
        graph = ig.Graph(n=self.n_nodes, edges=list(zip(adjacency.row.tolist(), adjacency.col.tolist(), strict=True)))
        graph.es["weight"] = adjacency.data.tolist()
        graph.vs["uuid"] = list(self.entity_ids) + list(self.episode_ids)
        graph.vs["kind"] = ["entity"] * self.n_entities + ["episode"] * len(self.episode_ids)
        return graph

    # -- incremental update ------------------------------------------------------
    def extend(self, delta: Delta, revision: int) -> bool:
        """Add what one ingestion run wrote (a ``GraphDelta``) to this projection on disk, in
        place, and move this object to ``revision``.

        Only additions are handled; after removals the caller reloads instead. Facts already
        present (the same statement from another passage) gain the new supporting episodes
        rather than a duplicate. Returns False when it cannot (the projection is not on
        disk, or the files moved on to another revision meanwhile): reload then.
        """
        if self._disk is None:
            return False
        group_dir = self._disk.group_dir
        if not extend_on_disk(group_dir, delta, self.revision, revision):
            return False
        fresh = open_projection(group_dir)
        if fresh is None or fresh.revision != revision:
            return False
        self.__dict__.update(fresh.__dict__)
        return True


def _normalised(adjacency: sp.csr_matrix) -> np.ndarray:
    """The values of :func:`graphmem.retrieve.ppr.transition_matrix` of ``adjacency`` (canonical
    CSR) in its own sparsity: each entry divided by its column's degree, the same float32 ops."""
    degree = np.asarray(adjacency.sum(axis=0)).ravel()
    inverse = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0).astype(np.float32)
    return (np.asarray(adjacency.data, dtype=np.float32) * inverse[adjacency.indices]).astype(np.float32)


# -- on disk -------------------------------------------------------------------------------------
def _load_derived(directory: Path) -> dict[str, np.ndarray] | None:
    try:
        names = sorted(directory.glob("*.npy"))
        if not names:
            return None
        return {f.stem: np.load(f, mmap_mode="r", allow_pickle=False) for f in names}
    except (OSError, ValueError):
        return None


def _save_derived(directory: Path, arrays: Mapping[str, np.ndarray]) -> None:
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.parent / f".{directory.name}.{os.getpid()}.{uuidlib.uuid4().hex[:8]}.tmp"
    tmp.mkdir()
    try:
        for key, value in arrays.items():
            with open(tmp / f"{key}.npy", "wb") as handle:
                np.save(handle, np.ascontiguousarray(value), allow_pickle=False)
                handle.flush()
                os.fsync(handle.fileno())
        os.rename(tmp, directory)  # fails when another process saved it first: theirs is as good
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class DiskState:
    """Where an on-disk projection's files are, and its manifest."""

    group_dir: Path
    manifest: dict
    orders: dict[str, np.ndarray]
    key_hashes: np.ndarray

    @property
    def build_dir(self) -> Path:
        return self.group_dir / self.manifest["build"]

    @property
    def revision_dir(self) -> Path:
        return self.build_dir / f"r{self.manifest['revision']}"


def remove_group_cache(cache_dir: Path, group_id: str) -> None:
    """Delete a group's projection files (after the group itself was dropped)."""
    import shutil

    shutil.rmtree(group_dir_of(cache_dir, group_id), ignore_errors=True)


def group_dir_of(cache_dir: Path, group_id: str) -> Path:
    """``<cache>/<group>``: the group id itself when it is a safe file name, else a hash of it."""
    if re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", group_id) and group_id.strip(".") and not group_id.startswith("."):
        return Path(cache_dir) / group_id
    return Path(cache_dir) / ("g-" + hashlib.sha256(group_id.encode("utf-8")).hexdigest()[:24])


def _dtype(spec: Any, manifest: dict) -> np.dtype:
    return np.dtype(manifest["vector_dtype"]) if spec == "vector" else np.dtype(spec)


def _tail(spec: tuple, manifest: dict) -> tuple[int, ...]:
    return tuple(manifest["dim"] if t == "dim" else t for t in spec)


def _open(group_dir: Path, manifest: dict) -> Projection:
    """Map the files ``manifest`` describes (raises OSError/CorruptColumns/KeyError when they are not there)."""
    if manifest.get("format") != FORMAT:
        raise CorruptColumns(f"format {manifest.get('format')!r}, this code reads {FORMAT}")
    build = group_dir / manifest["build"]
    counts = manifest["counts"]

    def array(name: str) -> np.ndarray:
        table, dtype, tail = ARRAYS[name]
        return mmap_array(build / f"{name}.bin", _dtype(dtype, manifest), counts[table], _tail(tail, manifest))

    def offsets(name: str, table: str) -> np.ndarray:
        return mmap_array(build / f"{name}.off", np.int64, counts[table] + 1)

    def strings(name: str) -> StrColumn:
        off = offsets(name, STRINGS[name])
        return StrColumn(off, mmap_array(build / f"{name}.utf8", np.uint8, int(off[-1])))

    ids = {
        name: IdColumn(mmap_array(build / f"{name}.bin", f"S{manifest['id_width'][name]}", counts[table]))
        for name, table in IDS.items()
    }
    orders = _orders(build / f"r{manifest['revision']}", counts)
    arrays = {name: array(name) for name in ARRAYS}
    terms = strings("terms")
    vocabulary = KeyMap(HashIndex(arrays["term_hash"], orders["term_hash"], terms.__getitem__), counts["terms"])
    segments = [Segment.open(build / meta["dir"], meta) for meta in manifest["bm25"]]
    bm25 = BM25Index(segments, arrays["episode_doc_len"], vocabulary)
    fact_episodes = FactEpisodes(
        offsets("fact_episode_offsets", "facts"),
        arrays["fact_episode_rows"],
        arrays["fact_episode_extra"],
        ids["episode_ids"],
    )
    return Projection(
        entity_ids=ids["entity_ids"],
        entity_names=strings("entity_names"),
        episode_ids=ids["episode_ids"],
        episode_times=arrays["episode_times"],
        episode_vectors=arrays["episode_vectors"],
        mention_pairs=arrays["mention_pairs"],
        fact_ids=ids["fact_ids"],
        fact_texts=strings("fact_texts"),
        fact_ends=arrays["fact_ends"],
        fact_valid=arrays["fact_valid"],
        fact_episodes=fact_episodes,
        fact_vectors=arrays["fact_vectors"],
        synonym_pairs=arrays["synonym_pairs"],
        synonym_scores=arrays["synonym_scores"],
        revision=int(manifest["revision"]),
        next_pairs=arrays["next_pairs"],
        mention_speaker=arrays["mention_speaker"],
        episode_questions=arrays["episode_questions"],
        bm25=bm25,
        fact_valid_updates=arrays["fact_valid_updates"],
        _disk=DiskState(group_dir, manifest, orders, arrays["entity_key_hash"]),
    )


def _orders(rdir: Path, counts: Mapping[str, int]) -> dict[str, np.ndarray]:
    """The sorted orders of one revision (``rdir``), mapped."""
    orders = {}
    for name in ORDERED:
        table = IDS.get(name) or ARRAYS[name][0]
        orders[name] = mmap_array(rdir / f"{name}.order", np.int64, counts[table])
    return orders


def open_projection(group_dir: Path) -> Projection | None:
    """The group's current projection on disk, mapped; None when there is none (or it is
    unreadable: a crash before its manifest, a format this code does not read)."""
    for _ in range(3):  # a rebuild may delete the files between reading the manifest and mapping them
        manifest = read_json(Path(group_dir) / MANIFEST)
        if manifest is None:
            return None
        try:
            return _open(Path(group_dir), manifest)
        except (OSError, CorruptColumns, KeyError, TypeError, ValueError) as error:
            if read_json(Path(group_dir) / MANIFEST) == manifest:
                log.warning("the projection in %s does not open (%s); it will be rebuilt", group_dir, error)
                return None  # not a race: the files are broken
    return None


class ColumnWriter:
    """Appends rows to the column files of one build, tracking the rows each file holds;
    :meth:`counts` checks every column of a table agrees before a manifest is written."""

    def __init__(self, build: Path, manifest: dict) -> None:
        self.build = build
        self.manifest = manifest
        counts = manifest.get("counts", {})
        self.rows: dict[str, int] = {}
        for name, (table, _, _) in ARRAYS.items():
            self.rows[name] = counts.get(table, 0)
        for name, table in {**STRINGS, **OFFSETS, **IDS}.items():
            self.rows[name] = counts.get(table, 0)
        self._offset_end: dict[str, int] = {}

    def _row_bytes(self, name: str) -> int:
        table, dtype, tail = ARRAYS[name]
        return _dtype(dtype, self.manifest).itemsize * int(np.prod(_tail(tail, self.manifest), dtype=np.int64))

    def array(self, name: str, values: ArrayLike) -> None:
        _, dtype, tail = ARRAYS[name]
        column = np.asarray(values, dtype=_dtype(dtype, self.manifest)).reshape((-1, *_tail(tail, self.manifest)))
        append_array(self.build / f"{name}.bin", column, self.rows[name] * self._row_bytes(name))
        self.rows[name] += len(column)

    def _offsets(self, name: str, lengths: np.ndarray) -> int:
        """Append offsets for rows of ``lengths``; returns where their data starts."""
        path = self.build / f"{name}.off"
        rows = self.rows[name]
        if name not in self._offset_end:
            if rows == 0:
                write_array(path, np.zeros(1, np.int64))
                self._offset_end[name] = 0
            else:
                self._offset_end[name] = int(mmap_array(path, np.int64, rows + 1)[-1])
        start = self._offset_end[name]
        ends = start + np.cumsum(np.asarray(lengths, dtype=np.int64))
        append_array(path, ends, (rows + 1) * 8)
        self.rows[name] += len(lengths)
        if len(ends):
            self._offset_end[name] = int(ends[-1])
        return start

    def strings(self, name: str, values: Sequence[str]) -> None:
        ends, data = encode_strings(values)
        lengths = np.diff(np.concatenate([np.zeros(1, np.int64), ends]))
        start = self._offsets(name, lengths)
        append_array(self.build / f"{name}.utf8", data, start)

    def csr(self, name: str, lengths: Sequence[int]) -> None:
        self._offsets(name, np.asarray(lengths, dtype=np.int64))

    def ids(self, name: str, values: np.ndarray) -> None:
        width = values.dtype.itemsize
        append_array(self.build / f"{name}.bin", values, self.rows[name] * width)
        self.rows[name] += len(values)

    def counts(self) -> dict[str, int]:
        tables: dict[str, set[int]] = {}
        for name, rows in self.rows.items():
            table = ARRAYS[name][0] if name in ARRAYS else {**STRINGS, **OFFSETS, **IDS}[name]
            tables.setdefault(table, set()).add(rows)
        bad = {t: sorted(r) for t, r in tables.items() if len(r) > 1}
        if bad:
            raise CorruptColumns(f"columns of one table disagree on their rows: {bad}")
        return {t: next(iter(r)) for t, r in tables.items()}


def _vectors(rows: list[dict], dim: int) -> np.ndarray:
    out = np.zeros((len(rows), dim), dtype=np.float32)
    for i, row in enumerate(rows):
        vector = row.get("embedding")
        if vector is not None and len(vector) == dim:
            out[i] = np.asarray(vector, dtype=np.float32)
    return out


def _chunks(rows: Iterable[dict], size: int = CHUNK) -> Iterator[list[dict]]:
    chunk: list[dict] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _valid(f: Mapping[str, Any]) -> tuple[int, int]:
    return (
        f["valid_at"] if f.get("valid_at") is not None else -FAR_FUTURE,
        f["invalid_at"] if f.get("invalid_at") is not None else FAR_FUTURE,
    )


class _Rows:
    """Rows of ids: the ids already in the columns (sorted lookup) plus those added in this
    write (a dict), so a new mention can point at an entity created by the same write."""

    def __init__(self, ids: np.ndarray, order: np.ndarray) -> None:
        self.ids, self.order = ids, order
        self.width = ids.dtype.itemsize
        self.added: dict[str, int] = {}

    def find(self, keys: Sequence[str]) -> np.ndarray:
        keys = list(keys)
        out = np.full(len(keys), -1, dtype=np.int64)
        if not keys:
            return out
        if len(self.ids):
            fits = np.array([len(k.encode("utf-8")) <= self.width for k in keys], dtype=bool)
            if fits.any():
                found = find_sorted(
                    self.ids, self.order, encode_ids([k for k, f in zip(keys, fits, strict=True) if f], self.width)
                )
                out[np.flatnonzero(fits)] = found
        if self.added:
            for i, key in enumerate(keys):
                if out[i] < 0:
                    out[i] = self.added.get(key, -1)
        return out


def _embedding_dim(rows: Iterable[dict]) -> int | None:
    return next((len(r["embedding"]) for r in rows if r.get("embedding") is not None), None)


def _build(graph: Graph, build: Path, revision: int, vector_dtype: str, dim: int | None = None) -> dict:
    """Stream ``graph``'s projection queries into a new build directory; returns its manifest."""
    build.mkdir(parents=True)
    episodes_pages = graph.pages("projection_episodes")
    first_episodes = next(_chunks(episodes_pages), [])
    if dim is None:
        dim = _embedding_dim(first_episodes)
    facts_pages = graph.pages("projection_facts")
    first_facts: list[dict] = []
    if dim is None:  # no passage vector to size them by: take the facts'
        first_facts = next(_chunks(facts_pages), [])
        dim = _embedding_dim(first_facts) or 0
    manifest = {
        "format": FORMAT,
        "revision": revision,
        "build": build.name,
        "dim": int(dim),
        "vector_dtype": np.dtype(vector_dtype).name,
        "counts": {},
        "bm25": [],
    }
    out = ColumnWriter(build, manifest)
    for name in (*STRINGS, *OFFSETS):  # offsets start with a 0, even for a table left empty
        out.csr(name, [])
    entity_ids = _build_entities(graph, out)
    entities = _Rows(entity_ids, order_of(entity_ids))
    bm25 = BM25Builder()
    episode_ids = _build_episodes(_with_first(first_episodes, _chunks(episodes_pages)), out, dim, bm25)
    episodes = _Rows(episode_ids, order_of(episode_ids))
    _build_mentions(graph, out, entities, episodes)
    fact_ids = _build_facts(_with_first(first_facts, _chunks(facts_pages)), out, dim, entities, episodes)
    _build_edges(graph, out, entities, episodes)
    _finish_build(build, revision, manifest, out, bm25, entity_ids, episodes, fact_ids)
    return manifest


def _id_array(chunks: list[np.ndarray]) -> np.ndarray:
    """Pages of encoded ids as one column, as wide as the widest."""
    width = max((c.dtype.itemsize for c in chunks), default=1)
    return np.concatenate([c.astype(f"S{width}") for c in chunks]) if chunks else np.zeros(0, f"S{width}")


def _build_entities(graph: Graph, out: ColumnWriter) -> np.ndarray:
    """The entity columns; returns the entity ids."""
    from graphmem.model import entity_key

    chunks = []
    for page in _chunks(graph.pages("projection_entities")):
        chunks.append(encode_ids([r["uuid"] for r in page]))
        names = [r["name"] or "" for r in page]
        out.strings("entity_names", names)
        out.array("entity_key_hash", key_hashes(entity_key(n) for n in names))
    return _id_array(chunks)


def _build_episodes(pages: Iterator[list[dict]], out: ColumnWriter, dim: int, bm25: BM25Builder) -> np.ndarray:
    """The episode columns, with their BM25 postings added to ``bm25`` (texts are read here,
    page by page, and not kept); returns the episode ids."""
    chunks = []
    for page in pages:
        chunks.append(encode_ids([r["uuid"] for r in page]))
        texts = [r["content"] or "" for r in page]
        out.array("episode_times", [r["occurred_at"] if r["occurred_at"] is not None else -1 for r in page])
        out.array("episode_vectors", _vectors(page, dim))
        out.array("episode_questions", [ends_with_question(t) for t in texts])
        out.array("episode_doc_len", bm25.add(texts))
    return _id_array(chunks)


def _build_mentions(graph: Graph, out: ColumnWriter, entities: _Rows, episodes: _Rows) -> None:
    for page in _chunks(graph.pages("projection_mentions")):
        pairs = np.stack([episodes.find([m["episode"] for m in page]), entities.find([m["entity"] for m in page])], 1)
        keep = (pairs >= 0).all(axis=1)
        out.array("mention_pairs", pairs[keep])
        out.array("mention_speaker", np.array([m.get("role") == "speaker" for m in page], dtype=bool)[keep])


def _build_facts(
    pages: Iterator[list[dict]], out: ColumnWriter, dim: int, entities: _Rows, episodes: _Rows
) -> np.ndarray:
    """The fact columns (those whose ends and episodes are in the projection); returns the fact ids."""
    chunks = []
    for page in pages:
        ends = np.stack([entities.find([f["subject"] for f in page]), entities.find([f["object"] for f in page])], 1)
        lists = [list(f["episodes"] or []) for f in page]
        flat = episodes.find([e for episodes_of in lists for e in episodes_of])
        per_fact = np.split(flat, np.cumsum([len(x) for x in lists])[:-1]) if lists else []
        # a fact asserted only by passages of sources still being written is not visible yet
        # (projection_episodes holds complete sources only)
        visible = [
            bool((e >= 0).all()) and (not len(lists[i]) or bool((r >= 0).any()))
            for i, (e, r) in enumerate(zip(ends, per_fact, strict=True))
        ]
        kept = [f for f, k in zip(page, visible, strict=True) if k]
        rows = [r[r >= 0] for r, k in zip(per_fact, visible, strict=True) if k]
        chunks.append(encode_ids([f["uuid"] for f in kept]))
        out.strings("fact_texts", [f["text"] or "" for f in kept])
        out.array("fact_ends", ends[np.array(visible, dtype=bool)] if len(visible) else np.zeros((0, 2), np.int32))
        out.array("fact_valid", [_valid(f) for f in kept] if kept else np.zeros((0, 2), np.int64))
        out.array("fact_vectors", _vectors(kept, dim))
        out.csr("fact_episode_offsets", [len(r) for r in rows])
        out.array("fact_episode_rows", np.concatenate(rows) if rows else np.zeros(0, np.int32))
    return _id_array(chunks)


def _build_edges(graph: Graph, out: ColumnWriter, entities: _Rows, episodes: _Rows) -> None:
    """The SYNONYM edges between entities and the NEXT edges between episodes."""
    for page in _chunks(graph.pages("projection_synonyms")):
        pairs = np.stack([entities.find([s["a"] for s in page]), entities.find([s["b"] for s in page])], 1)
        keep = (pairs >= 0).all(axis=1)
        out.array("synonym_pairs", pairs[keep])
        out.array("synonym_scores", np.array([s["score"] for s in page], dtype=np.float32)[keep])
    for page in _chunks(graph.pages("projection_next")):
        pairs = np.stack([episodes.find([x["a"] for x in page]), episodes.find([x["b"] for x in page])], 1)
        out.array("next_pairs", pairs[(pairs >= 0).all(axis=1)])


def _finish_build(
    build: Path,
    revision: int,
    manifest: dict,
    out: ColumnWriter,
    bm25: BM25Builder,
    entity_ids: np.ndarray,
    episodes: _Rows,
    fact_ids: np.ndarray,
) -> None:
    """The id columns, the BM25 terms and segment, the row counts in ``manifest``, and the
    sorted orders of the revision."""
    episode_ids = episodes.ids
    for name, values in (("entity_ids", entity_ids), ("episode_ids", episode_ids), ("fact_ids", fact_ids)):
        out.ids(name, values)
    manifest["id_width"] = {
        name: int(v.dtype.itemsize)
        for name, v in (("entity_ids", entity_ids), ("episode_ids", episode_ids), ("fact_ids", fact_ids))
    }
    out.strings("terms", bm25.new_terms)
    out.array("term_hash", key_hashes(bm25.new_terms))
    manifest["bm25"] = [bm25.segment().save(build / "bm25-0")]
    manifest["counts"] = out.counts()
    write_orders(
        build / f"r{revision}",
        {
            "entity_ids": order_of(entity_ids),
            "episode_ids": episodes.order,
            "fact_ids": order_of(fact_ids),
            "entity_key_hash": order_of(mmap_array(build / "entity_key_hash.bin", np.uint64, len(entity_ids))),
            "term_hash": order_of(key_hashes(bm25.new_terms)),
        },
    )


def _with_first(first: list[dict], rest: Iterator[list[dict]]) -> Iterator[list[dict]]:
    if first:
        yield first
    yield from rest


def write_orders(rdir: Path, orders: dict[str, np.ndarray]) -> None:
    rdir.mkdir(parents=True, exist_ok=True)
    for name, order in orders.items():
        write_array(rdir / f"{name}.order", np.asarray(order, dtype=np.int64))
    sync_dir(rdir)


def build_on_disk(graph: Graph, group_dir: Path, revision: int, vector_dtype: str = "float32") -> None:
    """Build the projection from the store into ``group_dir`` (call with the group's lock held)."""
    write_build(group_dir, revision, lambda tmp: _build(graph, tmp, revision, vector_dtype))


def write_build(group_dir: Path, revision: int, fill: Callable[[Path], dict]) -> dict:
    """Make a new build of ``group_dir`` current: ``fill(directory)`` writes the columns into a
    new temporary directory and returns their manifest; the directory is renamed into place,
    then the manifest written, then what it supersedes deleted. A crash at any point leaves
    the previous build current (and a ``tmp-`` directory the next writer removes)."""
    group_dir.mkdir(parents=True, exist_ok=True)
    token = f"{revision}-{uuidlib.uuid4().hex[:12]}"
    tmp = group_dir / f"tmp-{token}"
    try:
        manifest = fill(tmp)
        manifest["build"] = f"b-{token}"
        sync_dir(tmp)
        os.rename(tmp, group_dir / manifest["build"])
        sync_dir(group_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_json(group_dir / MANIFEST, manifest)
    remove_stale(group_dir, manifest)
    return manifest


def remove_stale(group_dir: Path, manifest: dict | None = None) -> None:
    """Delete what the manifest no longer names: other builds, other revisions' directories,
    unused BM25 segments, temporary directories of builds that never finished (call with the
    group's lock held, so none of them is a build in progress), and the pickle of the
    format before this one."""
    manifest = manifest if manifest is not None else read_json(group_dir / MANIFEST)
    keep_build = manifest["build"] if manifest else None
    for child in group_dir.iterdir():
        if child.is_dir() and (
            child.name.startswith("tmp-") or (child.name.startswith("b-") and child.name != keep_build)
        ):
            shutil.rmtree(child, ignore_errors=True)
        elif child.name.startswith(".") and child.name.endswith(".tmp"):
            child.unlink(missing_ok=True)
    if manifest:
        build = group_dir / manifest["build"]
        segments = {m["dir"] for m in manifest["bm25"]}
        for child in build.iterdir():
            if child.is_dir() and (
                (child.name.startswith("r") and child.name != f"r{manifest['revision']}")
                or (child.name.startswith("bm25-") and child.name not in segments)
            ):
                shutil.rmtree(child, ignore_errors=True)
    pickle = group_dir.parent / f"projection-{group_dir.name}.pkl"
    pickle.unlink(missing_ok=True)


class NeedsRebuild(Exception):
    """An extension the columns cannot take in place (e.g. an id longer than its column's width)."""


def extend_on_disk(group_dir: Path, delta: Delta, base_revision: int, revision: int) -> bool:
    """Append ``delta`` (what one ingestion added) to the group's projection on disk, taking it
    from ``base_revision`` to ``revision``. True when the files are at ``revision`` afterwards
    (appended here, or another process got there first); False when they are at neither
    revision (or unreadable, or the delta does not fit the columns): the next search rebuilds."""
    group_dir = Path(group_dir)
    if not (group_dir / MANIFEST).exists():
        return False
    with locked(group_dir / LOCK):
        manifest = read_json(group_dir / MANIFEST)
        if manifest is None:
            return False
        if manifest["revision"] == revision:
            return True
        if manifest["revision"] != base_revision:
            return False
        try:
            projection = _open(group_dir, manifest)
            new = _append(projection, manifest, delta, revision)
        except (NeedsRebuild, CorruptColumns, OSError, KeyError, ValueError):
            return False
        write_json(group_dir / MANIFEST, new)
        remove_stale(group_dir, new)
    return True


def _id_bytes(column: Sequence[str]) -> np.ndarray:
    """The fixed-width bytes behind an id column of a projection opened from disk."""
    assert isinstance(column, IdColumn)
    return column.array


def _append(p: Projection, manifest: dict, delta: Delta, revision: int) -> dict:
    """Append the delta's rows to the columns of ``p`` (opened from ``manifest``); returns the
    manifest that commits them (not yet written)."""
    return _Appender(p, manifest, delta).run(revision)


@dataclass
class _NewFacts:
    """The facts of a delta sorted out against the columns: new ones (rows, vectors, their
    episode rows) and (fact, episode) support added to facts already stored."""

    rows: list[Mapping[str, Any]] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)
    episode_rows: list[list[int]] = field(default_factory=list)
    extra: list[tuple[int, int]] = field(default_factory=list)


class _Appender:
    """One extension of a projection on disk: the delta's rows appended table by table (in
    the order and form a full build writes them), then the BM25 segments and the sorted orders
    of the new revision, and the derived arrays carried forward."""

    def __init__(self, p: Projection, manifest: dict, delta: Delta) -> None:
        disk = p._disk
        assert disk is not None
        self.p, self.manifest, self.delta, self.disk = p, manifest, delta, disk
        self.build = disk.build_dir
        self.out = ColumnWriter(self.build, manifest)
        self.widths = manifest["id_width"]
        self.dim, self.counts = manifest["dim"], manifest["counts"]
        self.entities = _Rows(_id_bytes(p.entity_ids), disk.orders["entity_ids"])
        self.episodes = _Rows(_id_bytes(p.episode_ids), disk.orders["episode_ids"])
        self.facts = _Rows(_id_bytes(p.fact_ids), disk.orders["fact_ids"])
        #: the edges appended, for carrying the derived arrays forward
        self.new_edges: dict[str, np.ndarray] = {}

    def run(self, revision: int) -> dict:
        manifest = self.manifest
        new = {**manifest, "revision": revision, "counts": dict(manifest["counts"]), "bm25": list(manifest["bm25"])}
        self.append_entities()
        bm25 = self.append_episodes()
        self.append_mentions()
        self.append_nexts()
        self.append_facts(self.sort_facts())
        self.append_synonyms()
        new["counts"] = self.out.counts()
        new["bm25"] = self.bm25_segments(bm25)
        self.merge_orders(revision, new["counts"])
        _carry_forward(self.disk.revision_dir, self.build / f"r{revision}", self.counts, new["counts"], self.new_edges)
        return new

    def encode(self, name: str, values: list[str]) -> np.ndarray:
        try:
            return encode_ids(values, self.widths[name])
        except ValueError as error:
            raise NeedsRebuild(str(error)) from error

    def pairs(self, rows: _Rows, a: list[str], b: list[str], others: _Rows | None = None) -> np.ndarray:
        """Row pairs of the ids ``a`` (in ``rows``) and ``b`` (in ``others``, else ``rows``); -1 where unknown."""
        return np.stack([rows.find(a), (others if others is not None else rows).find(b)], 1).reshape(-1, 2)

    def append_entities(self) -> None:
        from graphmem.model import entity_key

        delta, entities, out = self.delta, self.entities, self.out
        found = entities.find([row["uuid"] for row in delta.entities])
        fresh: list[Mapping[str, Any]] = []
        for row, at in zip(delta.entities, found, strict=True):
            if at < 0 and row["uuid"] not in entities.added:
                entities.added[row["uuid"]] = self.counts["entities"] + len(fresh)
                fresh.append(row)
        names = [row["name"] or "" for row in fresh]
        out.ids("entity_ids", self.encode("entity_ids", [row["uuid"] for row in fresh]))
        out.strings("entity_names", names)
        out.array("entity_key_hash", key_hashes(entity_key(n) for n in names))

    def append_episodes(self) -> BM25Builder:
        """The new episodes, and their postings (returned, to become a new BM25 segment)."""
        delta, episodes, out, dim, counts = self.delta, self.episodes, self.out, self.dim, self.counts
        found = episodes.find([row["uuid"] for row in delta.episodes])
        fresh: list[int] = []
        for i, (row, at) in enumerate(zip(delta.episodes, found, strict=True)):
            if at < 0 and row["uuid"] not in episodes.added:
                episodes.added[row["uuid"]] = counts["episodes"] + len(fresh)
                fresh.append(i)
        fresh_rows = [delta.episodes[i] for i in fresh]
        texts = [row.get("search_text") or row.get("content") or "" for row in fresh_rows]
        vocabulary = self.p.bm25.vocabulary if self.p.bm25 is not None else {}
        bm25 = BM25Builder(vocabulary.get, counts["terms"], counts["episodes"])
        out.ids("episode_ids", self.encode("episode_ids", [row["uuid"] for row in fresh_rows]))
        out.array(
            "episode_times", [row["occurred_at"] if row.get("occurred_at") is not None else -1 for row in fresh_rows]
        )
        vectors = (
            np.vstack([np.asarray(delta.episode_vectors[i], dtype=np.float32).reshape(-1) for i in fresh])
            if fresh
            else np.zeros((0, dim), np.float32)
        )
        if fresh and vectors.shape[1] != dim:
            raise NeedsRebuild(f"passage vectors of {vectors.shape[1]} floats, the projection holds {dim}")
        out.array("episode_vectors", vectors)
        out.array("episode_questions", [ends_with_question(t) for t in texts])
        out.array("episode_doc_len", bm25.add(texts))
        out.strings("terms", bm25.new_terms)
        out.array("term_hash", key_hashes(bm25.new_terms))
        return bm25

    def append_mentions(self) -> None:
        """Mentions of the new episodes (in episode order, as a full build lists them)."""
        mentions = self.delta.mentions
        pairs = self.pairs(
            self.episodes, [m["episode"] for m in mentions], [m["entity"] for m in mentions], self.entities
        )
        keep = (pairs >= 0).all(axis=1) & (pairs[:, 0] >= self.counts["episodes"])
        speaker = np.array([m.get("role") == "speaker" for m in mentions], dtype=bool)[keep]
        pairs = pairs[keep]
        order = np.lexsort((pairs[:, 1], pairs[:, 0]))  # by episode, then entity: as a full build lists them
        self.new_edges["mentions"], self.new_edges["speaker"] = pairs[order], speaker[order]
        self.out.array("mention_pairs", self.new_edges["mentions"])
        self.out.array("mention_speaker", self.new_edges["speaker"])

    def append_nexts(self) -> None:
        nexts = getattr(self.delta, "nexts", [])
        pairs = self.pairs(self.episodes, [x["from"] for x in nexts], [x["to"] for x in nexts])
        self.new_edges["nexts"] = pairs[(pairs >= 0).all(axis=1)]
        self.out.array("next_pairs", self.new_edges["nexts"])

    def sort_facts(self) -> _NewFacts:
        """New facts are appended; known ones gain the new episodes that assert them."""
        facts, counts, sorted_out = self.facts, self.counts, _NewFacts()
        extra, new_rows = sorted_out.extra, sorted_out.episode_rows
        found = facts.find([row["uuid"] for row in self.delta.facts])
        for row, vector, at in zip(self.delta.facts, self.delta.fact_vectors, found, strict=True):
            supporting = [int(e) for e in self.episodes.find(list(row.get("episodes") or [])) if e >= 0]
            if at >= 0:
                known = set(self.p.fact_episode_rows(int(at)).tolist()) | {e for f, e in extra if f == at}
                extra += [(int(at), e) for e in dict.fromkeys(supporting) if e not in known]
            elif row["uuid"] in facts.added:
                listed = new_rows[facts.added[row["uuid"]] - counts["facts"]]
                listed += [e for e in dict.fromkeys(supporting) if e not in listed]
            else:
                ends = self.entities.find([row["subject"], row["object"]])
                if (ends < 0).any() or (row.get("episodes") and not supporting):
                    continue
                facts.added[row["uuid"]] = counts["facts"] + len(sorted_out.rows)
                sorted_out.rows.append(row)
                sorted_out.vectors.append(np.asarray(vector, dtype=np.float32).reshape(-1))
                new_rows.append(list(dict.fromkeys(supporting)))
        return sorted_out

    def append_facts(self, new: _NewFacts) -> None:
        out, dim = self.out, self.dim
        ends = self.entities.find([x for f in new.rows for x in (f["subject"], f["object"])]).reshape(-1, 2)
        if new.vectors and any(len(v) != dim for v in new.vectors):
            raise NeedsRebuild(f"fact vectors of another width than the projection's {dim}")
        out.ids("fact_ids", self.encode("fact_ids", [f["uuid"] for f in new.rows]))
        out.strings("fact_texts", [f["text"] or "" for f in new.rows])
        valid = np.array([_valid(f) for f in new.rows], dtype=np.int64).reshape(-1, 2)
        self.append_validity(valid, ends)
        out.array("fact_ends", ends)
        out.array("fact_valid", valid)
        out.array("fact_vectors", np.vstack(new.vectors) if new.vectors else np.zeros((0, dim), np.float32))
        out.csr("fact_episode_offsets", [len(r) for r in new.episode_rows])
        out.array("fact_episode_rows", np.array([e for r in new.episode_rows for e in r], dtype=np.int32))
        out.array("fact_episode_extra", np.array(new.extra, dtype=np.int32).reshape(-1, 2))

    def append_validity(self, valid: np.ndarray, ends: np.ndarray) -> None:
        """The validity the run recomputed (a newer value of a single-valued fact ends the stored
        one), in write order: new facts take it into ``valid`` before they are written, stored ones
        get an update row. Sets the fact edges of the present: new current facts, and stored ones
        that became current (``facts``) or ended (``facts_ended``)."""
        p, first_new = self.p, self.counts["facts"]
        validity = getattr(self.delta, "validity", [])
        changed: dict[int, tuple[int, int]] = {}
        for v, row in zip(validity, self.facts.find([v["uuid"] for v in validity]), strict=True):
            if row >= first_new:
                valid[row - first_new] = _valid(v)
            elif row >= 0:
                changed[int(row)] = _valid(v)
        updated = np.array(sorted(changed), dtype=np.int64)
        after = np.array([changed[r] for r in updated.tolist()], dtype=np.int64).reshape(-1, 2)
        before = np.array(p.fact_valid[updated], dtype=np.int64).reshape(-1, 2)
        known_rows, known_values = p._valid_updates()
        if len(known_rows) and len(updated):
            where = {int(r): i for i, r in enumerate(known_rows.tolist())}
            for i, r in enumerate(updated.tolist()):
                if r in where:
                    before[i] = known_values[where[r]]
        differs = (before != after).any(axis=1)
        self.out.array("fact_valid_updates", np.column_stack([updated[differs], after[differs]]).reshape(-1, 3))
        was_now, is_now = before[:, 1] == FAR_FUTURE, after[:, 1] == FAR_FUTURE
        old_ends = np.asarray(p.fact_ends[updated], dtype=np.int64).reshape(-1, 2)
        self.new_edges["facts"] = np.concatenate([ends[valid[:, 1] == FAR_FUTURE], old_ends[~was_now & is_now]])
        self.new_edges["facts_ended"] = old_ends[was_now & ~is_now]

    def append_synonyms(self) -> None:
        synonyms = self.delta.synonyms
        pairs = self.pairs(self.entities, [s["a"] for s in synonyms], [s["b"] for s in synonyms])
        keep = (pairs >= 0).all(axis=1)
        self.new_edges["synonyms"] = pairs[keep]
        self.new_edges["synonym_scores"] = np.array([s["score"] for s in synonyms], dtype=np.float32)[keep]
        self.out.array("synonym_pairs", self.new_edges["synonyms"])
        self.out.array("synonym_scores", self.new_edges["synonym_scores"])

    def bm25_segments(self, bm25: BM25Builder) -> list[dict]:
        """The BM25 segments: the new one appended, merged into its predecessor while nearly as large."""
        manifest, build = self.manifest, self.build
        segments = [Segment.open(build / meta["dir"], meta) for meta in manifest["bm25"]]
        merged, kept = add_segment(segments, bm25.segment())
        taken = {m["dir"] for m in manifest["bm25"]}
        metas = list(manifest["bm25"][:kept])
        serial = max((int(d.split("-")[1]) for d in taken), default=-1) + 1
        for segment in merged[kept:]:
            while f"bm25-{serial}" in taken:
                serial += 1
            metas.append(segment.save(build / f"bm25-{serial}"))
            taken.add(f"bm25-{serial}")
        return metas

    def merge_orders(self, revision: int, new_counts: dict) -> None:
        """The sorted orders of this revision: the old ones with the new rows merged in."""
        build, counts = self.build, self.counts
        ids = {
            name: mmap_array(build / f"{name}.bin", f"S{self.widths[name]}", new_counts[table])
            for name, table in IDS.items()
        }
        hashes = {
            name: mmap_array(build / f"{name}.bin", np.uint64, new_counts[ARRAYS[name][0]])
            for name in ("entity_key_hash", "term_hash")
        }
        old = {
            "entity_ids": counts["entities"],
            "episode_ids": counts["episodes"],
            "fact_ids": counts["facts"],
            "entity_key_hash": counts["entities"],
            "term_hash": counts["terms"],
        }
        write_orders(
            build / f"r{revision}",
            {name: merged_order({**ids, **hashes}[name], self.disk.orders[name], old[name]) for name in ORDERED},
        )


def _carry_forward(old_dir: Path, new_dir: Path, old: dict, new: dict, edges: dict) -> None:
    """The previous revision's derived arrays with the appended rows added (new nodes, new
    edges), saved for the new revision: the first query after an ingestion maps them instead
    of building them from every edge (a pass over the old arrays instead of one over every
    edge; benchmarks/README.md has both times). What cannot be carried is left to be built on use."""
    E0, P0, E1, P1 = old["entities"], old["episodes"], new["entities"], new["episodes"]
    mentions = edges["mentions"].astype(np.int64)
    for directory in sorted(d for d in old_dir.iterdir() if d.is_dir() and not d.name.startswith(".")):
        name = directory.name
        arrays = _load_derived(directory)
        if arrays is None:
            continue
        try:
            if name == "entity-counts":
                counts = np.zeros(E1, np.float32)
                counts[:E0] = arrays["counts"]
                counts += np.bincount(mentions[:, 1], minlength=E1).astype(np.float32)
                _save_derived(new_dir / name, {"counts": counts})
            elif name == "incidence":
                rows = np.bincount(mentions[:, 0] - P0, minlength=P1 - P0)  # mentions of new episodes, sorted
                indptr = np.concatenate([arrays["indptr"], arrays["indptr"][-1] + np.cumsum(rows)]).astype(
                    arrays["indptr"].dtype if len(mentions) + arrays["indptr"][-1] < 2**31 else np.int64
                )
                _save_derived(
                    new_dir / name,
                    {
                        "data": np.concatenate([arrays["data"], np.ones(len(mentions), np.float32)]),
                        "indices": np.concatenate([arrays["indices"], mentions[:, 1].astype(arrays["indices"].dtype)]),
                        "indptr": indptr,
                    },
                )
            elif name.startswith("adjacency_"):
                _, next_weight, speaker_weight = name.split("_")
                matrix = _adjacency_extended(arrays, E0, P0, E1, P1, edges, float(next_weight), float(speaker_weight))
                _save_derived(new_dir / name, {"data": matrix.data, "indices": matrix.indices, "indptr": matrix.indptr})
                _save_derived(new_dir / f"transition_{next_weight}_{speaker_weight}", {"data": _normalised(matrix)})
        except (OSError, ValueError, KeyError) as error:
            log.warning("%s not carried to the new revision (%s): built on first use", name, error)


def _adjacency_extended(
    old: Mapping[str, np.ndarray],
    E0: int,
    P0: int,
    E1: int,
    P1: int,
    edges: dict,
    next_weight: float,
    speaker_weight: float,
) -> sp.csr_matrix:
    """The saved adjacency of the previous revision in the new node numbering (new entities
    come before the episodes, so old episode nodes move up by the new entities), plus the
    new edges; canonical CSR, as :meth:`Projection.saved_adjacency` builds it."""
    shift, n1 = E1 - E0, E1 + P1
    indptr = np.asarray(old["indptr"])
    indptr = np.concatenate(
        [
            indptr[: E0 + 1],
            np.full(shift, indptr[E0], indptr.dtype),
            indptr[E0 + 1 :],
            np.full(P1 - P0, indptr[-1], indptr.dtype),
        ]
    )
    indices = np.asarray(old["indices"])
    indices = np.where(indices >= E0, indices + shift, indices).astype(indices.dtype) if shift else indices
    base = sp.csr_matrix((np.asarray(old["data"]), indices, indptr), shape=(n1, n1), copy=False)
    rows, cols, weights = [], [], []
    m = edges["mentions"]
    if len(m):
        rows.append(m[:, 0].astype(np.int64) + E1)
        cols.append(m[:, 1].astype(np.int64))
        weights.append(np.where(edges["speaker"], np.float32(speaker_weight), np.float32(1.0)).astype(np.float32))
    if next_weight > 0 and len(edges["nexts"]):
        rows.append(edges["nexts"][:, 0].astype(np.int64) + E1)
        cols.append(edges["nexts"][:, 1].astype(np.int64) + E1)
        weights.append(np.full(len(edges["nexts"]), next_weight, np.float32))
    ended = edges.get("facts_ended", np.zeros((0, 2), np.int64))
    for pairs, values in (
        (edges["facts"], None),
        (edges["synonyms"], edges["synonym_scores"]),
        (ended, np.full(len(ended), -1.0, np.float32)),
    ):  # a fact that ended leaves the walk
        if len(pairs):
            rows.append(pairs[:, 0].astype(np.int64))
            cols.append(pairs[:, 1].astype(np.int64))
            weights.append(np.ones(len(pairs), np.float32) if values is None else values.astype(np.float32))
    if not rows:
        return base
    r, c, w = np.concatenate(rows), np.concatenate(cols), np.concatenate(weights)
    added = sp.coo_matrix(
        (np.concatenate([w, w]), (np.concatenate([r, c]), np.concatenate([c, r]))), shape=(n1, n1)
    ).tocsr()
    added.sum_duplicates()
    matrix = sp.csr_matrix(base + added, dtype=np.float32)
    matrix.sum_duplicates()
    matrix.eliminate_zeros()  # edges of ended facts, gone as a build leaves them out
    matrix.sort_indices()
    return matrix


# -- loading ---------------------------------------------------------------------------------------
def load_projection(graph: Graph, cache_dir: Path | None = None, vector_dtype: str = "float32") -> Projection:
    """The current projection of ``graph``.

    With ``cache_dir`` (``<home>/cache``): the group's projection on disk, mapped, when it is
    at the store's revision; otherwise it is built there first (one process builds, under the
    group's lock; the others wait and map the result). Without: built into a temporary
    directory that is deleted at once (the mapped files live until the projection goes).
    """
    if cache_dir is None:
        with tempfile.TemporaryDirectory(prefix="graphmem-projection-") as tmp:
            group_dir = Path(tmp)
            with locked(group_dir / LOCK):
                build_on_disk(graph, group_dir, graph.revision(), vector_dtype)
            projection = open_projection(group_dir)
            assert projection is not None
            projection._disk = None  # nothing to extend or save next to: the directory is gone
            return projection
    group_dir = group_dir_of(Path(cache_dir), graph.group_id)
    revision = graph.revision()
    projection = open_projection(group_dir)
    if projection is not None and projection.revision == revision:
        return projection
    with locked(group_dir / LOCK):
        revision = graph.revision()
        projection = open_projection(group_dir)
        if projection is not None and projection.revision == revision:
            return projection  # another process built it while this one waited
        build_on_disk(graph, group_dir, revision, vector_dtype)
    projection = open_projection(group_dir)
    if projection is None:
        raise CorruptColumns(f"the projection just built in {group_dir} does not open")
    return projection


def refresh_on_disk(cache_dir: Path, group_id: str, delta: Delta, base_revision: int, revision: int) -> bool:
    """After an ingestion that took the store from ``base_revision`` to ``revision`` and only added
    ``delta``: extend the group's projection on disk if it is at ``base_revision`` (other
    processes then just map the new rows). True when the files are at ``revision`` afterwards."""
    return extend_on_disk(group_dir_of(Path(cache_dir), group_id), delta, base_revision, revision)
