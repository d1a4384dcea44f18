"""The training points as the exact solver sees them: exact float64 values in raw units (uint8
intensities, or the float values as given), sorted by class so that a class is one contiguous
block, with the proven screening bounds of the cells and the exact nearest-point checks.

Bounds here are rigorous: every float expression is evaluated with an error bound
(:func:`screening_slack`, :func:`direct_slack`) and shifted to the safe side, and the checks
that decide a label compare exact rationals.
"""
from __future__ import annotations

import threading
import weakref

import numpy as np

from .._names import UNIT_ROUNDOFF as _U
from ..trainset import TrainSet
from .rigorous import direct_slack, exact_sq_distances, screening_slack

_cache = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


class ClassBlocks:
    """Training points (M, D) float64 in raw units, sorted by class (stably: by original index
    within a class). ``index[r]`` is the original index of row r, ``row_of[i]`` the row of original
    index i, ``block[c]`` the slice of class c; ``support`` the packed nonzero pattern of each row
    (for the l1 / linf screening), ``support_count`` its size; ``uint8`` the same rows as uint8
    when the raw points are (the dual norms of differences are then exact integers, 8x less memory
    traffic), else None."""

    def __init__(self, raw_points: np.ndarray, labels: np.ndarray):
        order = np.argsort(labels, kind="stable")
        self.index = order.astype(np.int64)
        self.row_of = np.empty_like(self.index)
        self.row_of[order] = np.arange(len(order))
        self.uint8 = np.ascontiguousarray(raw_points[order]) if raw_points.dtype == np.uint8 else None
        self.points = np.ascontiguousarray(raw_points[order], dtype=np.float64)
        self.points.flags.writeable = False
        self.labels = np.asarray(labels)[order]
        self.sq_norms = np.einsum("ij,ij->i", self.points, self.points)
        classes, starts, counts = np.unique(self.labels, return_index=True, return_counts=True)
        self.block = {c: slice(int(s), int(s + n)) for c, s, n in zip(classes.tolist(), starts, counts)}
        self.max_sq = {c: float(self.sq_norms[b].max()) for c, b in self.block.items()}
        bits = np.packbits(self.points != 0, axis=1)
        pad = (-bits.shape[1]) % 8
        self.support = np.ascontiguousarray(np.pad(bits, ((0, 0), (0, pad)))).view(np.uint64)
        self.support_count = (self.points != 0).sum(axis=1)

    @property
    def dim(self) -> int:
        return self.points.shape[1]



class SameClassPool:
    """The points of a query's class (skip_row left out) by distance from x, for constraint
    generation: a point p closer to z than t has |x - p| <= |x - z| + |z - p| < |x - z| + |z - t|
    (triangle inequality), so only that prefix is searched for violated constraints. (For ranking
    only: the proofs never rely on which constraints were found.)"""

    def __init__(self, blocks: ClassBlocks, x: np.ndarray, cls, skip_row: int = -1):
        b = blocks.block[cls]
        self.blocks, self.block, self.skip = blocks, b, skip_row
        xx = float(x @ x)
        d2 = blocks.sq_norms[b] - 2.0 * (blocks.points[b] @ x) + xx
        if b.start <= skip_row < b.stop:
            d2[skip_row - b.start] = np.inf
        order = np.argsort(d2, kind="stable")
        order = order[np.isfinite(d2[order])]
        self.rows = order + b.start
        self.dist = np.sqrt(np.maximum(d2[order], 0.0))
        self.margin = float(np.sqrt(screening_slack(blocks.dim) * (blocks.max_sq[cls] + xx)))

    def nearest(self, k: int) -> np.ndarray:
        """Rows of the k points nearest to x."""
        return self.rows[:k]

    def nearest_to(self, z: np.ndarray, reach: float, k: int) -> np.ndarray:
        """Rows of the k points nearest to z among those within ``reach`` of x, nearest first."""
        count = int(np.searchsorted(self.dist, reach * (1 + 1e-6) + self.margin, side="right"))
        if not count:
            return self.rows[:0]
        if count > len(self.rows) // 4:  # most of the class: one contiguous pass beats a gather
            b = self.block
            d2 = self.blocks.sq_norms[b] - 2.0 * (self.blocks.points[b] @ z)
            if b.start <= self.skip < b.stop:
                d2[self.skip - b.start] = np.inf
            rows, count = np.arange(b.start, b.stop), b.stop - b.start
        else:
            rows = self.rows[:count]
            d2 = self.blocks.sq_norms[rows] - 2.0 * (self.blocks.points[rows] @ z)
        k = min(k, count)
        part = np.argpartition(d2, k - 1)[:k] if k < count else np.arange(count)
        return rows[part[np.argsort(d2[part], kind="stable")]]


def class_blocks(trainset) -> ClassBlocks:
    """The :class:`ClassBlocks` of a training set (built once per TrainSet, then cached)."""
    with _cache_lock:
        blocks = _cache.get(trainset)
        if blocks is None:
            if isinstance(trainset, TrainSet):
                points = trainset.points
            else:  # a training set held elsewhere: its own float64 view (or its error)
                points = trainset.float64(1.0).points
            blocks = _cache[trainset] = ClassBlocks(points, trainset.labels)
        return blocks


def l2_screening(blocks: ClassBlocks, xs: np.ndarray, pivot_rows: np.ndarray):
    """Proven bounds for a batch of queries (B, D) against every row: ``(num, den)`` (B, M) with
    num <= |x - t|^2 - |x - p|^2 and den >= 2 |t - p| (p the query's pivot row), so that
    num / den <= the bisector bound <= the l2 cell distance of t. Expanded squares from two
    matrix products, shifted by :func:`screening_slack`; |x - p|^2 from direct differences
    (:func:`direct_slack`). Each slack is twice the error bound, which also covers the few roundings
    of evaluating these expressions."""
    c, cd = screening_slack(blocks.dim), direct_slack(blocks.dim)
    sq = blocks.sq_norms
    x_sq = np.einsum("ij,ij->i", xs, xs)
    p = blocks.points[pivot_rows]
    p_sq = sq[pivot_rows]
    d2_xp = np.sum((xs - p) ** 2, axis=1)
    prod = np.vstack([xs, p]) @ blocks.points.T  # (2B, M): x.t and p.t in one product
    num, d2_p = prod[:len(xs)], prod[len(xs):]
    num *= -2.0                                  # |t|^2 - 2 x.t + |x|^2 - c (|t|^2 + |x|^2) - |x - p|^2 (1 + cd)
    num += (1 - c) * sq[None, :]
    num += ((1 - c) * x_sq - d2_xp * (1 + cd))[:, None]
    d2_p *= -2.0                                 # |t|^2 - 2 p.t + |p|^2 + c (|t|^2 + |p|^2)
    d2_p += (1 + c) * sq[None, :]
    d2_p += ((1 + c) * p_sq)[:, None]
    np.maximum(d2_p, 0.0, out=d2_p)
    np.sqrt(d2_p, out=d2_p)
    d2_p *= 2.0 * (1 + 4 * _U)
    return num, d2_p


def ratio_down(num, den) -> np.ndarray:
    """num / den rounded down, 0 where num <= 0 (a distance is never below 0) or den == 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((num > 0) & (den > 0), num / den * (1 - 4 * _U), 0.0)


def weak_dual_bounds(blocks: ClassBlocks, pivot_row: int, lb_l2: np.ndarray, norm: str):
    """Cheap proven lower bounds of the ``norm`` bisector bounds of every row from their l2 ones
    ``lb_l2`` (M,): ||v||_1 <= sqrt(nnz v) ||v||_2 and ||v||_inf <= ||v||_2, with
    nnz(t - p) <= |supp t u supp p|."""
    if norm == "l2" or norm == "l1":  # l1 perturbations: the dual norm linf is <= l2
        return lb_l2
    if hasattr(np, "bitwise_count"):
        common = np.bitwise_count(blocks.support & blocks.support[pivot_row]).sum(axis=1, dtype=np.int64)
    else:  # numpy < 2: |supp t u supp p| <= |supp t| + |supp p|
        common = 0
    nnz = blocks.support_count + blocks.support_count[pivot_row] - common
    return lb_l2 / np.sqrt(np.maximum(nnz, 1)) * (1 - 4 * _U)


def dual_norm_up(v: np.ndarray, norm: str) -> np.ndarray:
    """Upper bounds of ||v||_* per row of v (computed differences, their rounding included)."""
    if norm == "linf":
        return np.abs(v).sum(axis=1) * (1 + direct_slack(v.shape[1]))
    if norm == "l1":
        return np.abs(v).max(axis=1) * (1 + 4 * _U)
    return np.sqrt(np.sum(v * v, axis=1)) * (1 + direct_slack(v.shape[1]))


def pivot_dual_norms_up(blocks: ClassBlocks, rows: np.ndarray, pivot_row: int, norm: str) -> np.ndarray:
    """Upper bounds of ||t - p||_* for the rows t against the pivot row p: exact integers for uint8
    points (|t - p| as max - min, no overflow), else :func:`dual_norm_up` of the float differences."""
    if blocks.uint8 is None or norm == "l2":
        return dual_norm_up(blocks.points[rows] - blocks.points[pivot_row], norm)
    t, p = blocks.uint8[rows], blocks.uint8[pivot_row]
    diff = np.maximum(t, p)
    diff -= np.minimum(t, p)
    if norm == "l1":  # dual linf
        return diff.max(axis=1).astype(np.float64)
    return diff.sum(axis=1, dtype=np.int64).astype(np.float64)  # linf: dual l1 (below 2^53: exact)


def exact_nearest(points, sq_norms, z, unit: float = 1.0, index=None, skip: int = -1):
    """``(row, d2)``: the row of ``points`` (k, D; exact values, times ``unit``) nearest to the
    float64 point z (data units), ties to the lowest ``index``, and its exact squared distance
    (a Fraction), skipping row ``skip``. Screened by |p|^2 - 2 p.(z/unit) + |z/unit|^2, whose
    error against the exact distance is below E = screening_slack * (max |p|^2 + |z/unit|^2):
    the nearest row lies within 2E of the screened minimum, and those rows are compared exactly.
    (-1, None) when there is no row."""
    zr = z / unit
    zz = float(zr @ zr)
    d2 = sq_norms - 2.0 * (points @ zr) + zz
    if 0 <= skip < len(d2):
        d2[skip] = np.inf
    if not len(d2) or not np.isfinite(d2.min()):
        return -1, None
    err = screening_slack(points.shape[1]) * (float(sq_norms.max()) + zz)
    cand = np.flatnonzero(d2 <= d2.min() + 2.0 * err)
    exact = exact_sq_distances(z, points[cand], unit)
    index = np.arange(len(points)) if index is None else index
    k = min(range(len(cand)), key=lambda j: (exact[j], index[cand[j]]))
    return int(cand[k]), exact[k]


def proven_flip(blocks: ClassBlocks, z, unit: float, cls, t_row: int, skip_row: int = -1) -> bool:
    """Whether the exact 1NN of z (data units) is proven not to be of class cls: in exact
    arithmetic, row t_row (another class) is closer than every point of cls (skip_row left out),
    or as close with a lower original index (the tie rule)."""
    b = blocks.block.get(cls)
    d_t = exact_sq_distances(z, blocks.points[t_row][None, :], unit)[0]
    if b is None:
        return True
    skip = skip_row - b.start if b.start <= skip_row < b.stop else -1
    row, d_same = exact_nearest(blocks.points[b], blocks.sq_norms[b], z, unit, blocks.index[b], skip)
    return row < 0 or d_t < d_same or (d_t == d_same and blocks.index[t_row] < blocks.index[b][row])
