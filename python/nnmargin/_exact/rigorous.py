"""Exact arithmetic behind the exact solver's proofs.

Every float64 value is a dyadic rational m * 2**e; :func:`dyadic` writes arrays of them as integers
over one power of two, so sums and products of the problem data are exact integers (Python ints
where int64 could overflow). Results are turned back into floats with directed rounding: each
conversion is checked against the exact rational and moved one float towards the safe side when
needed (:func:`round_down`, :func:`round_up`, :func:`sqrt_down`, :func:`sqrt_up`).

The problem data are the exact values of the training points and queries in raw units (uint8
intensities, or the float values as given) times ``unit``.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from .._names import UNIT_ROUNDOFF

_MULTIPLIER_BITS = 40  # multipliers are rounded to integers < 2**40 (any multipliers >= 0 are dual feasible)


def screening_slack(dim: int) -> float:
    """c such that c * (|a|^2 + |b|^2) bounds the error of |a|^2 - 2 a.b + |b|^2 evaluated in
    float64 (the norms by einsum, a.b by BLAS in any order), against the exact |a - b|^2.

    Each of |a|^2, a.b, |b|^2 is a sum of D rounded products: error <= gamma_D times the sum of
    the absolute terms (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., eq. 3.5),
    so <= gamma_D (|a|^2 + 2 |a||b| + |b|^2); the two additions add u each of the same magnitude;
    with |a||b| <= (|a|^2 + |b|^2) / 2 the total is <= 2 gamma_{D+3} (|a|^2 + |b|^2). We use
    4 (D + 8) u, twice that (it also covers the rounding of this product and of one division of the
    point by a unit, 3 u (1 + 2u) (|a|^2 + |b|^2) more, and the computed norms being rounded)."""
    return 4.0 * (dim + 8) * UNIT_ROUNDOFF


def direct_slack(dim: int) -> float:
    """Relative error bound of sum_i |a_i - b_i|^p (p = 1, 2) or max_i |a_i - b_i| from direct
    differences in float64: each term <= 3 roundings, the sum gamma_D (Higham eq. 3.5), so
    <= gamma_{D+3}; we use 2 (D + 8) u."""
    return 2.0 * (dim + 8) * UNIT_ROUNDOFF


def dyadic(a, dtype=None):
    """``(ints, e)`` with a == ints * 2**e exactly for a float64 array ``a``. ints is int64 when every
    |ints| < 2**62 (and ``dtype`` is not object), else an object array of Python ints."""
    a = np.asarray(a, dtype=np.float64)
    mant, ex = np.frexp(a)
    m = (mant * 2.0**53).astype(np.int64)           # exact: |m| < 2**53
    ex = ex.astype(np.int64) - 53
    nz = m != 0
    if not nz.any():
        return np.zeros(a.shape, dtype=object if dtype is object else np.int64), 0
    low = np.where(nz, m & -m, 1)                   # strip trailing zero bits
    tz = np.frexp(low.astype(np.float64))[1].astype(np.int64) - 1
    m, ex = m >> tz, ex + tz
    e = int(ex[nz].min())
    shift = np.where(nz, ex - e, 0)
    bits = np.frexp(np.abs(m).astype(np.float64))[1].astype(np.int64) + shift
    if dtype is not object and int(bits.max()) <= 62:
        return np.left_shift(m, shift), e
    return np.left_shift(m.astype(object), shift.astype(object)), e


def _nearest_float_towards(q: Fraction, up: bool) -> float:
    """The float next to q >= 0 on its upper (``up``) or lower side, within one float of it."""
    if q <= 0:
        return 0.0
    try:
        f = float(q)
    except OverflowError:
        return math.inf if up else float(np.finfo(np.float64).max)
    if (Fraction(f) < q) if up else (Fraction(f) > q):
        f = math.nextafter(f, math.inf if up else 0.0)
    return f


def round_down(q: Fraction) -> float:
    """The largest float <= q (q >= 0)."""
    return _nearest_float_towards(q, up=False)


def round_up(q: Fraction) -> float:
    """The smallest float >= q (q >= 0; inf beyond the float range)."""
    return _nearest_float_towards(q, up=True)


def sqrt_down(q: Fraction) -> float:
    """A float <= sqrt(q), checked exactly."""
    s = math.sqrt(round_down(q))
    while s > 0 and Fraction(s) ** 2 > q:
        s = math.nextafter(s, 0.0)
    return s


def sqrt_up(q: Fraction) -> float:
    """A float >= sqrt(q), checked exactly."""
    s = math.sqrt(round_up(q))
    while math.isfinite(s) and Fraction(s) ** 2 < q:
        s = math.nextafter(s, math.inf)
    return s


def _pow2(e: int) -> Fraction:
    return Fraction(2) ** e


def scaled_difference(z, rows, unit: float = 1.0):
    """``(diff, e)``: the exact z - unit * rows as Python integers (object array, rows' shape) times
    2**e; z (D,) and rows (..., D) float64, unit a float."""
    zi, ze = dyadic(z, object)
    ri, re = dyadic(rows, object)
    ui, ue = dyadic(np.array([unit]), object)
    e = min(ze, re + ue)
    return zi * (1 << (ze - e)) - ri * (int(ui[0]) << (re + ue - e)), e


def exact_sq_distances(z, rows, unit: float = 1.0) -> list:
    """Exact |z - unit * r|^2 (Fractions) for each row r of ``rows`` (k, D)."""
    diff, e = scaled_difference(z, rows, unit)
    return [Fraction(int(v)) * _pow2(2 * e) for v in (diff * diff).sum(axis=1)]


def norm_up(z, x, unit: float, norm: str) -> float:
    """||z - unit * x||_norm of float64 vectors, exactly, rounded up."""
    diff, e = scaled_difference(z, np.asarray(x)[None, :], unit)
    diff = diff[0]
    if norm == "l2":
        return sqrt_up(Fraction(int((diff * diff).sum())) * _pow2(2 * e))
    absd = np.abs(diff)
    total = max(absd.tolist()) if norm == "linf" else int(absd.sum())
    return round_up(Fraction(int(total)) * _pow2(e))


def _fixed_point(values, extra: int):
    """``(L, a)``: nonnegative int64 L_j with L_j * 2**a <= values_j * 2**extra, within 2**-40 of
    the largest (negative, nan or tiny values become 0; any multipliers >= 0 are valid)."""
    v = np.nan_to_num(np.maximum(np.asarray(values, dtype=np.float64), 0.0), nan=0.0, posinf=0.0)
    out = np.zeros(len(v), dtype=np.int64)
    pos = v > 0
    if not pos.any():
        return out, 0
    mant, ex = np.frexp(v[pos])
    top = int(ex.max())
    out[pos] = np.floor(np.ldexp(mant, ex.astype(np.int64) - top + _MULTIPLIER_BITS)).astype(np.int64)
    return out, top - _MULTIPLIER_BITS + extra


def dual_bound(x, t, ps, lam, norm: str, unit: float = 1.0, box=None, mu_lo=None, mu_hi=None) -> float:
    """A proven lower bound (rounded down) on min ||delta||_norm over x + delta in the cell of t
    against the points ``ps`` (and in the box), in data units (raw units times ``unit``).

    The cell program, in raw units: z = x + delta is at least as close to t as to every p_j iff
    g_j . delta >= h_j with g_j = 2 (t - p_j), h_j = |x - t|^2 - |x - p_j|^2; the box [lo, hi] adds
    delta_i >= lo - x_i and -delta_i >= x_i - hi. For multipliers lam_j, mu_i >= 0 (any: here the
    solver's, rounded to integers) and every feasible delta, with w = sum_j lam_j g_j + sum_i
    (mu_lo_i - mu_hi_i) e_i and N = sum_j lam_j h_j + sum_i mu_lo_i (lo - x_i) + mu_hi_i (x_i - hi):

        N <= w . delta <= ||w||_* ||delta||        (Hoelder, ||.||_* the dual norm)

    so ||delta|| >= N / ||w||_* when N > 0 (N > 0 = w proves the program infeasible: inf). This is
    weak duality; at the optimal multipliers it is the optimum itself (l2: the least-distance
    multipliers of the NNLS reduction; linf / l1: the LP duals). Only lam, mu come from a solver:
    N and w are evaluated exactly in integers (the data as integers over a common power of two
    2**e, the multipliers as integers < 2**40), and the quotient is rounded down. The program over
    a subset of the constraints is a relaxation, so the bound holds for the whole cell.

    Args: x, t (D,), ps (k, D) float64 raw values; lam (k,) >= 0; box None or (lo, hi) Fractions
    in raw units; mu_lo, mu_hi (D,) >= 0 box multipliers.
    """
    d = len(x)
    ints, e = dyadic(np.vstack([x[None, :], t[None, :], ps]))
    if ints.dtype != object:
        nbits = int(np.frexp(float(np.abs(ints).max()))[1])
        if 2 * nbits + 4 + d.bit_length() > 62 or _MULTIPLIER_BITS + nbits + 3 + (len(ps) + 2).bit_length() > 62:
            ints = ints.astype(object)
    xi, ti, pi = ints[0], ints[1], ints[2:]
    zeros = np.zeros(d)
    mu_lo = zeros if mu_lo is None or box is None else mu_lo
    mu_hi = zeros if mu_hi is None or box is None else mu_hi
    # raw rows are 2**(2e) (bisector) and 2**e (box) times their integer form: the multipliers of
    # the integer rows are lam * 2**(2e) ~ big * 2**a and mu * 2**e ~ (lo_m, hi_m) * 2**b
    big, a = _fixed_point(lam, 2 * e)
    mu, b = _fixed_point(np.concatenate([mu_lo, mu_hi]), e)
    lo_m, hi_m = mu[:d], mu[d:]
    if ints.dtype == object:
        big = big.astype(object)
    h = ((xi - ti) ** 2).sum() - ((pi - xi[None, :]) ** 2).sum(axis=1)
    w_cell = 2 * (big @ (ti[None, :] - pi))
    num_cell = sum(int(p) * int(q) for p, q in zip(big.tolist(), h.tolist()))
    shift = min(a, b) if mu.any() else a  # both terms times 2**-shift: integers
    w = w_cell.astype(object) * (1 << (a - shift))
    num = Fraction(num_cell * (1 << (a - shift)))
    if mu.any():
        lo_o, hi_o = lo_m.astype(object), hi_m.astype(object)
        w = w + (lo_o - hi_o) * (1 << (b - shift))
        scale = _pow2(-e)
        box_num = (box[0] * scale) * int(lo_m.sum()) - (box[1] * scale) * int(hi_m.sum())
        box_num += int((xi.astype(object) * (hi_o - lo_o)).sum())
        num += box_num * (1 << (b - shift))
    if num <= 0:
        return 0.0
    wl = [int(v) for v in w.tolist()]
    if not any(wl):
        return math.inf
    factor = _pow2(e) * Fraction(unit)
    if norm == "l2":
        return sqrt_down(num * num * factor * factor / sum(v * v for v in wl))
    dual = sum(abs(v) for v in wl) if norm == "linf" else max(abs(v) for v in wl)
    return round_down(num * factor / dual)
