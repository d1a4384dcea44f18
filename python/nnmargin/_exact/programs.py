"""The cell programs of the exact solver, each with the multipliers its lower bound is built from.

A program: min ||delta||_norm s.t. g_j . delta >= h_j for the active same-class points p_j, with
g_j = 2 (t - p_j), h_j = |x - t|^2 - |x - p_j|^2 (z = x + delta at least as close to t as to p_j),
and optionally a box lo <= x + delta <= hi. l2: a least-distance program, solved by the NNLS
reduction (Lawson & Hanson, Solving Least Squares Problems, 1974, ch. 23); linf / l1: a linear
program, solved by HiGHS through scipy.optimize.linprog. The solvers run on data scaled by a
power of two (exact) so that the coordinates are O(1).
"""
from __future__ import annotations

import numpy as np

# HiGHS options of the linear programs (module level so a test can loosen them).
LP_OPTIONS = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}


def _rows(x, t, ps):
    g = 2.0 * (t[None, :] - ps)
    h = np.sum((x - t) ** 2) - np.sum((ps - x[None, :]) ** 2, axis=1)
    return g, h


def least_distance(x, t, ps, box=None, box_lo=(), box_hi=()):
    """argmin ||z - x||_2 over the program above, with the box rows of coordinates box_lo
    (z_i >= lo) and box_hi (z_i <= hi) only. Returns (z, lam (k,), mu_lo (D,), mu_hi (D,)): the
    multipliers of the rows (the NNLS solution u; the optimal ones are u / (1 - h.u))."""
    from scipy.optimize import nnls

    d = len(x)
    g, h = _rows(x, t, ps)
    box_lo, box_hi = np.asarray(box_lo, dtype=int), np.asarray(box_hi, dtype=int)
    if box is not None and (len(box_lo) or len(box_hi)):
        eye = np.eye(d)
        g = np.vstack([g, eye[box_lo], -eye[box_hi]])
        h = np.concatenate([h, box[0] - x[box_lo], x[box_hi] - box[1]])
    mu_lo, mu_hi = np.zeros(d), np.zeros(d)
    k = len(ps)
    if (h <= 0).all():
        return x.copy(), np.zeros(k), mu_lo, mu_hi
    e = np.vstack([g.T, h[None, :]])
    f = np.zeros(d + 1)
    f[-1] = 1.0
    u, _ = nnls(e, f, maxiter=50 * e.shape[1] + 100)
    r = e @ u - f
    if abs(r[-1]) < 1e-300:
        raise RuntimeError("LDP infeasible: a cell of the 1NN classifier came out empty")
    mu_lo[box_lo] = u[k:k + len(box_lo)]
    mu_hi[box_hi] = u[k + len(box_lo):]
    return x - r[:-1] / r[-1], u[:k], mu_lo, mu_hi


def min_norm_lp(x, t, ps, box, norm):
    """argmin ||z - x||_norm (linf or l1) over the program above (box as variable bounds). Returns
    (z, lam (k,), mu_lo (D,), mu_hi (D,)): HiGHS's duals of the cell rows and of the bounds."""
    from scipy import sparse
    from scipy.optimize import linprog

    d = len(x)
    g, h = _rows(x, t, ps)  # as A_ub delta <= b_ub: -g delta <= -h
    eye = sparse.identity(d, format="csr")
    cell = sparse.csr_matrix(-g)
    if norm == "linf":  # variables (delta, s): min s, -s <= delta_i <= s
        c = np.zeros(d + 1)
        c[-1] = 1.0
        ones = sparse.csr_matrix(np.ones((d, 1)))
        a_ub = sparse.vstack([sparse.hstack([eye, -ones]), sparse.hstack([-eye, -ones]),
                              sparse.hstack([cell, sparse.csr_matrix((len(h), 1))])])
        bounds = [(None, None)] * d + [(0, None)]
    else:  # l1: variables (delta, u): min sum u, -u <= delta <= u
        c = np.concatenate([np.zeros(d), np.ones(d)])
        a_ub = sparse.vstack([sparse.hstack([eye, -eye]), sparse.hstack([-eye, -eye]),
                              sparse.hstack([cell, sparse.csr_matrix((len(h), d))])])
        bounds = [(None, None)] * d + [(0, None)] * d
    b_ub = np.concatenate([np.zeros(2 * d), -h])
    if box is not None:
        bounds[:d] = [(box[0] - xi, box[1] - xi) for xi in x]
    res = linprog(c, A_ub=a_ub.tocsr(), b_ub=b_ub, bounds=bounds, method="highs", options=dict(LP_OPTIONS))
    if res.status != 0:
        raise RuntimeError(f"linear program failed: {res.message}")
    lam = -res.ineqlin.marginals[2 * d:]
    mu_lo = res.lower.marginals[:d] if box is not None else np.zeros(d)
    mu_hi = -res.upper.marginals[:d] if box is not None else np.zeros(d)
    return x + res.x[:d], lam, mu_lo, mu_hi
