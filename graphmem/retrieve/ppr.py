"""Personalized PageRank as a sparse power iteration (the retrieval math).

``T`` is the column-stochastic transition matrix of the undirected, weighted
graph (``T[i, j] = w_ij / deg_j``). With reset distribution(s) ``R`` and
damping ``d`` (the probability of following an edge rather than jumping back
to a seed), the scores solve ``p = (1 - d) R + d T p``. Mass that would walk
out of a node with no edges is returned to the seeds, so every column of the
result sums to 1.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def transition_matrix(adjacency: sp.spmatrix) -> sp.csr_matrix:
    """Column-normalise a symmetric weighted adjacency matrix (float32 CSR)."""
    adjacency = sp.csr_matrix(adjacency, dtype=np.float32)
    degree = np.asarray(adjacency.sum(axis=0)).ravel()
    inverse = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0).astype(np.float32)
    return sp.csr_matrix(adjacency @ sp.diags(inverse))


def personalized_pagerank(transition: sp.csr_matrix, reset: np.ndarray, damping: float = 0.5,
                          iterations: int = 50, tolerance: float = 1e-6) -> np.ndarray:
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
    for _ in range(iterations):
        walked = damping * (transition @ p)
        # (1 - d) teleport plus whatever leaked out of dangling nodes, back to the seeds
        walked += R * (active - walked.sum(axis=0, keepdims=True))
        delta = float(np.abs(walked - p).sum(axis=0).max())
        p = walked
        if delta < tolerance:
            break
    return p.ravel() if single else p
