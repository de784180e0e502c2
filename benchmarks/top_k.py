"""Top-k of one query's score arrays at 100k-1M passages: ``top_indices`` (threshold path) against a
partition of every score (``np.argpartition``, the code before it), same run.

The arrays have the shapes a flat-path query produces (graphmem/retrieve/retriever.py): dense
scores that are one floor value outside ~200 ANN/BM25 candidates, forward-push PPR mass that is
zero outside a few thousand reached nodes, BM25 scores that are zero outside the passages sharing
a query word (~5%), and an arbitrary spread (no floor: the threshold path's worst case).

    python benchmarks/top_k.py [--sizes 100000,1000000] [--k 30] [--repeat 50]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from graphmem.retrieve.seeds import top_indices


def arrays(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    dense = np.full(n, 0.21, dtype=np.float32)
    dense[rng.choice(n, 200, replace=False)] = rng.uniform(0.3, 0.8, 200).astype(np.float32)
    ppr = np.zeros(n, dtype=np.float32)
    ppr[rng.choice(n, 3000, replace=False)] = rng.exponential(1e-4, 3000).astype(np.float32)
    bm25 = np.zeros(n, dtype=np.float32)
    hit = rng.random(n) < 0.05
    bm25[hit] = rng.exponential(3.0, int(hit.sum())).astype(np.float32)
    spread = rng.standard_normal(n).astype(np.float32)
    return {"dense (floor + 200)": dense, "PPR (3,000 reached)": ppr, "BM25 (5% nonzero)": bm25, "spread": spread}


def partition_all(scores: np.ndarray, k: int) -> np.ndarray:
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top], kind="stable")]


def ms(fn: Callable[[], object], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--k", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    rng = np.random.default_rng(5)
    print(f"{'passages':>10}  {'array':<22} {'partition ms':>13} {'top_indices ms':>15} {'ratio':>7}  same top-k")
    for n in (int(s) for s in args.sizes.split(",")):
        for name, scores in arrays(n, rng).items():
            old = ms(lambda s=scores: partition_all(s, args.k), args.repeat)
            new = ms(lambda s=scores: top_indices(s, args.k), args.repeat)
            same = np.array_equal(
                np.sort(scores[partition_all(scores, args.k)]), np.sort(scores[top_indices(scores, args.k)])
            )
            print(f"{n:>10,}  {name:<22} {old:>13.2f} {new:>15.2f} {old / new:>6.1f}x  {same}")


if __name__ == "__main__":
    main()
