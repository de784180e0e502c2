"""Columnar files for the on-disk projection (graphmem/retrieve/projection.py).

Every column is one raw little-endian array in its own file, with no header:
its dtype and row shape are fixed by the code, its row count is in the
manifest. Raw files rather than ``.npy`` because the columns are appended to in
place and a ``.npy`` header holds the shape, which would have to be rewritten
under readers. Readers map exactly the rows their manifest counts
(:func:`mmap_array`, read-only, so every process shares one copy through the
page cache); a writer first truncates a file back to the manifest's size
(dropping what a crashed append left behind), appends, syncs, and only then
replaces the manifest (:func:`write_json`, an atomic rename).

Strings are two files: ``<name>.off`` (int64 offsets, rows + 1) and
``<name>.utf8`` (the bytes), read one at a time by :class:`StrColumn`. Ids of
bounded length are one fixed-width bytes array (:class:`IdColumn`), found by
binary search through a sorted order (:func:`find_sorted`); other string keys
(entity keys, BM25 terms) by a 64-bit hash column and its sorted order
(:class:`HashIndex`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import mmap
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np


class CorruptColumns(Exception):
    """A file is shorter than its manifest says (a crash before the manifest was written, or damage)."""


# -- raw arrays ------------------------------------------------------------------------------
def mmap_array(path: Path, dtype: Any, rows: int, tail: tuple[int, ...] = ()) -> np.ndarray:
    """The first ``rows`` rows of a raw array file, memory-mapped read-only (an ordinary,
    non-writeable ndarray; the mapping lives as long as the array or a view of it)."""
    dtype = np.dtype(dtype)
    shape = (rows, *tail)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes == 0:
        return np.zeros(shape, dtype)
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size < nbytes:
            raise CorruptColumns(f"{path} holds {size} bytes, the manifest needs {nbytes}")
        mapped = mmap.mmap(handle.fileno(), nbytes, access=mmap.ACCESS_READ)
    return np.frombuffer(mapped, dtype=dtype, count=int(np.prod(shape, dtype=np.int64))).reshape(shape)


def append_array(path: Path, values: np.ndarray, keep_bytes: int) -> None:
    """Append ``values`` to a raw array file after cutting it back to ``keep_bytes`` (its size by
    the current manifest: anything past it is the leftover of a write that never committed)."""
    data = np.ascontiguousarray(values)
    mode = "r+b" if path.exists() else "w+b"
    with open(path, mode) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size < keep_bytes:
            raise CorruptColumns(f"{path} holds {size} bytes, the manifest needs {keep_bytes}")
        if size > keep_bytes:
            handle.truncate(keep_bytes)
        handle.seek(keep_bytes)
        if data.nbytes:
            handle.write(data.tobytes(order="C"))
        handle.flush()
        os.fsync(handle.fileno())


def write_array(path: Path, values: np.ndarray) -> None:
    """Write a whole raw array file (a new file: nobody maps it yet)."""
    with open(path, "wb") as handle:
        handle.write(np.ascontiguousarray(values).tobytes(order="C"))
        handle.flush()
        os.fsync(handle.fileno())


def write_json(path: Path, value: Any) -> None:
    """Replace a JSON file atomically (readers see the old one or the new one, never half)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(value, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    sync_dir(path.parent)


def read_json(path: Path) -> Any | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def sync_dir(path: Path) -> None:
    """fsync a directory, so a rename in it survives a crash."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (created if missing), held for the block:
    one writer at a time builds or extends a group's projection, in this or any process."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# -- strings ---------------------------------------------------------------------------------
def encode_strings(values: Sequence[str], start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, bytes) of ``values`` as UTF-8: ``len(values)`` offsets (each string's end,
    counted from ``start``) and the concatenated bytes."""
    encoded = [v.encode("utf-8") for v in values]
    lengths = np.fromiter((len(b) for b in encoded), dtype=np.int64, count=len(encoded))
    ends = start + np.cumsum(lengths, dtype=np.int64)
    return ends, np.frombuffer(b"".join(encoded), dtype=np.uint8)


class StrColumn(Sequence[str]):
    """Variable-length strings: ``offsets`` (int64, rows + 1, the first 0) into ``data`` (UTF-8)."""

    def __init__(self, offsets: np.ndarray, data: np.ndarray) -> None:
        self.offsets = offsets
        self.data = data

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def _one(self, index: int) -> str:
        start, end = int(self.offsets[index]), int(self.offsets[index + 1])
        return self.data[start:end].tobytes().decode("utf-8")

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self._one(i) for i in range(*index.indices(len(self)))]
        index = int(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._one(index)

    def __iter__(self) -> Iterator[str]:
        step = 65536
        for start in range(0, len(self), step):
            end = min(len(self), start + step)
            offsets = self.offsets[start : end + 1] - self.offsets[start]
            blob = self.data[int(self.offsets[start]) : int(self.offsets[end])].tobytes()
            for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True):
                yield blob[a:b].decode("utf-8")

    def __add__(self, other: Sequence[str]) -> list[str]:
        return list(self) + list(other)


class IdColumn(Sequence[str]):
    """Ids as a fixed-width bytes array (numpy ``S<width>``, UTF-8, NUL-padded)."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    @property
    def width(self) -> int:
        return self.array.dtype.itemsize

    def __len__(self) -> int:
        return len(self.array)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [b.decode("utf-8") for b in self.array[index].tolist()]
        return self.array[index].decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        step = 65536
        for start in range(0, len(self.array), step):
            yield from (b.decode("utf-8") for b in self.array[start : start + step].tolist())

    def __add__(self, other: Sequence[str]) -> list[str]:
        return list(self) + list(other)


def encode_ids(values: Iterable[str], width: int | None = None) -> np.ndarray:
    encoded = [v.encode("utf-8") for v in values]
    widest = max((len(b) for b in encoded), default=1)
    if width is None:
        width = max(widest, 1)
    elif widest > width:
        raise ValueError(f"an id of {widest} bytes does not fit a column of {width}")
    return np.array(encoded, dtype=f"S{width}") if encoded else np.zeros(0, dtype=f"S{width}")


# -- sorted lookups --------------------------------------------------------------------------
def order_of(values: np.ndarray) -> np.ndarray:
    """The stable argsort of ``values``, as intp: ``np.searchsorted(..., sorter=order)`` converts
    any other dtype first, a pass over the whole order on every lookup."""
    return np.argsort(values, kind="stable").astype(np.intp)


def merged_order(values: np.ndarray, order: np.ndarray, first_new: int) -> np.ndarray:
    """The stable argsort of ``values`` given ``order``, the one of ``values[:first_new]``:
    the appended rows are sorted among themselves and merged in (linear, not a new sort)."""
    tail = np.arange(first_new, len(values), dtype=np.intp)
    if not len(tail):
        return np.asarray(order, dtype=np.intp)
    tail = tail[np.argsort(values[first_new:], kind="stable")]
    at = np.searchsorted(values[:first_new], values[tail], side="right", sorter=order)
    return np.insert(np.asarray(order, dtype=np.intp), at, tail)


def find_sorted(values: np.ndarray, order: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Row of each of ``keys`` in ``values`` (unique, sorted by ``order``), -1 where absent."""
    if not len(values) or not len(keys):
        return np.full(len(keys), -1, dtype=np.int64)
    at = np.searchsorted(values, keys, sorter=order)
    at = np.minimum(at, len(values) - 1)
    rows = np.asarray(order[at], dtype=np.int64)
    return np.where(values[rows] == keys, rows, -1)


class IdLookup(Mapping[str, int]):
    """id -> row over an :class:`IdColumn` and its sorted order (a dict's interface, no dict)."""

    def __init__(self, ids: IdColumn, order: np.ndarray) -> None:
        self.ids, self.order = ids, order

    def rows(self, keys: Sequence[str]) -> np.ndarray:
        """Rows of many ids at once, -1 for those absent."""
        keys = list(keys)
        width = self.ids.width
        fits = np.array([len(k.encode("utf-8")) <= width for k in keys], dtype=bool)
        encoded = encode_ids([k if f else "" for k, f in zip(keys, fits, strict=True)], width)
        rows = find_sorted(self.ids.array, self.order, encoded)
        return np.where(fits & (encoded != b""), rows, -1) if len(keys) else rows

    def __getitem__(self, key: str) -> int:
        row = int(self.rows([key])[0])
        if row < 0:
            raise KeyError(key)
        return row

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and int(self.rows([key])[0]) >= 0

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)


def key_hashes(keys: Iterable[str]) -> np.ndarray:
    """A stable 64-bit hash of each key (blake2b: the same in every process, unlike hash())."""
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(k.encode("utf-8"), digest_size=8).digest(), "little") for k in keys),
        dtype=np.uint64,
    )


class HashIndex:
    """key -> row through a column of 64-bit key hashes and its sorted order; candidates with
    the right hash are confirmed by ``key_of(row)`` (so a collision costs a check, not a wrong row)."""

    def __init__(self, hashes: np.ndarray, order: np.ndarray, key_of: Callable[[int], str]) -> None:
        self.hashes, self.order, self.key_of = hashes, order, key_of

    def all_rows(self, key: str) -> list[int]:
        if not len(self.hashes):
            return []
        h = key_hashes([key])
        lo = int(np.searchsorted(self.hashes, h, side="left", sorter=self.order)[0])
        hi = int(np.searchsorted(self.hashes, h, side="right", sorter=self.order)[0])
        return [int(r) for r in self.order[lo:hi] if self.key_of(int(r)) == key]

    def last(self, key: str) -> int | None:
        """The highest row with this key (a dict built in row order keeps the last), or None."""
        rows = self.all_rows(key)
        return max(rows) if rows else None


class KeyMap(Mapping[str, int]):
    """A :class:`HashIndex` as a read-only mapping (key -> last row with that key)."""

    def __init__(self, index: HashIndex, size: int) -> None:
        self.index, self.size = index, size

    def __getitem__(self, key: str) -> int:
        row = self.index.last(key) if isinstance(key, str) else None
        if row is None:
            raise KeyError(key)
        return row

    def get(self, key: str, default: Any = None) -> Any:
        row = self.index.last(key) if isinstance(key, str) else None
        return default if row is None else row

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.index.last(key) is not None

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[str]:
        raise TypeError("a KeyMap is for lookups; iterate the column it indexes instead")
