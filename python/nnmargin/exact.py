"""Exact robust radii of the l2-metric 1NN classifier, as proven intervals [lower, upper].

A query x of class y, classified correctly, changes class exactly when x + delta enters a cell
C_t = {z : |z - t| <= |z - p| for every training point p of class y} of some other-class point t.
The robust radius in a norm ||.|| is therefore

    r(x) = min over other-class t of  d_t = min { ||delta|| : x + delta in C_t  (and in the box) },

a quadratic program for l2 and a linear program for linf and l1, each with one half-space per
same-class point. Two things keep this fast:

* screening: proven lower bounds LB_t <= d_t (bisector bounds) order the cells; a cell is solved
  only while the smallest LB_t left is below the best distance found. In l1 / linf the dual-norm
  bounds are computed exactly only for the cells a cheap bound (from the l2 one) does not exclude;
* constraint generation: a program starts with the nearest same-class points as its constraints;
  the most violated constraints at a solution z are the same-class points nearest to z, added until
  none is violated.

**The proof.** ``radius`` (lower) is the minimum over the cells of a proven lower bound: for a
solved cell, weak duality on the solver's multipliers (see :func:`nnmargin._exact.rigorous.dual_bound`):
with the constraints g_j . delta >= h_j and any multipliers lam >= 0, every feasible delta has
lam.h <= (G^T lam).delta <= ||G^T lam||_* ||delta||, so d_t >= lam.h / ||G^T lam||_*, evaluated
in exact integer arithmetic and rounded down (the program over the active constraints is a
relaxation of the cell, so the bound holds for the whole cell); for a cell not solved, its
screening bound, which is at least the smallest one left when the search stopped. No solver
tolerance enters: a loose solver gives a loose bound, never a wrong one. ``radius_upper`` is the
norm of an adversarial example, rounded up, whose class is checked exactly: the target t is closer
than every point of class y in exact rational arithmetic (:func:`nnmargin._exact.cells.proven_flip`).

Everything runs on the exact data: the training points and queries in raw units (uint8
intensities, or the float values as given); data units are raw times ``unit`` (e.g. 1/255).
l2 programs are least-distance programs solved by NNLS (Lawson & Hanson, Solving Least Squares
Problems, 1974, ch. 23); linf / l1 programs by HiGHS through scipy.optimize.linprog. Requires scipy.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ._exact import programs
from ._exact.cells import (ClassBlocks, SameClassPool, class_blocks, dual_norm_up, exact_nearest, l2_screening,
                           pivot_dual_norms_up, proven_flip, ratio_down, weak_dual_bounds)
from ._exact.rigorous import direct_slack, dual_bound, norm_up
from ._names import NUMPY_ORD, UNIT_ROUNDOFF as _U

_MAX_ROUNDS = 500      # constraint-generation rounds per program (each adds >= 1 constraint)
_FIRST_CONSTRAINTS = 4  # same-class points nearest to x a program starts with
_ADD_PER_ROUND = 8     # most violated same-class points added per round
_FEAS_TOL = 1e-10      # relative violation accepted as feasible (the lower bound does not rely on it)
_BOUND_BLOCK = 64      # cells whose exact dual-norm screening bound is computed at once (l1, linf), first...
_MAX_BOUND_BLOCK = 4096  # ... doubling up to this many (numpy's per-call cost matters below a few hundred)
_REFINE_PIVOTS = 16    # same-class pivots of the bisector bound of a cell before it is solved


@dataclass
class ExactSolution:
    """Per-query exact radii, (n,) arrays unless noted, in data units (raw units times ``unit``)."""

    radius: np.ndarray        # proven lower bound, rounded down (inf without other classes, 0 if wrong)
    radius_upper: np.ndarray  # norm of the verified example, rounded up (nan when none was verified)
    primal: np.ndarray        # the solvers' minimal value (not a proof)
    target: np.ndarray        # original training index t of the cell reached, -1 when none
    delta: np.ndarray         # (n, D) the solver's minimal perturbation, nan when none
    programs: np.ndarray      # QPs / LPs solved per query after screening
    candidates: np.ndarray    # other-class points per query before screening


def predict_1nn(train64, z: np.ndarray, unit: float = 1.0) -> np.ndarray:
    """Exact 1NN labels of float64 points z (k, D): training point j is ``train64.points[j] * unit``
    exactly (``points``, ``labels``, ``sq_norms`` as in a Float64TrainSet; a set with ``index``
    breaks ties by it, else by row). Screened in float64 with a proven error bound, the closest
    candidates compared in exact rational arithmetic; ties go to the lowest index."""
    z = np.atleast_2d(np.asarray(z, dtype=np.float64))
    index = getattr(train64, "index", None)
    out = np.empty(len(z), dtype=np.asarray(train64.labels).dtype)
    for r in range(len(z)):
        row, _ = exact_nearest(train64.points, train64.sq_norms, z[r], unit, index)
        out[r] = train64.labels[row]
    return out


def boundary_to_adversarial(blocks: ClassBlocks, x, y, z, t_row, unit=1.0, box=None, norm="l2", skip_row=-1):
    """Turn a boundary point z (raw units) of the cell of row t_row into a verified adversarial
    example in data units: move towards t, which is inside the cell, by the smallest fraction tried
    whose example (rounded to data units, clipped to the box) is proven to change the class.
    Returns (example, its ||example - x * unit||_norm rounded up), or (None, nan)."""
    t = blocks.points[t_row]
    for eps in (1e-12, 1e-10, 1e-8, 1e-6, 1e-4, 1e-2, 1.0):
        cand = ((1 - eps) * z + eps * t) * unit
        if box is not None:
            cand = np.clip(cand, box[0], box[1])
        if proven_flip(blocks, cand, unit, y, t_row, skip_row):
            return cand, norm_up(cand, x, unit, norm)
    return None, math.nan


def lower_bounds(train64, x, pivot, others, norm, pivot_axis: bool = False) -> np.ndarray:
    """Proven bisector bounds (|x-t|^2 - |x-p|^2) / (2 ||t-p||_dual) <= the ``norm`` cell distance
    of every t in ``others`` against the pivot p (direct differences, rounding bounded and
    shifted down); with ``pivot_axis``, ``pivot`` is an array of pivots and the bounds are
    (len(pivot), len(others))."""
    pts = train64.points[others]
    p = train64.points[pivot]
    cd = direct_slack(len(x))
    d_xt = np.sum((pts - x) ** 2, axis=1)
    d_xp = np.sum((p - x) ** 2, axis=-1)
    if pivot_axis:
        d_xt, d_xp, v = d_xt[None, :], d_xp[:, None], (pts[None, :, :] - p[:, None, :]).reshape(-1, len(x))
        den = dual_norm_up(v, norm).reshape(len(p), len(pts))
    else:
        den = dual_norm_up(pts - p, norm)
    return ratio_down(d_xt * (1 - cd) - d_xp * (1 + cd), 2.0 * den)


def exact_radii(trainset, queries, query_labels, idx_same, correct, *, unit: float = 1.0, norm="l2", box=None,
                skip=None, upper=None, batch: int = 32) -> ExactSolution:
    """Exact robust radius intervals of each query (see module docstring).

    Args:
        trainset: a :class:`nnmargin.TrainSet` (raw points: uint8 or float).
        queries: (n, D) queries in the training set's raw units; query_labels: (n,); idx_same: (n,)
            nearest same-class training index (original); correct: (n,) bool, whether the 1NN
            classifies the query correctly (else radius 0).
        unit: data units per raw unit (uint8 scale, 1.0 for float data); results are in data units.
        norm: "l2", "linf" or "l1".
        box: None or (lo, hi): perturbed points must stay in [lo, hi]^D (data units).
        skip: optional (n,) training index each query leaves out of the classifier (leave-one-out).
        upper: optional (n,) known upper bounds in data units (e.g. from an attack) for screening.
        batch: queries whose screening bounds are computed together (memory: ~3 x batch x M floats).
    """
    blocks = class_blocks(trainset)
    xs = np.asarray(queries, dtype=np.float64)
    n, d = xs.shape
    out = ExactSolution(np.zeros(n), np.zeros(n), np.zeros(n), np.full(n, -1), np.full((n, d), np.nan),
                        np.zeros(n, int), np.zeros(n, int))
    raw_box = exact_box = None
    if box is not None:
        raw_box = (box[0] / unit, box[1] / unit)
        exact_box = (Fraction(box[0]) / Fraction(unit), Fraction(box[1]) / Fraction(unit))
    skip_rows = np.full(n, -1) if skip is None else np.where(np.asarray(skip) >= 0, blocks.row_of[skip], -1)
    pivots = blocks.row_of[np.asarray(idx_same)]
    todo = np.flatnonzero(correct)
    for start in range(0, len(todo), batch):
        rows = todo[start:start + batch]
        num, den = l2_screening(blocks, xs[rows], pivots[rows])
        for r, i in enumerate(rows):
            hint = np.inf if upper is None else float(upper[i]) / unit * (1 + 1e-9)
            y, skip_row = query_labels[i], int(skip_rows[i])
            pool = SameClassPool(blocks, xs[i], y, skip_row)
            query = _Query(xs[i], y, pivots[i], skip_row, norm, raw_box, exact_box, unit, pool)
            _solve_query(blocks, query, num[r], den[r], hint, out, i)
    return out


def exact_with_examples(trainset, queries, query_labels, idx_same, correct, *, unit: float = 1.0, norm="l2",
                        box=None, skip=None):
    """:func:`exact_radii` plus the verified adversarial examples, (n, D) float64 in data units
    (nan rows where none was verified or needed; the query itself where it is misclassified)."""
    solution = exact_radii(trainset, queries, query_labels, idx_same, correct, unit=unit, norm=norm, box=box,
                           skip=skip)
    examples = np.full(solution.delta.shape, np.nan)
    wrong = ~np.asarray(correct, dtype=bool)
    examples[wrong] = np.asarray(queries, dtype=np.float64)[wrong] * unit
    blocks = class_blocks(trainset)
    for i in np.flatnonzero(solution.target >= 0):
        z = np.asarray(queries[i], dtype=np.float64) + solution.delta[i] / unit
        skip_row = -1 if skip is None or skip[i] < 0 else int(blocks.row_of[skip[i]])
        adv, up = boundary_to_adversarial(blocks, np.asarray(queries[i], dtype=np.float64), query_labels[i], z,
                                          int(blocks.row_of[solution.target[i]]), unit, box, norm, skip_row)
        solution.radius_upper[i] = up
        if adv is not None:
            examples[i] = adv
    no_target = np.asarray(correct, dtype=bool) & (solution.target < 0)
    solution.radius_upper[no_target] = np.where(np.isinf(solution.radius[no_target]), np.inf, np.nan)
    return solution, examples


@dataclass(frozen=True)
class _Query:
    x: np.ndarray        # (D,) raw units
    y: object
    pivot: int           # row of the nearest same-class point
    skip: int            # row left out of the classifier, -1 for none
    norm: str
    raw_box: tuple       # (lo, hi) floats in raw units for the solvers, or None
    exact_box: tuple     # (lo, hi) Fractions in raw units for the proofs, or None
    unit: float
    pool: SameClassPool  # the same-class points by distance from x


def _cell_distance(blocks: ClassBlocks, q: _Query, t_row: int):
    """(distance, z, lower) for the cell of row t_row against q's class, in raw units: the solver's
    minimal ||z - x|| and boundary point z, and the proven lower bound of the cell distance in data
    units (rounded down)."""
    t = blocks.points[t_row]
    active = [int(r) for r in q.pool.nearest(_FIRST_CONSTRAINTS)]
    box_lo, box_hi = [], []
    # solve on data scaled by a power of two (exact) with coordinates of order one
    c = math.ldexp(1.0, int(np.frexp(max(np.abs(q.x).max(), np.abs(t).max(), 1e-300))[1]))
    sbox = None if q.raw_box is None else (q.raw_box[0] / c, q.raw_box[1] / c)
    for _ in range(_MAX_ROUNDS):
        ps = blocks.points[active]
        if q.norm == "l2":
            zs, lam, mu_lo, mu_hi = programs.least_distance(q.x / c, t / c, ps / c, sbox, box_lo, box_hi)
        else:
            zs, lam, mu_lo, mu_hi = programs.min_norm_lp(q.x / c, t / c, ps / c, sbox, q.norm)
        z = zs * c
        # the most violated constraints are the same-class points nearest to z
        zt = np.sum((z - t) ** 2)
        near = q.pool.nearest_to(z, float(np.sqrt(np.sum((z - q.x) ** 2)) + np.sqrt(zt)), _ADD_PER_ROUND)
        zp = np.sum((blocks.points[near] - z) ** 2, axis=1)
        new = [int(j) for j, v in zip(near, zp) if v < zt - _FEAS_TOL * max(zt, 1e-300) and j not in active]
        box_changed = False
        if q.raw_box is not None and q.norm == "l2":  # the LPs carry the box as variable bounds already
            lo_bad = [int(i) for i in np.flatnonzero(z < q.raw_box[0] - 1e-12 * c) if i not in box_lo]
            hi_bad = [int(i) for i in np.flatnonzero(z > q.raw_box[1] + 1e-12 * c) if i not in box_hi]
            box_lo, box_hi = box_lo + lo_bad, box_hi + hi_bad
            box_changed = bool(lo_bad or hi_bad)
        if not new and not box_changed:
            break
        active += new
    else:
        raise RuntimeError("constraint generation did not converge")
    # multipliers of the raw-unit rows: bisector rows scale by c^2, box rows by c
    lower = dual_bound(q.x, t, blocks.points[active], lam / (c * c), q.norm, q.unit, q.exact_box, mu_lo / c, mu_hi / c)
    return float(np.linalg.norm(z - q.x, ord=NUMPY_ORD[q.norm])), z, lower


def _solve_query(blocks: ClassBlocks, q: _Query, num, den, best: float, out: ExactSolution, i: int):
    """Visit the cells of other-class points in increasing proven lower bound (raw units; num,
    den: the query's rows of :func:`l2_screening`), solving each program until the smallest bound
    left is above the best distance found; the query's lower bound is the minimum of the solved
    cells' dual bounds and that smallest bound left."""
    same = blocks.block[q.y]
    out.candidates[i] = len(blocks.labels) - (same.stop - same.start)
    if not out.candidates[i]:
        out.radius[i] = out.radius_upper[i] = out.primal[i] = np.inf
        return
    lb_l2 = ratio_down(num, den)
    lb_l2[same] = np.inf
    weak = weak_dual_bounds(blocks, q.pivot, lb_l2, q.norm)
    order = _LazyOrder(weak, blocks.index, out.candidates[i])
    heap = []  # cells with their exact screening bound below the best distance: (bound, index, row, refined)
    pivots = q.pool.nearest(_REFINE_PIVOTS)
    lower, best_row, best_z = np.inf, -1, None
    dropped = np.inf  # smallest exact screening bound of the cells kept out of the heap (>= best then)
    block = _BOUND_BLOCK
    while True:
        next_weak = order.next_key()
        top = heap[0][0] if heap else np.inf
        if min(top, next_weak) >= best:
            break  # every cell left is provably farther than the best found
        # the next cells by their weak bound get their exact screening bound, in growing blocks; until a
        # first cell is solved (an upper end to screen against) the heap's best cell goes first
        if next_weak < top and (np.isfinite(best) or not heap):
            rows = order.take(block)
            block = min(2 * block, _MAX_BOUND_BLOCK)
            bounds = weak[rows]
            if q.norm != "l2":
                bounds = np.maximum(bounds, ratio_down(num[rows], 2.0 * pivot_dual_norms_up(blocks, rows, q.pivot,
                                                                                           q.norm)))
            keep = bounds < best
            if not keep.all():
                dropped = min(dropped, float(bounds[~keep].min()))
            for b, r in zip(bounds[keep].tolist(), rows[keep].tolist()):
                heapq.heappush(heap, (b, int(blocks.index[r]), r, False))
            continue
        bound, index, row, refined = heapq.heappop(heap)
        if not refined:  # before solving: the best bisector bound over several pivots
            better = float(lower_bounds(blocks, q.x, pivots, np.array([row]), q.norm, pivot_axis=True).max())
            heapq.heappush(heap, (max(bound, better), index, row, True))
            continue
        dist, z, cell_lower = _cell_distance(blocks, q, row)
        out.programs[i] += 1
        lower = min(lower, max(cell_lower, _to_data_down(bound, q.unit)))
        if dist < best or (best_row < 0 and dist <= best):
            best, best_row, best_z = dist, row, z
    out.radius[i] = min(lower, _to_data_down(min(top, next_weak, dropped), q.unit))
    out.primal[i] = best * q.unit
    if best_row >= 0:
        out.target[i] = blocks.index[best_row]
        out.delta[i] = (best_z - q.x) * q.unit


class _LazyOrder:
    """Rows by increasing key (ties: lowest original index), sorted only as far as they are taken:
    the first few from a partition, all of them only if the search goes that far."""

    def __init__(self, keys: np.ndarray, index: np.ndarray, n_finite: int, first: int = 512):
        self.keys, self.index, self.n = keys, index, int(n_finite)
        k = min(first, self.n)
        part = np.argpartition(keys, k - 1)[:k] if k < len(keys) else np.arange(len(keys))
        self.order = part[np.lexsort((index[part], keys[part]))][:k]
        self.full, self.pos = k >= self.n, 0

    def _extend(self):
        taken = np.zeros(len(self.keys), dtype=bool)
        taken[self.order[:self.pos]] = True
        rest = np.lexsort((self.index, self.keys))
        self.order = np.concatenate([self.order[:self.pos], rest[~taken[rest]]])[:self.n]
        self.full = True

    def next_key(self) -> float:
        if self.pos >= len(self.order) and not self.full:
            self._extend()
        return float(self.keys[self.order[self.pos]]) if self.pos < len(self.order) else np.inf

    def take(self, k: int) -> np.ndarray:
        if self.pos + k > len(self.order) and not self.full:
            self._extend()
        rows = self.order[self.pos:self.pos + k]
        self.pos += len(rows)
        return rows


def _to_data_down(v: float, unit: float) -> float:
    """A raw-unit lower bound in data units, rounded down."""
    return v * unit * (1 - 2 * _U) if np.isfinite(v) else v
