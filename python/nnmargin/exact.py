"""Exact minimal adversarial perturbations of the l2-metric 1NN classifier.

A query x of class y, classified correctly, changes class exactly when x + delta enters a cell
C_t = {z : |z - t| <= |z - p| for every training point p of class y} of some other-class point t.
The robust radius in a norm ||.|| is therefore

    r(x) = min over other-class t of  min { ||delta|| : x + delta in C_t  (and in the box) },

a quadratic program for l2 and a linear program for linf and l1, each with one half-space per
same-class point. Two things keep this fast:

* screening: the bisector bounds LB_t <= (inner minimum) order the t; solving stops once the next
  LB_t is above the best value found, so only a few programs are solved;
* constraint generation: a program starts with the nearest same-class point as its only
  constraint; the most violated constraint at a solution z is the same-class point nearest to z,
  so it is added until none is violated (then z is optimal for the full program).

l2 programs are least-distance train64s solved exactly by NNLS (Lawson & Hanson, Solving Least
Squares Problems, 1974, ch. 23); linf / l1 programs by HiGHS through scipy.optimize.linprog.
Every minimal perturbation found is turned into a verified adversarial example
(:func:`boundary_to_adversarial`), checked by an exact float64 1NN prediction (:func:`predict_1nn`).
Requires scipy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._names import DUAL_NORM, NUMPY_ORD
from .trainset import Float64TrainSet
_MAX_ROUNDS = 500      # constraint-generation rounds per program (each adds >= 1 constraint)
_ADD_PER_ROUND = 8     # most violated same-class points added per round
_FEAS_TOL = 1e-10      # relative violation accepted as feasible


@dataclass
class ExactSolution:
    """Per-query exact radii. Arrays are (n,) unless noted; units are the data's (scaled) units."""

    radius: np.ndarray        # minimal perturbation norm (inf without other classes, 0 if wrong)
    target: np.ndarray        # training index t of the cell reached, -1 when none
    delta: np.ndarray         # (n, D) minimal perturbation (boundary point x + delta), nan when none
    programs: np.ndarray      # QPs / LPs solved per query after screening
    candidates: np.ndarray    # other-class points per query before screening


def predict_1nn(train64: Float64TrainSet, z: np.ndarray) -> np.ndarray:
    """Exact 1NN labels of float64 points z (k, D): screened by |t|^2 - 2 t.z, re-checked by direct
    differences for every point within the screening error of the minimum (ties: lowest index)."""
    z = np.atleast_2d(z)
    zz = np.einsum("ij,ij->i", z, z)
    d2 = train64.sq_norms[None, :] - 2.0 * (z @ train64.points.T) + zz[:, None]
    slack = 1e-9 * (train64.sq_norms.max() + zz)
    out = np.empty(len(z), dtype=train64.labels.dtype)
    for r in range(len(z)):
        cand = np.flatnonzero(d2[r] <= d2[r].min() + slack[r])
        exact = np.sum((train64.points[cand] - z[r]) ** 2, axis=1)
        out[r] = train64.labels[cand[np.lexsort((cand, exact))[0]]]
    return out


def boundary_to_adversarial(train64: Float64TrainSet, x, y, z, t_idx, box=None):
    """Turn a boundary point z of the cell of t (an exact solution) into a verified adversarial
    example: move towards t, which is inside the cell, by the smallest fraction that flips the
    exact 1NN prediction. None when no fraction tried flips it."""
    t = train64.points[t_idx]
    for eps in (1e-10, 1e-8, 1e-6, 1e-4, 1e-2, 1.0):
        cand = (1 - eps) * z + eps * t
        if box is not None:
            cand = np.clip(cand, box[0], box[1])
        if predict_1nn(train64, cand)[0] != y:
            return cand
    return None


def _least_distance(x, a_rows, b, box):
    """argmin ||z - x||_2 s.t. a_rows z <= b (and box), via the LDP/NNLS reduction."""
    from scipy.optimize import nnls

    a, rhs = a_rows, b
    if box is not None:
        lo, hi, coords_lo, coords_hi = box
        eye = np.eye(len(x))
        a = np.vstack([a, -eye[coords_lo], eye[coords_hi]])
        rhs = np.concatenate([rhs, -np.full(len(coords_lo), lo), np.full(len(coords_hi), hi)])
    # delta = z - x satisfies G delta >= h with G = -a, h = a x - rhs: min ||delta|| (LDP).
    g, h = -a, a @ x - rhs
    if (h <= 0).all():
        return x.copy()
    e = np.vstack([g.T, h[None, :]])
    f = np.zeros(len(x) + 1)
    f[-1] = 1.0
    u, _ = nnls(e, f, maxiter=50 * e.shape[1] + 100)
    r = e @ u - f
    if abs(r[-1]) < 1e-300:
        raise RuntimeError("LDP infeasible: a cell of the 1NN classifier came out empty")
    return x - r[:-1] / r[-1]


def _min_norm_lp(x, a_rows, b, box, norm):
    """argmin ||z - x||_norm (linf or l1) s.t. a_rows z <= b and box, as a linear program."""
    from scipy import sparse
    from scipy.optimize import linprog

    d = len(x)
    rhs = b - a_rows @ x  # constraints on delta
    eye = sparse.identity(d, format="csr")
    if norm == "linf":  # variables (delta, s): min s, -s <= delta_i <= s
        c = np.zeros(d + 1)
        c[-1] = 1.0
        ones = sparse.csr_matrix(np.ones((d, 1)))
        a_ub = sparse.vstack([sparse.hstack([eye, -ones]), sparse.hstack([-eye, -ones]),
                              sparse.hstack([sparse.csr_matrix(a_rows), sparse.csr_matrix((len(b), 1))])])
        bounds = [(None, None)] * d + [(0, None)]
    else:  # l1: variables (delta, u): min sum u, -u <= delta <= u
        c = np.concatenate([np.zeros(d), np.ones(d)])
        a_ub = sparse.vstack([sparse.hstack([eye, -eye]), sparse.hstack([-eye, -eye]),
                              sparse.hstack([sparse.csr_matrix(a_rows), sparse.csr_matrix((len(b), d))])])
        bounds = [(None, None)] * d + [(0, None)] * d
    b_ub = np.concatenate([np.zeros(2 * d), rhs])
    if box is not None:
        lo, hi = box[0], box[1]
        bounds[:d] = [(lo - xi, hi - xi) for xi in x]
    res = linprog(c, A_ub=a_ub.tocsr(), b_ub=b_ub, bounds=bounds, method="highs",
                  options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10})
    if res.status != 0:
        raise RuntimeError(f"linear program failed: {res.message}")
    return x + res.x[:d]


def _cell_distance(train64: Float64TrainSet, x, cls, t_idx, norm, box):
    """min ||z - x||_norm over z in the cell of training point t_idx against class cls (+ box)."""
    t = train64.points[t_idx]
    t_sq = train64.sq_norms[t_idx]
    active = list(train64.nearest_of_class(x, cls, 1))
    box_lo, box_hi = [], []
    for _ in range(_MAX_ROUNDS):
        p = train64.points[active]
        # |z - t|^2 <= |z - p|^2  <=>  2 (p - t) . z <= |p|^2 - |t|^2
        a_rows, b = 2.0 * (p - t), train64.sq_norms[active] - t_sq
        box_arg = None
        if box is not None:
            box_arg = (box[0], box[1], np.array(box_lo, dtype=int), np.array(box_hi, dtype=int))
        z = _least_distance(x, a_rows, b, box_arg) if norm == "l2" else _min_norm_lp(x, a_rows, b, box, norm)
        # the most violated constraints are the same-class points nearest to z
        near = train64.nearest_of_class(z, cls, _ADD_PER_ROUND)
        zt = np.sum((z - t) ** 2)
        zp = np.sum((train64.points[near] - z) ** 2, axis=1)
        new = [int(j) for j, v in zip(near, zp) if v < zt - _FEAS_TOL * max(zt, 1e-300) and j not in active]
        box_changed = False
        if box is not None and norm == "l2":  # the LPs carry the box as variable bounds already
            lo_bad = [int(i) for i in np.flatnonzero(z < box[0] - 1e-12) if i not in box_lo]
            hi_bad = [int(i) for i in np.flatnonzero(z > box[1] + 1e-12) if i not in box_hi]
            box_lo, box_hi = box_lo + lo_bad, box_hi + hi_bad
            box_changed = bool(lo_bad or hi_bad)
        if not new and not box_changed:
            delta = z - x
            return float(np.linalg.norm(delta, ord=NUMPY_ORD[norm])), delta
        active += new
    raise RuntimeError("constraint generation did not converge")


def lower_bounds(train64: Float64TrainSet, x, pivot, others, norm) -> np.ndarray:
    """Bisector bounds (|x-t|^2 - |x-p|^2) / (2 ||t-p||_dual) for every t in others (float64)."""
    pts = train64.points[others]
    p = train64.points[pivot]
    num = np.sum((pts - x) ** 2, axis=1) - np.sum((p - x) ** 2)
    den = 2.0 * np.linalg.norm(pts - p, ord=NUMPY_ORD[DUAL_NORM[norm]], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, 0.0)


def _screening_bounds(train64: Float64TrainSet, xs, pivots):
    """For a batch of queries, (B, M) l2 bisector bounds (|x-t|^2 - |x-p|^2) / (2 |t-p|_2) from two
    matrix products, with a 1e-9 relative slack for the rounding of the expanded squares: lower
    bounds of the l2 cell distances. (linf and l1 use their own dual-norm bounds, lower_bounds.)"""
    x_sq = np.einsum("ij,ij->i", xs, xs)
    p = train64.points[pivots]
    p_sq = train64.sq_norms[pivots]
    d2_x = train64.sq_norms[None, :] - 2.0 * (xs @ train64.points.T) + x_sq[:, None]
    d2_p = np.maximum(train64.sq_norms[None, :] - 2.0 * (p @ train64.points.T) + p_sq[:, None], 0.0)
    d2_xp = np.sum((xs - p) ** 2, axis=1)
    slack = 1e-9 * (train64.sq_norms[None, :] + x_sq[:, None] + 1.0)
    num = d2_x - d2_xp[:, None] - slack
    den = 2.0 * np.sqrt(d2_p) * (1 + 1e-9)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, 0.0)


def exact_radii(train64: Float64TrainSet, xs, query_labels, idx_same, correct, *, norm="l2", box=None,
                upper=None, batch: int = 64) -> ExactSolution:
    """Exact robust radius of each query (see module docstring).

    Args:
        train64: the training points in float64 data units (:meth:`TrainSet.float64`).
        xs: (n, D) float64 queries in the same units; query_labels: (n,); idx_same: (n,) nearest
            same-class training index; correct: (n,) bool, whether the 1NN classifies the query
            correctly (else radius 0).
        norm: "l2", "linf" or "l1".
        box: None or (lo, hi): perturbed points must stay in [lo, hi]^D (data units).
        upper: optional (n,) known upper bounds (e.g. from an attack) that speed up screening.
        batch: queries whose screening bounds are computed together (memory: batch x M floats).
    """
    n, d = xs.shape
    out = ExactSolution(np.zeros(n), np.full(n, -1), np.full((n, d), np.nan), np.zeros(n, int), np.zeros(n, int))
    todo = np.flatnonzero(correct)
    for start in range(0, len(todo), batch):
        rows = todo[start:start + batch]
        screen = _screening_bounds(train64, xs[rows], idx_same[rows]) if norm == "l2" else [None] * len(rows)
        for r, i in enumerate(rows):
            _solve_query(train64, xs[i], query_labels[i], idx_same[i], screen[r], norm, box,
                         np.inf if upper is None else float(upper[i]) * (1 + 1e-9), out, i)
    return out


def exact_with_examples(train64: Float64TrainSet, xs, query_labels, idx_same, correct, *, norm="l2", box=None):
    """:func:`exact_radii` plus the verified minimal adversarial examples, (n, D) float64 in data
    units (nan rows where none was found or needed)."""
    solution = exact_radii(train64, xs, query_labels, idx_same, correct, norm=norm, box=box)
    examples = np.full(xs.shape, np.nan)
    for i in np.flatnonzero(solution.target >= 0):
        adv = boundary_to_adversarial(train64, xs[i], query_labels[i], xs[i] + solution.delta[i],
                                      solution.target[i], box)
        if adv is not None:
            examples[i] = adv
    return solution, examples


def _solve_query(train64, x, y, pivot, screen, norm, box, best, out, i):
    """Visit the cells of other-class points in increasing bisector lower bound (in ``norm``, via
    its dual norm), solving each program until the next bound is above the best distance found."""
    others = np.flatnonzero(train64.labels != y)
    if not len(others):
        out.radius[i] = np.inf
        return
    if norm == "l2":
        lb = screen[others]
    else:  # the exact dual-norm bisector bound, in chunks to bound the temporary (chunk x D) arrays
        lb = np.concatenate([lower_bounds(train64, x, pivot, others[c:c + 4096], norm)
                             for c in range(0, len(others), 4096)]) * (1 - 1e-9)
    out.candidates[i] = len(others)
    best_t, best_delta = -1, None
    for k in np.lexsort((others, lb)):
        if lb[k] >= best:
            break  # every remaining cell is provably farther than the best found
        dist, delta = _cell_distance(train64, x, y, others[k], norm, box)
        out.programs[i] += 1
        if dist < best or (best_t < 0 and dist <= best):
            best, best_t, best_delta = dist, others[k], delta
    out.radius[i] = best
    out.target[i] = best_t
    if best_delta is not None:
        out.delta[i] = best_delta
