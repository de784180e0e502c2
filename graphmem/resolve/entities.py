"""Entity resolution: which mentions name the same thing.

Three tests, cheapest first:

1. the same normalised name (case, punctuation, a leading article and a
   corporate suffix ignored) is the same entity outright: its uuid is derived
   from that key, so concurrent or repeated ingestion agrees without a lookup;
2. a near-identical spelling (rapidfuzz ratio >= ``fuzzy_ratio``) whose
   embedding is also close (cosine >= ``merge_cosine``) merges into the
   existing entity and is kept as an alias. The stored spellings compared are
   only those that share a piece with the name (see :class:`SpellingIndex`),
   so a lookup costs the same in a store of any size;
3. embedding neighbours above ``synonym_threshold`` that are not merged get a
   SYNONYM edge, which retrieval walks like any other edge. Neighbours among the
   stored entities come from matrix products while the group is small, and from
   an HNSW index over the name vectors (graphmem/retrieve/ann.py) once it holds
   ``ann_min_rows`` entities, so a batch costs the same in a store of any size.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from graphmem.model import entity_key, stable_uuid

if TYPE_CHECKING:
    from graphmem.retrieve.ann import VectorIndex

#: stored entities from which synonym neighbours come from the HNSW index (below: matrix products)
ANN_MIN_ROWS = 20_000


def entity_uuid(group_id: str, key: str) -> str:
    return stable_uuid(group_id, "entity", key)


@dataclass
class Resolution:
    """What :meth:`EntityIndex.resolve` decided for one batch of names."""

    uuid_of: dict[str, str] = field(default_factory=dict)  # surface name -> entity uuid
    new: list[dict] = field(default_factory=list)  # entity rows to create
    new_vectors: list[np.ndarray] = field(default_factory=list)
    aliases: dict[str, set[str]] = field(default_factory=dict)  # uuid -> names to add as aliases
    synonyms: list[dict] = field(default_factory=list)  # {"a", "b", "score"}


@dataclass
class _Near:
    """What one batch's candidates were compared with (see :meth:`EntityIndex._compare`)."""

    slot: dict[str, int]  # candidate name -> its row of matrix
    matrix: np.ndarray  # the candidates' vectors
    stored_spellings: dict[str, list[tuple[int, float]]]  # key -> (stored entity, score)
    stored_neighbours: list[list[tuple[int, float]]]  # per row: (stored entity, cosine)
    batch_spellings: dict[str, list[tuple[int, float]]]  # key -> (slot, score)
    batch_neighbours: dict[int, list[tuple[int, float]]]  # row -> (slot, cosine)


class EntityIndex:
    """The entities of one group, in memory, for resolving new mentions against."""

    def __init__(
        self,
        group_id: str,
        dim: int,
        *,
        fuzzy_ratio: float = 94.0,
        merge_cosine: float = 0.85,
        synonym_threshold: float = 0.85,
        synonym_top_k: int = 5,
        ann_min_rows: int | None = ANN_MIN_ROWS,
    ) -> None:
        """``ann_min_rows``: from this many stored entities on, synonym neighbours are
        looked up in an HNSW index (0: always; None: never, exact matrix products)."""
        self.group_id = group_id
        self.dim = dim
        self.fuzzy_ratio = fuzzy_ratio
        self.merge_cosine = merge_cosine
        self.synonym_threshold = synonym_threshold
        self.synonym_top_k = synonym_top_k
        self.keys: list[str] = []
        self.uuids: list[str] = []
        self.by_key: dict[str, int] = {}
        # rows [0, len) are used; capacity doubles, so adding one entity is amortised O(dim)
        # (re-stacking the whole matrix per new entity made ingestion quadratic)
        self._buffer = np.zeros((1024, dim), dtype=np.float32)
        #: the stored keys' pieces, where near-identical spellings are looked up
        self._spellings = SpellingIndex(fuzzy_ratio)
        self.ann_min_rows = ann_min_rows
        #: HNSW index over rows [0, len(self._ann)) of the vectors, caught up on use
        self._ann: VectorIndex | None = None
        #: rows of entities taken back by :meth:`discard` (kept as rows, never found again)
        self._dead: set[int] = set()

    def __len__(self) -> int:
        """The entities held (rows taken back by :meth:`discard` not counted)."""
        return len(self.keys) - len(self._dead)

    def discard(self, uuids: set[str]) -> None:
        """Take back entities this process created, as if they had never been added: their
        keys, spellings and vectors are found no more. (A batch's entities that none of its
        mentions or facts refers to go this way, so the index holds what the store will:
        a run resumed from the store then resolves exactly as an uninterrupted one.)"""
        for row in range(len(self.keys) - 1, -1, -1):
            if not uuids:
                break
            if self.uuids[row] in uuids and row not in self._dead:
                uuids = uuids - {self.uuids[row]}
                self._dead.add(row)
                if self.by_key.get(self.keys[row]) == row:
                    del self.by_key[self.keys[row]]
                self._buffer[row] = 0.0  # scores 0 against anything: below every threshold

    def add(self, key: str, uuid: str, vector: np.ndarray) -> None:
        self._spellings.add(key, len(self.keys))
        self.by_key[key] = len(self.keys)
        self.keys.append(key)
        self.uuids.append(uuid)
        row = len(self.keys) - 1
        if row >= len(self._buffer):
            grown = np.zeros((2 * len(self._buffer), self.dim), dtype=np.float32)
            grown[: len(self._buffer)] = self._buffer
            self._buffer = grown
        self._buffer[row] = np.asarray(vector, dtype=np.float32).reshape(-1)

    @property
    def vectors(self) -> np.ndarray:
        """The entity vectors, one row per key in :attr:`keys` (a view, not a copy)."""
        return self._buffer[: len(self.keys)]

    def similar_spellings(self, key: str, limit: int = 3) -> list[int]:
        """Indices of up to ``limit`` keys whose rapidfuzz ratio to ``key`` is at least
        ``fuzzy_ratio``, best first (``key`` itself first, when the index holds it)."""
        hits = self._spellings_of([key], limit)[key]
        same = self.by_key.get(key)
        if same is not None and self.keys[same] == key and same not in (index for index, _ in hits):
            hits = [(same, 100.0)] + hits[: limit - 1]
        return [index for index, _ in hits]

    def _spellings_of(self, keys: list[str], limit: int = 3) -> dict[str, list[tuple[int, float]]]:
        """Per key: up to ``limit`` (stored index, score) whose rapidfuzz ratio is at least
        ``fuzzy_ratio``, best first, ties by key. Only the candidates of :meth:`SpellingIndex.candidates` are scored:
        every key that can reach the ratio is one of them."""
        from rapidfuzz import fuzz

        found: dict[str, list[tuple[int, float]]] = {}
        for key in keys:
            hits = []
            for index in self._spellings.candidates(key):
                if index in self._dead:
                    continue
                stored = self.keys[index]
                score = fuzz.ratio(key, stored, score_cutoff=self.fuzzy_ratio)
                # scores as float32, the precision they were compared and ranked at before
                if np.float32(score) >= self.fuzzy_ratio:
                    hits.append((index, float(np.float32(score))))
            hits.sort(key=lambda hit: (-hit[1], self.keys[hit[0]]))  # ties by key: rows' order varies
            found[key] = hits[:limit]
        return found

    def _neighbours(self, vectors: np.ndarray) -> list[list[tuple[int, float]]]:
        """Per row of ``vectors``: the ``synonym_top_k`` stored entities whose cosine is at
        least ``synonym_threshold``, best first. Matrix products over chunks of rows;
        only rows whose best score reaches the threshold (a minority) are searched, and
        only their scores above it leave numpy."""
        stored = self.vectors
        out: list[list[tuple[int, float]]] = [[] for _ in range(len(vectors))]
        if not self.synonym_top_k or not len(stored) or not len(vectors):
            return out
        if self.ann_min_rows is not None and len(self) >= self.ann_min_rows:
            return self._ann_neighbours(vectors)
        chunk = min(256, _rows_per_block(len(stored)))
        sims = np.empty((min(chunk, len(vectors)), len(stored)), dtype=np.float32)
        for start in range(0, len(vectors), chunk):
            part = vectors[start : start + chunk]
            block = sims[: len(part)]
            np.matmul(part, stored.T, out=block)
            for row in np.flatnonzero(block.max(axis=1) >= self.synonym_threshold).tolist():
                scores = block[row]
                cols = np.flatnonzero(scores >= self.synonym_threshold).tolist()
                # best first, ties by key (a row's place depends on the order entities were added)
                cols.sort(key=lambda c: (-scores[c], self.keys[c]))
                out[start + row] = [(int(c), float(scores[c])) for c in cols[: self.synonym_top_k]]
        return out

    def _ann_neighbours(self, vectors: np.ndarray) -> list[list[tuple[int, float]]]:
        """:meth:`_neighbours` through the HNSW index over the stored vectors (built on
        first use, then given the entities added since): the ``synonym_top_k`` nearest,
        kept when at least ``synonym_threshold``. The scores are the stored vectors'
        inner products, as in the exact path."""
        from graphmem.retrieve.ann import VectorIndex

        if self._ann is None:
            self._ann = VectorIndex(self.dim, exact_below=0)
        self._ann.extend_to(self.vectors)
        ids, scores = self._ann.search_many(np.asarray(vectors, dtype=np.float32), self.synonym_top_k)
        out: list[list[tuple[int, float]]] = []
        for row_ids, row_scores in zip(ids.tolist(), scores.tolist(), strict=True):
            out.append(
                [
                    (i, s)
                    for i, s in zip(row_ids, row_scores, strict=True)
                    if i >= 0 and s >= self.synonym_threshold and i not in self._dead
                ]
            )
        return out

    def resolve(self, names: dict[str, str], vectors: dict[str, np.ndarray]) -> Resolution:
        """Resolve surface ``names`` (name -> entity type) whose embeddings are in ``vectors``.

        The result is the same as resolving the names one at a time, in order (a
        later name can merge into, or be a synonym of, an entity an earlier one
        created). The costly comparisons, against the stored entities and among the
        batch's candidates, run once per batch in rapidfuzz and numpy.
        """
        result = Resolution()
        keys = {name: entity_key(name) for name in names}
        near = self._compare(keys, vectors)
        created: dict[int, int] = {}  # slot -> index of the entity it created
        # keys merged into another entity, for this batch only: the index holds only what the
        # store holds (entities by their own key), so a later batch, in this process or in a
        # run resumed after a crash, compares such a spelling again against the same entities
        merged: dict[str, int] = {}
        for name, type_ in names.items():
            key = keys[name]
            if not key:
                continue
            hit = self.by_key.get(key, merged.get(key))
            if hit is None and len(key) >= 6 and len(self):
                hit = self._merge_target(key, near.matrix[near.slot[name]], near, created)
                if hit is not None:
                    merged[key] = hit
            if hit is not None:
                result.uuid_of[name] = self.uuids[hit]
                result.aliases.setdefault(self.uuids[hit], set()).add(name)
                continue
            self._create(name, type_, key, near, created, result)
        return result

    def _compare(self, keys: dict[str, str], vectors: dict[str, np.ndarray]) -> _Near:
        """The batch's candidates (the first name of each key not stored yet) and their
        spellings and neighbours among the stored entities and among themselves."""
        pending: list[str] = []
        claimed: set[str] = set()
        for name, key in keys.items():
            if key and key not in self.by_key and key not in claimed:
                claimed.add(key)
                pending.append(name)
        matrix = (
            np.stack([np.asarray(vectors[n], dtype=np.float32).reshape(-1) for n in pending])
            if pending
            else np.zeros((0, self.dim), np.float32)
        )
        spelled = [i for i, n in enumerate(pending) if len(keys[n]) >= 6]
        spelled_keys = [keys[pending[i]] for i in spelled]
        # the two searches against the store release the GIL (rapidfuzz, BLAS): run together
        with ThreadPoolExecutor(1, thread_name_prefix="graphmem-resolve") as pool:
            spellings = pool.submit(self._spellings_of, spelled_keys) if len(self.keys) else None
            stored_neighbours = self._neighbours(matrix)
            stored_spellings = spellings.result() if spellings is not None else {}
        return _Near(
            {name: i for i, name in enumerate(pending)},
            matrix,
            stored_spellings,
            stored_neighbours,
            self._batch_spellings(spelled_keys, spelled),
            self._batch_neighbours(matrix),
        )

    def _batch_neighbours(self, matrix: np.ndarray) -> dict[int, list[tuple[int, float]]]:
        """Per candidate (row of ``matrix``): the other candidates at least ``synonym_threshold``
        close, as (slot, score)."""
        found: dict[int, list[tuple[int, float]]] = {}
        if not self.synonym_top_k or len(matrix) < 2:
            return found
        step = _rows_per_block(len(matrix))
        for start in range(0, len(matrix), step):
            sims = matrix[start : start + step] @ matrix.T
            rows, cols = np.nonzero(sims >= self.synonym_threshold)
            for row, col in zip(rows.tolist(), cols.tolist(), strict=True):
                if start + row != col:
                    found.setdefault(start + row, []).append((col, float(sims[row, col])))
        return found

    def _merge_target(self, key: str, vector: np.ndarray, near: _Near, created: dict[int, int]) -> int | None:
        """The entity a near-identical spelling with a close vector merges into: among the
        stored ones and those this batch created so far, the best three spellings first."""
        options = list(near.stored_spellings.get(key, ()))
        options += [(created[j], score) for j, score in near.batch_spellings.get(key, ()) if j in created]
        options.sort(key=lambda hit: (-hit[1], self.keys[hit[0]]))
        for index, _ in options[:3]:
            if float(self.vectors[index] @ vector) >= self.merge_cosine:
                return index
        return None

    def _create(
        self, name: str, type_: str, key: str, near: _Near, created: dict[int, int], result: Resolution
    ) -> None:
        """A new entity for ``name``, with SYNONYM edges to its nearest entities (stored, or
        created earlier in this batch)."""
        i = near.slot[name]
        vector = near.matrix[i]
        uuid = entity_uuid(self.group_id, key)
        if self.synonym_top_k:
            pairs = list(near.stored_neighbours[i])
            pairs += [(created[j], score) for j, score in near.batch_neighbours.get(i, ()) if j in created]
            pairs.sort(key=lambda pair: (-pair[1], self.keys[pair[0]]))
            for index, score in pairs[: self.synonym_top_k]:
                result.synonyms.append({"a": uuid, "b": self.uuids[index], "score": score})
        result.uuid_of[name] = uuid
        result.new.append(
            {"uuid": uuid, "group_id": self.group_id, "name": name, "name_key": key, "type": type_, "aliases": [name]}
        )
        result.new_vectors.append(vector)
        created[i] = len(self.keys)
        self.add(key, uuid, vector)

    def _batch_spellings(self, keys: list[str], slots: list[int]) -> dict[str, list[tuple[int, float]]]:
        """For each of ``keys`` (the batch's candidates, at ``slots`` of its pending
        names), the other candidates that reach ``fuzzy_ratio``, as (slot, score)."""
        from rapidfuzz import fuzz, process

        found: dict[str, list[tuple[int, float]]] = {}
        if len(keys) < 2:
            return found
        step = _rows_per_block(len(keys))
        for start in range(0, len(keys), step):
            scores = process.cdist(
                keys[start : start + step],
                keys,
                scorer=fuzz.ratio,
                score_cutoff=self.fuzzy_ratio,
                dtype=np.float32,
                workers=-1,
            )
            rows, cols = np.nonzero(scores >= self.fuzzy_ratio)
            for row, col in zip(rows.tolist(), cols.tolist(), strict=True):
                if start + row != col:
                    found.setdefault(keys[start + row], []).append((slots[col], float(scores[row, col])))
        return found


class SpellingIndex:
    """Candidates for near-identical spellings, without comparing against every key.

    rapidfuzz's ratio of keys of lengths n and m is ``100 (1 - d / (n + m))`` with d
    their indel distance (characters inserted plus deleted), so reaching
    ``fuzzy_ratio`` allows at most ``D = slack (n + m)`` edits (slack = 1 - ratio/100).
    Each stored key of length m is cut into more pieces than any partner length allows
    edits (pigeonhole): at most D of them are touched, so one piece appears unchanged in
    the other key, shifted by at most D characters. A lookup lists, per length m that
    can match, the substrings of the key at each piece's place and shift, and returns the
    keys indexed under them: a superset of the keys that reach the ratio (the caller
    scores them), found in time that depends on the key, not on the number of keys.
    """

    def __init__(self, fuzzy_ratio: float) -> None:
        self.slack = 1.0 - fuzzy_ratio / 100.0
        self._pieces: dict[tuple[int, int, str], list[int]] = {}
        self._cuts: dict[int, list[int]] = {}

    def edits(self, n: int, m: int) -> int:
        """The most edits two keys of lengths n and m may differ by (rounded up a hair: a
        candidate too many is only scored, one too few would be missed)."""
        return int(self.slack * (n + m) + 1e-6)

    def lengths(self, n: int) -> range:
        """Lengths m that can reach the ratio against length n: |n - m| <= slack (n + m)."""
        low = int(np.floor(n * (1 - self.slack) / (1 + self.slack)))
        high = int(np.ceil(n * (1 + self.slack) / max(1e-9, 1 - self.slack)))
        return range(max(1, low), high + 1)

    def cuts(self, m: int) -> list[int]:
        """Where keys of length m are cut: into one piece more than the most edits any
        partner length allows (at most m pieces)."""
        cut = self._cuts.get(m)
        if cut is None:
            pieces = min(m, self.edits(self.lengths(m)[-1], m) + 1)
            cut = self._cuts[m] = [i * m // pieces for i in range(pieces + 1)]
        return cut

    def add(self, key: str, index: int) -> None:
        m = len(key)
        if not m:
            return
        cut = self.cuts(m)
        for i in range(len(cut) - 1):
            self._pieces.setdefault((m, i, key[cut[i] : cut[i + 1]]), []).append(index)

    def candidates(self, key: str) -> set[int]:
        """Every stored key that may reach the ratio against ``key`` (and some that do not)."""
        n = len(key)
        found: set[int] = set()
        for m in self.lengths(n):
            most = self.edits(n, m)
            if most < (abs(n - m) or 2):  # two different keys of one length are 2 edits apart
                continue
            cut = self.cuts(m)
            for i in range(len(cut) - 1):
                start, size = cut[i], cut[i + 1] - cut[i]
                for at in range(max(0, start - most), min(n - size, start + most) + 1):
                    hit = self._pieces.get((m, i, key[at : at + size]))
                    if hit:
                        found.update(hit)
        return found


def _rows_per_block(columns: int, cells: int = 1 << 24) -> int:
    """Rows of a score matrix with ``columns`` columns that fit in ``cells`` float32s (64 MiB):
    resolution's memory stays bounded however large the batch or the store."""
    return max(1, cells // max(1, columns))
