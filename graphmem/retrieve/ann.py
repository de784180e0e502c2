"""Nearest-neighbour search over the rows of a float32 matrix, by inner product
(cosine, since every vector graphmem stores is normalised).

One class, :class:`VectorIndex`, for passage, fact and entity-name vectors. Row
``i`` of the matrix is id ``i``; ids only grow (:meth:`VectorIndex.add` appends
rows as ingestion adds them). Two ways to search, chosen by size:

* exact: a matrix-vector product and a partial sort, while the index holds
  fewer than ``exact_below`` rows (there a product is a few milliseconds and
  exact, and an approximate index would only cost building time);
* approximate: an HNSW graph (faiss-cpu's ``IndexHNSWFlat``, chosen by
  ``benchmarks/ann_choice.py``: the measurements are in ``benchmarks/README.md``),
  whose cost per query grows with the logarithm of the rows. It is built once
  when the index reaches ``exact_below`` rows and extended in place afterwards.

Saved as two files, never a pickle: ``PATH`` (faiss's own index format, or a raw
little-endian float32 matrix in exact mode) and ``PATH.json`` (the manifest:
kind, rows, dimension, parameters). :meth:`VectorIndex.load` can map the file's
vectors read-only (``view=True``, faiss's ``IO_FLAG_MMAP_IFC``: only the graph's
links are read into memory), so every process that searches it shares the
vectors through the page cache; the first :meth:`~VectorIndex.add` then reads
the file into memory.

Scores are inner products of the stored vectors: exact in float32, and within
about 1e-3 when the HNSW stores half floats (``dtype="f16"``); callers that
threshold or softmax the scores recompute them from their own matrix
(``matrix[ids] @ query``, k rows).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np

#: below this many rows, search is an exact matrix product (see the module doc)
EXACT_BELOW = 20_000
FORMAT_VERSION = 1


class VectorIndex:
    """Top-k inner-product search over matrix rows, exact while small, HNSW when large.

    ``connectivity`` (HNSW's M), ``expansion_add`` (ef at construction) and
    ``expansion_search`` (ef at query time; raised to k when k is larger) trade
    building and query time for recall (the defaults are the measured row of
    ``benchmarks/README.md``); ``dtype`` is how the HNSW stores vectors (``f32``, or
    ``f16``: half the memory, scores within about 1e-3).
    """

    def __init__(
        self,
        dim: int,
        *,
        exact_below: int = EXACT_BELOW,
        dtype: str = "f32",
        connectivity: int = 32,
        expansion_add: int = 80,
        expansion_search: int = 128,
    ) -> None:
        if dim < 1:
            raise ValueError("dim must be positive")
        if dtype not in ("f32", "f16"):
            raise ValueError("dtype must be 'f32' or 'f16'")
        self.dim = dim
        self.exact_below = exact_below
        self.dtype = dtype
        self.connectivity = connectivity
        self.expansion_add = expansion_add
        self.expansion_search = expansion_search
        self._rows = np.zeros((0, dim), dtype=np.float32)  # exact mode: rows [0, _count) of this buffer
        self._count = 0
        self._hnsw: Any = None  # faiss IndexHNSW once approximate
        self._viewed: Path | None = None  # the file a read-only mapped HNSW came from
        self._lock = threading.Lock()  # add() against add(); searches need no lock

    # -- building ---------------------------------------------------------------------
    @classmethod
    def build(cls, matrix: np.ndarray, **params: Any) -> VectorIndex:
        """An index over the rows of ``matrix`` (ids 0 .. len - 1)."""
        matrix = np.asarray(matrix, dtype=np.float32)
        if matrix.ndim != 2:
            raise ValueError(f"build needs a 2-d matrix, not shape {matrix.shape}")
        index = cls(matrix.shape[1], **params)
        index.add(matrix)
        return index

    def __len__(self) -> int:
        return self._count

    def tune(self, expansion_search: int) -> None:
        """Set the HNSW search breadth (ef) for the following searches."""
        self.expansion_search = int(expansion_search)

    @property
    def exact(self) -> bool:
        """True while searches are exact matrix products (fewer than ``exact_below`` rows)."""
        return self._hnsw is None

    def add(self, rows: np.ndarray) -> None:
        """Append ``rows`` (ids continue from ``len(self)``); switches to HNSW at ``exact_below`` rows."""
        rows = np.ascontiguousarray(rows, dtype=np.float32).reshape(-1, self.dim)
        if not len(rows):
            return
        with self._lock:
            first = self._count
            if self._hnsw is None and first + len(rows) < self.exact_below:
                if first + len(rows) > len(self._rows):  # capacity doubles: appending is amortised O(rows)
                    grown = np.zeros((max(2 * len(self._rows), first + len(rows), 1024), self.dim), np.float32)
                    grown[:first] = self._rows[:first]
                    self._rows = grown
                self._rows[first : first + len(rows)] = rows
                self._count += len(rows)
                return
            if self._hnsw is None:  # crossing the threshold: everything so far goes into the graph
                self._hnsw = self._new_hnsw()
                if first:
                    self._hnsw.add(self._rows[:first])
                self._rows = np.zeros((0, self.dim), dtype=np.float32)
            elif self._viewed is not None:  # mapped vectors are read-only: read the file into memory first
                import faiss

                self._hnsw = faiss.read_index(str(self._viewed))
                self._viewed = None
            self._hnsw.add(rows)  # faiss numbers rows in order: the ids continue from ``first``
            self._count += len(rows)

    def extend_to(self, matrix: np.ndarray) -> None:
        """Add the rows of ``matrix`` past ``len(self)`` (the matrix the index was built from, grown)."""
        if len(matrix) < self._count:
            raise ValueError(f"matrix has {len(matrix)} rows, fewer than the {self._count} indexed")
        if len(matrix) > self._count:
            self.add(np.asarray(matrix[self._count :], dtype=np.float32))

    def _new_hnsw(self) -> Any:
        import faiss

        index: Any
        if self.dtype == "f16":
            # faiss's generated stub types the quantizer argument as the class, not its QT_* enum
            qtype: Any = faiss.ScalarQuantizer.QT_fp16
            index = faiss.IndexHNSWSQ(self.dim, qtype, self.connectivity, faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexHNSWFlat(self.dim, self.connectivity, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.expansion_add
        return index

    # -- searching ---------------------------------------------------------------------
    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids int64, scores float32) of the ``k`` rows with the highest inner product
        with ``query``, best first; fewer when the index holds fewer rows."""
        ids, scores = self.search_many(np.asarray(query, dtype=np.float32).reshape(1, -1), k)
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def search_many(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`search` for each row of ``queries``: (n, k') ids and scores with k' = min(k, len),
        padded with id -1 and score -inf where the HNSW found fewer."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        k = min(int(k), self._count)
        if k <= 0 or not len(queries):
            return np.zeros((len(queries), 0), np.int64), np.zeros((len(queries), 0), np.float32)
        hnsw = self._hnsw
        if hnsw is None:
            return _exact_top(self._rows[: self._count], queries, k)
        import faiss

        # HNSW finds at most ef neighbours; the parameters go with the call (safe across threads)
        params = faiss.SearchParametersHNSW(efSearch=max(k, self.expansion_search))  # type: ignore[attr-defined]  # missing from faiss's stub
        scores, ids = hnsw.search(queries, k, params=params)
        ids = ids.astype(np.int64, copy=False)
        scores = np.where(ids >= 0, scores, -np.inf).astype(np.float32)
        return ids, scores

    # -- files -------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write ``path`` and ``path.json`` (each by an atomic rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with self._lock:
            if self._hnsw is not None:
                import faiss

                faiss.write_index(self._hnsw, str(tmp))
            else:
                with open(tmp, "wb") as handle:
                    handle.write(np.ascontiguousarray(self._rows[: self._count], dtype="<f4").tobytes())
            manifest = {
                "version": FORMAT_VERSION,
                "kind": "exact" if self._hnsw is None else "faiss-hnsw",
                "rows": self._count,
                "dim": self.dim,
                "exact_below": self.exact_below,
                "dtype": self.dtype,
                "connectivity": self.connectivity,
                "expansion_add": self.expansion_add,
                "expansion_search": self.expansion_search,
            }
        tmp.replace(path)
        meta_tmp = path.with_name(path.name + ".json.tmp")
        meta_tmp.write_text(json.dumps(manifest))
        meta_tmp.replace(path.with_name(path.name + ".json"))

    @classmethod
    def load(cls, path: str | Path, *, view: bool = True) -> VectorIndex:
        """The index saved at ``path``. ``view``: map the file read-only instead of reading it
        (shared between processes; :meth:`add` reads it into memory when first called).
        Raises ``ValueError`` when the files are missing, of another version or inconsistent."""
        path = Path(path)
        try:
            manifest = json.loads(path.with_name(path.name + ".json").read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"no readable vector index manifest at {path}.json: {exc}") from exc
        if manifest.get("version") != FORMAT_VERSION:
            raise ValueError(
                f"vector index {path}: format version {manifest.get('version')}, this code reads {FORMAT_VERSION}"
            )
        index = cls(
            int(manifest["dim"]),
            exact_below=int(manifest["exact_below"]),
            dtype=manifest["dtype"],
            connectivity=int(manifest["connectivity"]),
            expansion_add=int(manifest["expansion_add"]),
            expansion_search=int(manifest["expansion_search"]),
        )
        rows = int(manifest["rows"])
        if manifest["kind"] == "exact":
            data = np.fromfile(path, dtype="<f4") if path.exists() else np.zeros(0, np.float32)
            if data.size != rows * index.dim:
                raise ValueError(f"vector index {path}: {data.size} values, the manifest says {rows} x {index.dim}")
            index._rows = data.reshape(rows, index.dim).astype(np.float32, copy=False)
            index._count = rows
            return index
        if manifest["kind"] != "faiss-hnsw":
            raise ValueError(f"vector index {path}: unknown kind {manifest['kind']!r}")
        import faiss

        try:
            hnsw = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC if view else 0)
        except RuntimeError as exc:  # faiss reports unreadable files as RuntimeError
            raise ValueError(f"vector index {path}: {exc}") from exc
        if hnsw.ntotal != rows or hnsw.d != index.dim:
            raise ValueError(
                f"vector index {path}: the HNSW file does not hold the {rows} x {index.dim} rows of its manifest"
            )
        index._hnsw = hnsw
        index._count = rows
        index._viewed = path if view else None
        return index


def load_or_build(path: Path | None, matrix: np.ndarray, **params: Any) -> VectorIndex:
    """The index saved at ``path`` extended to ``matrix``'s rows, or a new one over ``matrix``
    (saved at ``path`` when it had to be built or extended). ``path`` None: build, keep in memory.

    A saved index with more rows than ``matrix`` belongs to another state of the
    data and is rebuilt; one with fewer is extended (the rows are appended in order).
    """
    matrix = np.asarray(matrix, dtype=np.float32)
    if path is not None and Path(path).exists():
        try:
            index = VectorIndex.load(path)
        except ValueError:
            index = None
        if index is not None and index.dim == matrix.shape[1] and len(index) <= len(matrix):
            if len(index) < len(matrix):
                index.extend_to(matrix)
                index.save(path)
            return index
    if matrix.ndim != 2 or not matrix.shape[1]:  # nothing stored yet (no dimension known)
        return VectorIndex(1, **params)
    index = VectorIndex.build(matrix, **params)
    if path is not None:
        index.save(path)
    return index


def _exact_top(matrix: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top ``k`` of ``queries @ matrix.T`` per row, best first (ties by lower id)."""
    # the common case, one query, is one matrix-vector product
    scores = (matrix @ queries[0]).reshape(1, -1) if len(queries) == 1 else queries @ matrix.T
    if k < scores.shape[1]:
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        top = np.broadcast_to(np.arange(scores.shape[1]), scores.shape).copy()
    top_scores = np.take_along_axis(scores, top, 1)
    order = np.lexsort((top, -top_scores), axis=1)
    ids = np.take_along_axis(top, order, 1).astype(np.int64)
    return ids, np.take_along_axis(top_scores, order, 1).astype(np.float32)
