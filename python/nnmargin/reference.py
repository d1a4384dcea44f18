"""Plain numpy references of what the kernels compute: slow, obvious, float64 (int64 for uint8).

The tests compare every kernel with these functions; the benchmarks check their results with them;
nothing here is fast or clever. Conventions are the kernels': ties go to the lowest training index,
a class without training points gives distance inf and index -1, and with ``leave_one_out`` query
i is training point i and ignores it.

Shapes: x (N, D) queries, y (N,) their labels, t (M, D) training points, ty (M,) their labels.
"""
from __future__ import annotations

from itertools import combinations

import numpy as np

from ._names import DUAL_NORM, NUMPY_ORD

_CHUNK_ELEMENTS = 1 << 22  # one step holds ~4M differences (32 MB): queries x training points x D


def _wide(a: np.ndarray) -> np.ndarray:
    """uint8 as int64 (every difference and sum exact), anything else as float64."""
    a = np.asarray(a)
    return a.astype(np.int64 if a.dtype == np.uint8 else np.float64)


def _as_rows(a) -> np.ndarray:
    a = np.asarray(a)
    return a.reshape(len(a), int(np.prod(a.shape[1:])))


def distances(x, t, metric: str = "l2", squared: bool = False) -> np.ndarray:
    """(N, M) float64 distances between the rows of x (N, ...) and t (M, ...) in the metric's norm.

    uint8 input is differenced in int64 (exact integers); float input in float64. ``squared``
    returns the squared l2 distance (exact integers for uint8)."""
    x, t = _as_rows(x), _as_rows(t)
    if metric == "l2" and x.dtype == np.uint8 and t.dtype == np.uint8:
        # |x|^2 + |t|^2 - 2 x.t in float64 is exact here: every term and partial sum is an integer
        # below D * 255^2 * 2 < 2^53, so no summation order can round.
        xf, tf = x.astype(np.float64), t.astype(np.float64)
        sq = np.einsum("ij,ij->i", xf, xf)[:, None] + np.einsum("ij,ij->i", tf, tf)[None, :] - 2.0 * (xf @ tf.T)
        return sq if squared else np.sqrt(sq)
    x, t = _wide(x), _wide(t)
    out = np.empty((len(x), len(t)))
    d = max(1, x.shape[1])
    rows_t = max(1, min(len(t), _CHUNK_ELEMENTS // d))     # training points per step
    rows_q = max(1, _CHUNK_ELEMENTS // (rows_t * d))       # queries per step
    for q0 in range(0, len(x), rows_q):
        for t0 in range(0, len(t), rows_t):
            diff = x[q0:q0 + rows_q, None, :] - t[None, t0:t0 + rows_t, :]
            block = out[q0:q0 + rows_q, t0:t0 + rows_t]
            if metric == "l2":
                sq = (diff * diff).sum(axis=-1).astype(np.float64)
                block[:] = sq if squared else np.sqrt(sq)
            elif metric == "l1":
                block[:] = np.abs(diff).sum(axis=-1)
            else:
                block[:] = np.abs(diff).max(axis=-1)
    return out


def nearest_same_other(x, y, t, ty, metric: str = "l2", leave_one_out: bool = False):
    """Nearest same-class and other-class training point of every query, by brute force.

    Returns (dist_same, idx_same, dist_other, idx_other), each (N,): float64 distances in the
    metric's norm (uint8 in integer steps) and int64 training indices."""
    dist = distances(x, t, metric)
    y, ty = np.asarray(y).reshape(-1), np.asarray(ty).reshape(-1)
    same = y[:, None] == ty[None, :]
    allowed = np.ones_like(same)
    if leave_one_out:
        np.fill_diagonal(allowed, False)
    out = []
    for mask in (same & allowed, ~same & allowed):
        masked = np.where(mask, dist, np.inf)
        idx = masked.argmin(axis=1) if masked.shape[1] else np.zeros(len(x), dtype=np.int64)
        out += [masked.min(axis=1, initial=np.inf), np.where(mask.any(axis=1), idx, -1).astype(np.int64)]
    return tuple(out)


def predict_1nn(x, t, ty, metric: str = "l2") -> np.ndarray:
    """(N,) labels the 1NN classifier on (t, ty) gives the queries x (ties: lowest index)."""
    return np.asarray(ty)[distances(x, t, metric).argmin(axis=1)]


def bisector_bound(x, y, t, ty, pivot_idx, norm: str = "l2") -> np.ndarray:
    """(N,) min over other-class t of max over the pivots p of (|x-t|^2 - |x-p|^2) / (2 ||t-p||_*),
    the dual norm ||.||_* of ``norm``; pivot_idx (N, K) training indices. inf without other class.

    No rounding control: a reference value to compare the kernel's rounded-down bound with."""
    x, t = _wide(_as_rows(x)).astype(np.float64), _wide(_as_rows(t)).astype(np.float64)
    y, ty = np.asarray(y).reshape(-1), np.asarray(ty).reshape(-1)
    dual = NUMPY_ORD[DUAL_NORM[norm]]
    out = np.empty(len(x))
    for i in range(len(x)):
        others = t[ty != y[i]]
        best = np.full(len(others), -np.inf)
        for p in t[np.atleast_1d(pivot_idx[i])]:
            num = ((others - x[i]) ** 2).sum(axis=1) - ((p - x[i]) ** 2).sum()
            den = 2 * np.linalg.norm(others - p, ord=dual, axis=1)
            best = np.maximum(best, np.where(den > 0, num / np.where(den > 0, den, 1), 0.0))
        out[i] = best.min() if len(others) else np.inf
    return out


def topk_per_class(x, t, ty, k: int, metric: str = "l2", skip=None):
    """(value, index), each (N, C, k) for the sorted distinct labels C of ty: the k nearest training
    points of every class, ascending by (distance, index), squared for l2 (the kernels' values);
    +inf / -1 past a class's last point. ``skip`` (N,): a training index each query ignores, or None."""
    value = distances(x, t, metric, squared=True) if metric == "l2" else distances(x, t, metric)
    ty = np.asarray(ty).reshape(-1)
    classes = np.unique(ty)
    n = value.shape[0]
    out_v, out_i = np.full((n, len(classes), k), np.inf), np.full((n, len(classes), k), -1, dtype=np.int64)
    for i in range(n):
        for c, label in enumerate(classes):
            idx = np.flatnonzero((ty == label) & (np.arange(len(ty)) != (-1 if skip is None else skip[i])))
            order = idx[np.lexsort((idx, value[i, idx]))][:k]
            out_v[i, c, :len(order)], out_i[i, c, :len(order)] = value[i, order], order
    return out_v, out_i


def predict_knn(x, t, ty, k: int, metric: str = "l2") -> np.ndarray:
    """(N,) labels of the k-NN on (t, ty): the k nearest (ties: lowest index) vote, vote ties to the
    smallest label."""
    dist = distances(x, t, metric)
    ty = np.asarray(ty).reshape(-1)
    classes = np.unique(ty)
    out = np.empty(len(dist), dtype=ty.dtype)
    for i in range(len(dist)):
        voters = np.lexsort((np.arange(len(ty)), dist[i]))[:k]
        counts = np.array([(ty[voters] == c).sum() for c in classes])
        out[i] = classes[np.argmax(counts)]
    return out


def knn_relaxation_radius(x, y, t, ty, k: int, metric: str = "l2") -> np.ndarray:
    """(N,) the k-NN relaxation's radius by enumerating every k-subset S of the training points:
    min over S whose vote is not y of (max_S d - min_{not S} d) / 2, clipped at 0; inf when no S
    changes the vote. No rounding control. Tiny training sets only (C(M, k) subsets)."""
    dist = distances(x, t, metric)
    ty = np.asarray(ty).reshape(-1)
    m = len(ty)
    classes = np.unique(ty)
    k = min(k, m)
    out = np.full(len(dist), np.inf)
    for subset in combinations(range(m), k):
        s = np.array(subset)
        counts = np.array([(ty[s] == c).sum() for c in classes])
        label = classes[np.argmax(counts)]
        rest = np.setdiff1d(np.arange(m), s)
        if not len(rest):
            continue
        gap = (dist[:, s].max(axis=1) - dist[:, rest].min(axis=1)) / 2
        out = np.where(label != np.asarray(y), np.minimum(out, np.maximum(gap, 0.0)), out)
    return out
