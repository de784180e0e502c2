"""Personalized PageRank as a sparse power iteration (the retrieval math).

``T`` is the column-stochastic transition matrix of the undirected, weighted
graph (``T[i, j] = w_ij / deg_j``). With reset distribution(s) ``R`` and
damping ``d`` (the probability of following an edge rather than jumping back
to a seed), the scores solve ``p = (1 - d) R + d T p``. Mass that would walk
out of a node with no edges is returned to the seeds, so every column of the
result sums to 1.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

#: graphs at least this large run their mat-vec on several cores (below, threads cost more than they save)
PARALLEL_MIN_NODES = 50_000
_pool: ThreadPoolExecutor | None = None


def transition_matrix(adjacency: sp.csr_matrix) -> sp.csr_matrix:
    """Column-normalise a symmetric weighted adjacency matrix (float32 CSR)."""
    matrix = sp.csr_matrix(adjacency, dtype=np.float32)
    degree = np.asarray(matrix.sum(axis=0)).ravel()
    inverse = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0).astype(np.float32)
    return sp.csr_matrix(matrix @ sp.diags(inverse))


def personalized_pagerank(
    transition: sp.csr_matrix | RowBlocks,
    reset: np.ndarray,
    damping: float = 0.5,
    iterations: int = 50,
    tolerance: float = 1e-6,
) -> np.ndarray:
    """PPR scores for one reset vector ``(n,)`` or a batch ``(n, b)`` (columns are queries).

    Each reset column is normalised to sum 1; an all-zero column stays zero.
    """
    reset = np.asarray(reset, dtype=np.float32)
    single = reset.ndim == 1
    R = reset.reshape(-1, 1) if single else reset
    total = R.sum(axis=0, keepdims=True)
    R = np.divide(R, total, out=np.zeros_like(R), where=total > 0)
    active = (total > 0).astype(np.float32)
    p = R.copy()
    scratch = np.empty_like(R)  # the per-iteration vector work reuses one buffer (it is a third of the time)
    for _ in range(iterations):
        walked = transition @ p
        walked *= damping
        # (1 - d) teleport plus whatever leaked out of dangling nodes, back to the seeds
        np.multiply(R, active - walked.sum(axis=0, keepdims=True), out=scratch)
        walked += scratch
        np.subtract(walked, p, out=scratch)
        np.abs(scratch, out=scratch)
        delta = float(scratch.sum(axis=0).max())
        p = walked
        if delta < tolerance:
            break
    return p.ravel() if single else p


class RowBlocks:
    """A CSR matrix cut into row blocks whose products with a vector run on a thread pool.

    scipy's sparse products release the GIL, so PPR's one mat-vec per iteration uses
    every core.
    Supports what :func:`personalized_pagerank` needs: ``shape`` and ``@``.
    """

    def __init__(self, matrix: sp.csr_matrix, parts: int) -> None:
        matrix = sp.csr_matrix(matrix)
        self.shape = matrix.shape
        self.dtype = matrix.dtype
        bounds = np.linspace(0, matrix.shape[0], parts + 1).astype(int)
        self.blocks = [(int(a), int(b), matrix[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]

    def __matmul__(self, x: np.ndarray) -> np.ndarray:
        global _pool
        if _pool is None:
            _pool = ThreadPoolExecutor(max(2, len(self.blocks)), thread_name_prefix="graphmem-ppr")
        out = np.empty((self.shape[0],) + x.shape[1:], dtype=np.result_type(self.dtype, x.dtype))

        def product(a: int, b: int, block: sp.csr_matrix) -> None:
            out[a:b] = block @ x

        for future in [_pool.submit(product, a, b, block) for a, b, block in self.blocks]:
            future.result()
        return out


def parallel_operator(transition: sp.csr_matrix) -> sp.csr_matrix | RowBlocks:
    """``transition`` itself, or as :class:`RowBlocks` when the graph is large and there are cores to share."""
    cores = min(os.cpu_count() or 1, 4)
    if cores < 2 or transition.shape[0] < PARALLEL_MIN_NODES:
        return transition
    return RowBlocks(transition, cores)


# -- local push -------------------------------------------------------------------------------


class PushOperator:
    """The transition structure as forward push walks it: for each node, its out-edges
    (row ``u`` of ``T.T``: the probability of stepping from ``u`` to each neighbour) and
    its push threshold's degree (neighbour count, at least 1). Its arrays can be saved
    and mapped (:meth:`arrays`, :meth:`from_arrays`), so search processes share one copy."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, degree: np.ndarray) -> None:
        n = len(indptr) - 1
        self.shape = (n, n)
        self.indptr, self.indices, self.data, self.degree = indptr, indices, data, degree
        self.dangling = np.diff(indptr) == 0

    @classmethod
    def of_transition(cls, transition: sp.csr_matrix) -> PushOperator:
        out = sp.csr_matrix(sp.csr_matrix(transition).T, dtype=np.float64)
        out.sort_indices()
        indptr = out.indptr.astype(np.int64)
        # node ids fit 32 bits: half the memory of the edge targets, which numpy indexes with as well
        indices = out.indices.astype(np.int32 if out.shape[0] < 2**31 else np.int64)
        degree = np.maximum(np.diff(indptr), 1).astype(np.float64)
        return cls(indptr, indices, out.data, degree)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"indptr": self.indptr, "indices": self.indices, "data": self.data, "degree": self.degree}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> PushOperator:
        return cls(arrays["indptr"], arrays["indices"], arrays["data"], arrays["degree"])


def push_operator(transition: sp.csr_matrix) -> PushOperator:
    """:class:`PushOperator` of a column-stochastic ``transition`` (:func:`transition_matrix`)."""
    return PushOperator.of_transition(transition)


def push_pagerank(
    operator: PushOperator, reset: np.ndarray, damping: float = 0.5, epsilon: float = 1e-6, stats: dict | None = None
) -> np.ndarray:
    """Personalized PageRank by forward push (Andersen, Chung and Lang 2006), local to the seeds.

    Solves the same equation as :func:`personalized_pagerank` on the same
    transition structure (mass leaving a node with no edges goes back to the
    seeds), for one reset vector ``(n,)`` or a batch ``(n, b)``. Each node keeps
    an estimate ``p`` and a residual ``r`` (``r = reset`` at first); pushing ``u``
    moves ``(1 - damping) r[u]`` into ``p[u]`` and spreads ``damping r[u]`` over
    its out-edges. Nodes are pushed while ``r[u] > epsilon * degree(u)``, all
    such nodes of a round at once (numpy over their edge ranges), so the work is
    at most about ``1 / (epsilon (1 - damping))`` edge visits per query, spent in
    the seeds' neighbourhood: it does not grow with the graph. Each entry of the
    result is below the exact score by at most ``epsilon * degree`` summed over
    the nodes' remaining residuals (tiny against the seeds' mass of 1).

    ``stats``, when given, receives ``rounds``, ``pushes`` and ``edges`` (edge
    visits) summed over the columns, and ``touched`` (nodes that received mass).
    """
    reset = np.asarray(reset, dtype=np.float64)
    single = reset.ndim == 1
    R = reset.reshape(-1, 1) if single else reset
    n = operator.shape[0]
    if R.shape[0] != n:
        raise ValueError(f"reset has {R.shape[0]} rows, the graph {n} nodes")
    out = np.zeros(R.shape, dtype=np.float32)
    totals = {"rounds": 0, "pushes": 0, "edges": 0, "touched": 0}
    alpha = 1.0 - damping
    indptr, indices, data, degree, dangling = (
        operator.indptr,
        operator.indices,
        operator.data,
        operator.degree,
        operator.dangling,
    )
    for column in range(R.shape[1]):
        seeds = np.flatnonzero(R[:, column] > 0)
        total = float(R[seeds, column].sum()) if len(seeds) else 0.0
        if total <= 0:
            continue
        seed_share = R[seeds, column] / total
        p = np.zeros(n, dtype=np.float64)
        r = np.zeros(n, dtype=np.float64)
        r[seeds] = seed_share
        touched = seeds
        active = seeds[r[seeds] > epsilon * degree[seeds]]
        while len(active):
            mass = r[active]
            r[active] = 0.0
            p[active] += alpha * mass
            spread = damping * mass
            starts = indptr[active]
            counts = indptr[active + 1] - starts
            edges = int(counts.sum())
            # the edge ranges of all active nodes as one index array
            offsets = np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(edges)
            targets = indices[offsets]
            weights = data[offsets] * np.repeat(spread, counts)
            lost = dangling[active]
            if lost.any():  # a walk from a node with no edges restarts at the seeds
                targets = np.concatenate([targets, seeds])
                weights = np.concatenate([weights, float(spread[lost].sum()) * seed_share])
            np.add.at(r, targets, weights)
            # the next round's nodes: only those that just received mass can have crossed the threshold
            hot = targets[r[targets] > epsilon * degree[targets]]
            if stats is not None:
                totals["rounds"] += 1
                totals["pushes"] += len(active)
                totals["edges"] += edges
                touched = np.union1d(touched, targets)
            active = np.unique(hot)
        out[:, column] = p
        totals["touched"] += len(touched)
    if stats is not None:
        stats.update(totals)
    return out.ravel() if single else out
