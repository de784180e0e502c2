"""Retrieval metrics: passage Recall@k and latency percentiles.

Pure functions over ids and numbers (no store, no models), so the arithmetic
the benchmark tables rest on is unit-tested by hand-computed cases.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def dedupe(ids: Iterable[str | None]) -> list[str]:
    """``ids`` in order, first occurrence kept, ``None`` (unmappable results) dropped.

    Several retrieved episodes can map to one gold id (a passage split into
    chunks, or two turns of one session): each gold id counts once, at its best rank.
    """
    seen: set[str] = set()
    out: list[str] = []
    for item in ids:
        if item is not None and item not in seen:
            seen.add(item)
            out.append(item)
    return out


def recall_at_k(retrieved: Sequence[str | None], gold: Iterable[str], k: int) -> float:
    """``|gold ∩ top-k| / |gold|`` where top-k are the first ``k`` distinct ids of ``retrieved``.

    Raises ``ValueError`` for ``k < 1`` or an empty ``gold`` (recall is undefined there;
    callers leave such questions out of the mean and say how many they left out).
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    gold_set = set(gold)
    if not gold_set:
        raise ValueError("recall is undefined for a question without gold ids")
    top = dedupe(retrieved)[:k]
    return len(gold_set.intersection(top)) / len(gold_set)


def mean(values: Iterable[float | None]) -> float | None:
    """Arithmetic mean of the values that are not ``None``; ``None`` if there are none."""
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) with linear interpolation between closest ranks
    (numpy's default method); ``None`` for no values."""
    if not 0 <= q <= 100:
        raise ValueError("q must be within 0..100")
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
