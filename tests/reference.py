"""Plain float64 numpy reference for the nearest same-class / other-class search (tests only)."""
from __future__ import annotations

import numpy as np


def pairwise_distances(x: np.ndarray, t: np.ndarray, metric: str) -> np.ndarray:
    """(N, M) float64 distances between rows of x (N, D) and t (M, D), in the metric's own norm."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1) if len(x) else np.zeros((0, np.shape(t)[1]))
    diff = x[:, None, :] - np.asarray(t, dtype=np.float64).reshape(len(t), -1)[None, :, :]
    if metric == "l2":
        return np.sqrt((diff * diff).sum(axis=-1))
    if metric == "l1":
        return np.abs(diff).sum(axis=-1)
    return np.abs(diff).max(axis=-1)


def nearest_same_other(x, y, t, ty, metric="l2", leave_one_out=False):
    """Brute-force reference: (dist_same, idx_same, dist_other, idx_other), each (N,).

    Ties go to the lowest training index (np.argmin returns the first minimum); a class without
    training points gives distance inf and index -1.
    """
    dist = pairwise_distances(x, t, metric)
    if leave_one_out:
        np.fill_diagonal(dist, np.inf)
    same = np.asarray(y).reshape(-1, 1) == np.asarray(ty).reshape(1, -1)
    if leave_one_out:
        np.fill_diagonal(same, False)
        excluded = np.eye(len(x), len(t), dtype=bool)
    else:
        excluded = np.zeros_like(same)
    out = []
    for mask in (same, ~same & ~excluded):
        masked = np.where(mask, dist, np.inf)
        idx = masked.argmin(axis=1)
        has = mask.any(axis=1)
        out += [np.where(has, masked[np.arange(len(x)), idx], np.inf), np.where(has, idx, -1)]
    return tuple(out)
