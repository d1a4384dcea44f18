"""Adversarial examples for the 1NN classifier: an attack (upper bounds) and exact verification.

``attack_1nn`` returns real adversarial examples and their norms: an upper bound on the robust
radius, to set beside the certified lower bounds. Every example it returns is checked by
classifying it with an exact float64 1NN (``predict_1nn``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._names import DEFAULT_UINT8_SCALE, NUMPY_ORD, as_norm
from ._validate import as_box, as_scale
from .certify import certify
from .exact import lower_bounds, predict_1nn
from .trainset import as_trainset

_LINE_STEPS = 24  # points per batched line search


def crossing_step(x, p, t, norm):
    """Smallest perturbation (in ``norm``) that puts x on t's side of the bisector of (p, t)."""
    w = 2.0 * (p - t)  # g(z) = w.z + |t|^2 - |p|^2 <= 0  <=>  z at least as close to t as to p
    g = w @ x + t @ t - p @ p
    if norm == "l2":
        return -g / (w @ w) * w
    if norm == "linf":
        return -g / np.abs(w).sum() * np.sign(w)
    k = int(np.argmax(np.abs(w)))
    step = np.zeros_like(x)
    step[k] = -g / w[k]
    return step


def _first_flip(verify, y, path, box):
    """The point path(s), s in (0, 1], with the smallest s found whose exact 1NN label is not y
    (clipped to the box): a geometric grid first, then three rounds of refinement between the last
    unflipped and the first flipped s. None when no s flips."""
    lo, found = 0.0, None
    grid = np.geomspace(1e-3, 1.0, _LINE_STEPS)
    for _ in range(4):
        pts = np.stack([path(s) for s in grid])
        if box is not None:
            pts = np.clip(pts, box[0], box[1])
        flipped = np.flatnonzero(predict_1nn(verify[0], pts, verify[1]) != y)
        if not len(flipped):
            return found
        k = flipped[0]
        found = pts[k]
        lo = grid[k - 1] if k > 0 else lo
        grid = np.linspace(lo, grid[k], _LINE_STEPS + 1)[1:]
    return found


@dataclass
class AttackResult:
    """Adversarial examples found for n queries (user units, e.g. pixels on [0, 1])."""

    norm: np.ndarray         # (n,) ||x_adv - x|| in the attack's norm; 0 where already wrong, inf if none
    adversarial: np.ndarray  # (n, D) float64 adversarial examples (nan rows where none was found)
    target: np.ndarray       # (n,) training index of the other-class point the attack aimed at


def attack_points(train64, xs, ys, idx_same, correct, norm="l2", box=None, candidates=3, verify=None) -> AttackResult:
    """Attack each query towards its `candidates` most threatening other-class points (by bisector
    bound): the minimal bisector crossing scaled up until the prediction flips, and the straight
    segment towards the point itself; keep the smallest verified adversarial example.

    ``train64`` holds the training points in the queries' units (the attack's geometry);
    ``verify`` = (raw float64 view, unit) checks each example against the exact data (training point
    j is raw[j] * unit exactly), default (train64, 1.0)."""
    verify = (train64, 1.0) if verify is None else verify
    n, d = xs.shape
    res = AttackResult(np.full(n, np.inf), np.full((n, d), np.nan), np.full(n, -1))
    for i in range(n):
        x, y = xs[i], ys[i]
        if not correct[i]:
            res.norm[i], res.adversarial[i] = 0.0, x
            continue
        others = np.flatnonzero(train64.labels != y)
        if not len(others):
            continue
        lb = lower_bounds(train64, x, idx_same[i], others, norm)
        for t_idx in others[np.argsort(lb, kind="stable")[:candidates]]:
            t, p = train64.points[t_idx], train64.points[idx_same[i]]
            step = crossing_step(x, p, t, norm)
            paths = [lambda s, st=step: x + st * (s * 64.0), lambda s, t=t: x + s * (t - x)]
            for path in paths:
                z = _first_flip(verify, y, path, box)
                if z is None:
                    continue
                dist = float(np.linalg.norm(z - x, ord=NUMPY_ORD[norm]))
                if dist < res.norm[i]:
                    res.norm[i], res.adversarial[i], res.target[i] = dist, z, t_idx
    return res


def attack_1nn(x, y, train, *, norm: str = "l2", box=None, candidates: int = 3, scale=None) -> AttackResult:
    """Attack the l2-metric 1NN classifier: real adversarial examples and their norms.

    Args:
        x: (N, ...) queries; y: (N,) labels; train: TrainSet or (x_train, y_train).
        norm: "l2", "linf" or "l1": the norm the attack minimises and reports.
        box: keep examples in a box (True: [0, 255 * scale] for uint8 data; or (lo, hi)).
        candidates: other-class points attacked per query (most threatening first).
        scale: uint8 units (default 1/255).

    Returns:
        AttackResult with ``norm`` (N,) an upper bound on each query's robust radius (0 where the
        query is already misclassified, inf if no example was found), ``adversarial`` (N, D) the
        examples in the data's units (every one classified differently by an exact 1NN) and
        ``target`` (N,) the training point aimed at.
    """
    trainset = as_trainset(train)
    norm = as_norm(norm)
    is_uint8 = trainset.dtype == np.uint8
    unit = as_scale(scale, is_uint8, DEFAULT_UINT8_SCALE) or 1.0
    box = as_box(box, is_uint8, unit)
    cert = certify(x, y, trainset, scale=scale)
    queries = trainset.queries_like(x).astype(np.float64) * unit
    return attack_points(trainset.float64(unit), queries, cert.labels, cert.idx_same, cert.correct, norm, box,
                         candidates, verify=(trainset.float64(1.0), unit))
