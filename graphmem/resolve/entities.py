"""Entity resolution: which mentions name the same thing.

Three tests, cheapest first:

1. the same normalised name (case, punctuation, a leading article and a
   corporate suffix ignored) is the same entity outright: its uuid is derived
   from that key, so concurrent or repeated ingestion agrees without a lookup;
2. a near-identical spelling (rapidfuzz ratio >= ``fuzzy_ratio``) whose
   embedding is also close (cosine >= ``merge_cosine``) merges into the
   existing entity and is kept as an alias;
3. embedding neighbours above ``synonym_threshold`` that are not merged get a
   SYNONYM edge, which retrieval walks like any other edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from graphmem.model import normalize_name, stable_uuid

CORPORATE_SUFFIXES = {"inc", "ltd", "llc", "corp", "corporation", "co", "plc", "gmbh", "ag", "sa", "bv"}


def entity_key(name: str) -> str:
    words = normalize_name(name).split()
    while len(words) > 1 and words[-1] in CORPORATE_SUFFIXES:
        words = words[:-1]
    if len(words) > 1 and words[-1] == "s" and name.rstrip().endswith("'s"):
        words = words[:-1]
    return " ".join(words)


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


class EntityIndex:
    """The entities of one group, in memory, for resolving new mentions against."""

    def __init__(self, group_id: str, dim: int, *, fuzzy_ratio: float = 94.0, merge_cosine: float = 0.85,
                 synonym_threshold: float = 0.85, synonym_top_k: int = 5) -> None:
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
        # key length -> (indices, keys): the fuzzy-match candidates, kept as ready lists
        self._by_length: dict[int, tuple[list[int], list[str]]] = {}

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, key: str, uuid: str, vector: np.ndarray) -> None:
        indices, keys = self._by_length.setdefault(len(key), ([], []))
        indices.append(len(self.keys))
        keys.append(key)
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
        ``fuzzy_ratio``, best first.

        Only keys of about the same length can reach the cutoff (the ratio is at most
        1 - |len a - len b| / (len a + len b)), so only those are compared: a few
        thousand instead of every entity in a large store.
        """
        from rapidfuzz import fuzz, process

        slack = 1.0 - self.fuzzy_ratio / 100.0
        n = len(key)
        # |n - m| <= slack * (n + m)  <=>  m in [n (1 - slack) / (1 + slack), n (1 + slack) / (1 - slack)]
        low = int(np.floor(n * (1 - slack) / (1 + slack)))
        high = int(np.ceil(n * (1 + slack) / max(1e-9, 1 - slack)))
        candidates: list[int] = []
        choices: list[str] = []
        for m in range(low, high + 1):
            bucket = self._by_length.get(m)
            if bucket:
                candidates += bucket[0]
                choices += bucket[1]
        if not candidates:
            return []
        found = process.extract(key, choices, scorer=fuzz.ratio, score_cutoff=self.fuzzy_ratio, limit=limit)
        return [candidates[position] for _, _, position in found]

    def _nearest_existing(self, names: dict[str, str], vectors: dict[str, np.ndarray],
                          chunk: int = 256) -> dict[str, list[tuple[int, float]]]:
        """The ``synonym_top_k`` nearest stored entities of every name that may become a
        new entity, as matrix products over chunks of names (one matrix-vector product
        per name made resolution cost O(entities) Python-level calls per batch)."""
        if not self.synonym_top_k or not len(self):
            return {}
        pending = [n for n in names if n in vectors and entity_key(n) and entity_key(n) not in self.by_key]
        stored = self.vectors
        nearest: dict[str, list[tuple[int, float]]] = {}
        for start in range(0, len(pending), chunk):
            part = pending[start:start + chunk]
            sims = np.stack([np.asarray(vectors[n], dtype=np.float32) for n in part]) @ stored.T
            for row, name in enumerate(part):
                nearest[name] = _top_k(sims[row], self.synonym_top_k)
        return nearest

    def resolve(self, names: dict[str, str], vectors: dict[str, np.ndarray]) -> Resolution:
        """Resolve surface ``names`` (name -> entity type) whose embeddings are in ``vectors``."""
        result = Resolution()
        existing = len(self)
        nearest = self._nearest_existing(names, vectors)
        for name, type_ in names.items():
            key = entity_key(name)
            if not key:
                continue
            hit = self.by_key.get(key)
            if hit is not None:
                uuid = self.uuids[hit]
                result.uuid_of[name] = uuid
                result.aliases.setdefault(uuid, set()).add(name)
                continue
            vector = vectors[name]
            merged = None
            if len(key) >= 6 and self.keys:
                for index in self.similar_spellings(key):
                    if float(self.vectors[index] @ vector) >= self.merge_cosine:
                        merged = index
                        break
            if merged is not None:
                uuid = self.uuids[merged]
                result.uuid_of[name] = uuid
                result.aliases.setdefault(uuid, set()).add(name)
                self.by_key[key] = merged
                continue
            uuid = entity_uuid(self.group_id, key)
            if self.synonym_top_k and len(self):
                # nearest among the entities stored before this call (batched above) and
                # those this call has created so far
                pairs = list(nearest.get(name, ()))
                if len(self) > existing:
                    pairs += _top_k(self.vectors[existing:] @ vector, self.synonym_top_k, offset=existing)
                pairs.sort(key=lambda pair: -pair[1])
                for index, score in pairs[: self.synonym_top_k]:
                    if score < self.synonym_threshold:
                        break
                    result.synonyms.append({"a": uuid, "b": self.uuids[index], "score": score})
            result.uuid_of[name] = uuid
            result.new.append({"uuid": uuid, "group_id": self.group_id, "name": name, "name_key": key,
                               "type": type_, "aliases": [name]})
            result.new_vectors.append(vector)
            self.add(key, uuid, vector)
        return result


def _top_k(sims: np.ndarray, k: int, offset: int = 0) -> list[tuple[int, float]]:
    """The ``k`` highest scores as (row + offset, score), best first."""
    k = min(k, len(sims))
    if k <= 0:
        return []
    top = np.argpartition(-sims, k - 1)[:k]
    top = top[np.argsort(-sims[top])]
    return [(int(i) + offset, float(sims[i])) for i in top]
