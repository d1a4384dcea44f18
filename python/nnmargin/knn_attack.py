"""An attack on the k-NN classifier: real adversarial examples, an upper bound on the robust radius
to set beside the relaxation's certified lower bound (:func:`nnmargin.certify` with ``k``).

The gradient attack of Sitawarin & Wagner (2019, appendix A) pulls x towards the m nearest training
points of another class: min_delta sum_i ||x_i - (x + delta)||^2 under a norm budget and the box,
with a binary search on the Lagrange constant. On pixels (no feature map) that objective is
m ||mean - (x + delta)||^2 + const, so its minimisers are known in closed form: for l2 the segment
from x to the mean of the m points, for l-inf the mean clipped to the eps-box around x. This module
walks those paths (a grid, then bisection) instead of running Adam, for a few target classes and
values of m, and keeps the smallest example whose k-NN label differs from y.

Every example is checked by the classifier itself: the same per-class top-k search and vote as
``certify`` on the example written in the training set's dtype. uint8 examples lie on the pixel
grid (rounded, so clipped to [0, 255]) and are checked exactly in integer arithmetic; float
examples are checked by the float64 re-check of the float kernels.
"""
from __future__ import annotations

import math

import numpy as np

from ._errors import InputError
from ._names import ATTACK_NORMS, DEFAULT_UINT8_SCALE, MAX_K, NUMPY_ORD, as_metric, as_norm
from ._validate import as_k, as_scale
from .adversarial import AttackResult
from .certify import certify
from .knn import topk_lists, vote
from .trainset import as_trainset

_GRID = np.geomspace(1.0 / 64, 1.5, 14)  # path positions tried first (1: the mean itself)
_BISECTIONS = 7                          # refinements between the last unflipped and first flipped
_MEAN_CHUNK = 1 << 23                    # float64 elements of gathered rows held at once (64 MB)


def knn_predict(trainset, queries: np.ndarray, k: int, metric: str, isa: str = "auto", threads: int = 0) -> np.ndarray:
    """(N,) labels the k-NN classifier on ``trainset`` gives ``queries`` (N, D) in its dtype: the
    vote of :func:`nnmargin.certify` (distance ties: lowest index; vote ties: smallest label)."""
    value, index = trainset.search_topk(queries, None, k, metric, isa, threads)
    voted = vote(topk_lists(value, index, lambda v: v).cls, k, len(trainset.classes))
    return trainset.classes[np.maximum(voted, 0)]


def attack_knn(x, y, train, *, k: int, metric: str = "l2", norm: str = "l2", scale=None, targets: int = 2,
               num_threads: int | None = None) -> AttackResult:
    """Attack the k-NN classifier: adversarial examples and their norms.

    Args:
        x: (N, ...) queries; y: (N,) labels; train: TrainSet or (x_train, y_train).
        k: voting neighbours; metric: the classifier's distance ("l2", "l1", "linf").
        norm: "l2" or "linf", the norm the attack minimises and reports.
        scale: uint8 units (default 1/255); float data is taken as given.
        targets: other classes attacked per query (those with the nearest points first).

    Returns:
        AttackResult with ``norm`` (N,) an upper bound on each query's robust radius in data units
        (0 where the k-NN already errs, inf where no example was found), ``adversarial`` (N, D)
        the examples in the data's units, ``target`` (N,) the nearest training point of the class
        the example was pulled towards (-1 where none).
    """
    trainset = as_trainset(train)
    k, metric, norm = as_k(k, MAX_K), as_metric(metric), as_norm(norm)
    if norm not in ATTACK_NORMS:
        raise InputError(f"the k-NN attack minimises the l2 or linf norm, got norm={norm!r}")
    is_uint8 = trainset.dtype == np.uint8
    unit = as_scale(scale, is_uint8, DEFAULT_UINT8_SCALE) or 1.0
    threads = 0 if num_threads is None else num_threads
    cert = certify(x, y, trainset, k=k, metric=metric, scale=scale, num_threads=num_threads)
    queries = trainset.queries_like(x)
    xf = queries.astype(np.float64)
    n, d = xf.shape
    res = AttackResult(np.where(cert.correct, np.inf, 0.0), np.where(cert.correct[:, None], np.nan, xf * unit),
                       np.full(n, -1))
    live = np.flatnonzero(cert.correct)
    if not len(live) or len(trainset.classes) < 2:
        return res
    half = math.ceil((k + 1) / 2)
    value, index = trainset.search_topk(queries[live], None, k, metric, "auto", threads)
    y_dense = trainset.class_ids(cert.labels[live])
    # the classes whose half-vote (the ceil((k+1)/2)-th point) is nearest, y excluded
    reach = value[:, :, min(half, k) - 1].copy()
    reach[np.arange(len(live)), np.maximum(y_dense, 0)] = np.inf
    order = np.argsort(reach, axis=1, kind="stable")[:, :targets]
    for rank in range(order.shape[1]):
        cls = order[:, rank]
        for m in sorted({half, k}):
            pts = index[np.arange(len(live)), cls, :m]                  # (L, m), -1 past the class's end
            ok = (pts >= 0).any(axis=1) & np.isfinite(reach[np.arange(len(live)), cls])
            mean = _means(trainset, pts, d)
            _walk(trainset, k, metric, norm, unit, xf[live], cert.labels[live], mean, ok, pts[:, 0], live, res, threads)
    return res


def _means(trainset, pts: np.ndarray, d: int) -> np.ndarray:
    """(L, D) float64 mean of the training rows ``pts`` (L, m) of each query (-1 entries left out),
    gathered a chunk of queries at a time so the (chunk, m, D) rows stay within _MEAN_CHUNK."""
    mean = np.zeros((len(pts), d))
    step = max(1, _MEAN_CHUNK // max(1, pts.shape[1] * d))
    for b in range(0, len(pts), step):
        p = pts[b:b + step]
        w = (p >= 0)[:, :, None]
        rows = trainset.rows(np.maximum(p, 0)).astype(np.float64)
        mean[b:b + step] = (rows * w).sum(axis=1) / np.maximum(w.sum(axis=1), 1)
    return mean


def _point(x, direction, s, norm):
    """The closed-form minimiser at path position s: l2 along the segment, linf the clipped mean."""
    if norm == "l2":
        return x + s[:, None] * direction
    reach = np.abs(direction).max(axis=1, keepdims=True)
    return x + np.clip(direction, -s[:, None] * reach, s[:, None] * reach)


def _as_example(z, dtype):
    """Points in the training dtype: uint8 rounded onto the pixel grid (so inside [0, 255])."""
    if dtype == np.uint8:
        return np.clip(np.rint(z), 0, 255).astype(np.uint8)
    return z.astype(dtype)


def _walk(trainset, k, metric, norm, unit, x, y, mean, ok, aim, live, res, threads):
    """Walk each query's path towards ``mean``: grid, then bisection; record improvements in ``res``."""
    direction = mean - x
    lo = np.zeros(len(x))
    hi = np.full(len(x), np.nan)
    todo = np.flatnonzero(ok)
    for s in _GRID:  # the first grid position whose example flips
        if not len(todo):
            break
        flipped = _flips(trainset, k, metric, x[todo], y[todo], direction[todo], np.full(len(todo), s), norm, threads)
        hi[todo[flipped]] = s
        lo[todo[~flipped]] = s
        todo = todo[~flipped]
    found = np.flatnonzero(~np.isnan(hi))
    for _ in range(_BISECTIONS):
        if not len(found):
            break
        mid = (lo[found] + hi[found]) / 2
        flipped = _flips(trainset, k, metric, x[found], y[found], direction[found], mid, norm, threads)
        hi[found[flipped]], lo[found[~flipped]] = mid[flipped], mid[~flipped]
    if not len(found):
        return
    z = _as_example(_point(x[found], direction[found], hi[found], norm), trainset.dtype)
    # re-verify the very examples recorded (rounding along the path need not be monotone)
    real = knn_predict(trainset, z, k, metric, threads=threads) != y[found]
    dist = np.linalg.norm(z.astype(np.float64) - x[found], ord=NUMPY_ORD[norm], axis=1) * unit
    dist = np.nextafter(dist, np.inf)  # the integer norm's one rounding (sqrt, scale), upwards
    for j, i in enumerate(found):
        q = live[i]
        if real[j] and dist[j] < res.norm[q]:
            res.norm[q], res.adversarial[q], res.target[q] = dist[j], z[j].astype(np.float64) * unit, aim[i]


def _flips(trainset, k, metric, x, y, direction, s, norm, threads) -> np.ndarray:
    z = _as_example(_point(x, direction, s, norm), trainset.dtype)
    return knn_predict(trainset, z, k, metric, threads=threads) != y
