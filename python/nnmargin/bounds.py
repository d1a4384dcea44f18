"""Certified radii of the 1NN classifier beyond the margin: norm conversions and the bisector bound.

Notation: x a query of class y classified correctly, p its nearest same-class training point, t any
other-class training point. A perturbed x + delta can only take t's class if it is closer to t
than to every same-class point, in particular than to each pivot p_k, i.e. it crosses the
bisector hyperplane of (p_k, t). The distance of x to that half-space in the perturbation norm is
(|x - t|^2 - |x - p_k|^2) / (2 ||t - p_k||_*), with ||.||_* the dual norm; hence

    radius(x) >= min_t max_k (|x - t|^2 - |x - p_k|^2) / (2 ||t - p_k||_*).

With p_1 = p this is never below the margin bound (|x-t| - |x-p|) / 2 (as |t - p| <= |x-t| + |x-p|).
"""
from __future__ import annotations

import math

import numpy as np

from ._names import P_OF_NORM, UNIT_ROUNDOFF as _U


def sound_half_margin(dist_same: np.ndarray, dist_other: np.ndarray, rel_err: float) -> np.ndarray:
    """max(0, (dist_other - dist_same) / 2), rounded down.

    Each distance may be off from the real-number distance by a relative ``rel_err``; shrinking both
    by it, then the difference by one more rounding, gives a value never above the true half margin.
    """
    with np.errstate(invalid="ignore"):  # inf - inf where both classes are empty
        half = (dist_other * (1 - rel_err) - dist_same * (1 + rel_err)) * (0.5 * (1 - 4 * _U))
    return np.where(half > 0, half, 0.0)


def margin_radius(dist_same, dist_other, correct, metric: str, norm: str, dim: int, rel_err: float) -> np.ndarray:
    """(N,) the margin bound in ``norm``: half the margin in the metric's norm, converted by
    :func:`norm_factor`, rounded down; 0 where the query is misclassified."""
    return radius_in_norm(sound_half_margin(dist_same, dist_other, rel_err), correct, metric, norm, dim)


def radius_in_norm(radius_metric, correct, metric: str, norm: str, dim: int) -> np.ndarray:
    """(N,) a radius certified in the metric's own norm, as a radius in ``norm`` (by
    :func:`norm_factor`), rounded down; 0 where the query is misclassified."""
    return np.where(correct, radius_metric / norm_factor(metric, norm, dim) * (1 - 4 * _U), 0.0)


def norm_factor(metric: str, norm: str, dim: int) -> float:
    """c >= 1 with ||d||_metric <= c ||d||_norm for every d in R^dim, rounded up.

    A radius r certified in the metric's norm then certifies r / c in ``norm``:
    ||d||_p <= dim^(1/p - 1/q) ||d||_q for p < q, and ||d||_p <= ||d||_q for p >= q.
    """
    p, q = P_OF_NORM[metric], P_OF_NORM[norm]
    if p >= q:
        return 1.0
    exponent = 1.0 / p - (0.0 if math.isinf(q) else 1.0 / q)
    return float(np.nextafter(dim**exponent * (1 + 4 * _U), math.inf))


def choose_pivots(trainset, queries, labels, base, n_pivots, search, own_index=None) -> np.ndarray:
    """(n, n_pivots) training indices of same-class pivots for each query.

    1. the nearest same-class point p (from ``base``);
    2. the nearest same-class point to the query's nearest other-class point t: the point of class
       y that best separates x from the direction of its closest threat;
    3. the second-nearest same-class point.
    ``search(queries, labels, skip)`` runs the nearest same/other search and returns its raw result.
    With leave-one-out, ``own_index`` (n,) is each query's own training index, which is not part of
    its classifier and so cannot be a pivot (the third pivot is then not used). Missing pivots (a
    class with one point) repeat p.
    """
    pivots = [base.idx_same]
    if n_pivots >= 2:
        threat = trainset.rows(base.idx_other)
        pivots.append(search(threat, labels, own_index).idx_same)
    if n_pivots >= 3 and own_index is None:
        pivots.append(search(queries, labels, base.idx_same).idx_same)
    out = np.stack(pivots[:n_pivots], axis=1)
    return np.where(out >= 0, out, base.idx_same[:, None])


def squared_distances(queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(n, k) |x_i - rows[i, k]|^2, exact for uint8 (integers) and float64 otherwise."""
    wide = np.int64 if queries.dtype == np.uint8 else np.float64
    diff = rows.astype(wide) - queries[:, None, :].astype(wide)
    return (diff * diff).sum(axis=-1).astype(np.float64)


def bisector_bound(trainset, queries, labels, base, norm, n_pivots, search, isa, threads, own_index=None):
    """Bisector lower bound of the radius in ``norm`` for each query, in kernel units.

    Returns (bound (n,), index (n,)): the bound, rounded down, and the other-class training point
    attaining it (-1 when none). Only meaningful for correctly classified queries.
    """
    pivot_idx = choose_pivots(trainset, queries, labels, base, n_pivots, search, own_index)
    pivot_rows = np.ascontiguousarray(trainset.rows(pivot_idx))  # (n, k, D)
    pivot_sq = squared_distances(queries, pivot_rows)
    return trainset.bisector(queries, labels, pivot_rows, pivot_sq, norm, isa, threads)
