"""Exact radii as proofs (issue 10): every exact radius is an interval [radius, radius_upper] that
contains the true robust radius (checked against an independent convex solver), margin <= bisector <=
the solver's own lower bound, the lower bound stays sound under a loose solver (where the old 1e-8
shading was not), labels and adversarial examples are checked in exact rational arithmetic, and
leave-one-out exact radii equal a brute force on the training set without the point."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import nnmargin
from nnmargin import exact
from nnmargin._exact import programs
from nnmargin._exact.rigorous import dual_bound

pytest.importorskip("cvxpy")
pytest.importorskip("scipy")
from test_exact import independent_radius  # noqa: E402  (the cvxpy / Clarabel reference)

REF_TOL = 1e-8  # the reference's own accuracy (relative), with tight Clarabel tolerances


def _solution(x, y, t, ty, norm, box=None, unit=1.0, train=None):
    """The solver's own ExactSolution (before certify takes the max with the bisector bound)."""
    train = nnmargin.TrainSet(t, ty) if train is None else train
    cert = nnmargin.certify(x, y, train, scale=None if t.dtype != np.uint8 else unit)
    return exact.exact_with_examples(train, x, y, cert.idx_same, cert.correct, unit=unit, norm=norm, box=box)


def _exact_label(z, t, ty, unit=Fraction(1)):
    """The 1NN label of z among the points t * unit, all in exact rationals (ties: lowest index)."""
    zf = [Fraction(float(v)) for v in z]
    d = [sum((a - Fraction(float(b)) * unit) ** 2 for a, b in zip(zf, row)) for row in t]
    return ty[min(range(len(t)), key=lambda j: (d[j], j))]


def _upper_covers_exact_distance(upper, a, b, norm):
    """upper >= ||a - b||_norm in exact rationals (a float norm may round one ulp above the truth)."""
    diff = [abs(Fraction(float(p)) - Fraction(float(q))) for p, q in zip(a, b)]
    if norm == "l2":
        return Fraction(float(upper)) ** 2 >= sum(v * v for v in diff)
    return Fraction(float(upper)) >= (max(diff) if norm == "linf" else sum(diff))


@settings(max_examples=25, deadline=None)
@example(m=7, d=4, n_classes=2, norm="l1", boxed=False, seed=33554431)  # float norm 1 ulp above the exact one
@example(m=4, d=4, n_classes=2, norm="linf", boxed=False, seed=0)
@example(m=20, d=6, n_classes=3, norm="l2", boxed=True, seed=3)
@given(m=st.integers(4, 25), d=st.integers(2, 10), n_classes=st.integers(2, 3),
       norm=st.sampled_from(["l2", "linf", "l1"]), boxed=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_interval_contains_the_true_radius_and_bounds_are_ordered(m, d, n_classes, norm, boxed, seed):
    rng = np.random.default_rng(seed)
    t, ty = rng.uniform(0, 1, (m, d)), rng.integers(0, n_classes, m)
    x, y = rng.uniform(0, 1, (4, d)), rng.integers(0, n_classes, 4)
    box = (0.0, 1.0) if boxed else None
    margin = nnmargin.certify(x, y, (t, ty), norm=norm)
    bis = nnmargin.certify(x, y, (t, ty), bound="bisector", norm=norm)
    sol, adv = _solution(x, y, t, ty, norm, box)
    ok = margin.correct & (sol.target >= 0)
    assert (margin.radius <= bis.radius).all()
    assert (bis.radius[ok] <= sol.radius[ok] * (1 + 1e-12)).all()  # the solver's lower bound, no max taken
    assert (sol.radius <= sol.radius_upper).all() or np.isnan(sol.radius_upper[ok]).any()
    for i in np.flatnonzero(ok):
        ref = independent_radius(x[i], y[i], t, ty, norm, box)
        assert sol.radius[i] <= ref * (1 + REF_TOL) + 1e-12
        assert sol.radius_upper[i] >= ref * (1 - REF_TOL) - 1e-12
        assert _exact_label(adv[i], t, ty) != y[i]
        assert _upper_covers_exact_distance(sol.radius_upper[i], adv[i], x[i], norm)
    assert (np.abs(sol.radius_upper[ok] - sol.radius[ok]) <= 1e-6 * sol.radius_upper[ok]).all()  # closed
    assert (sol.radius[~margin.correct] == 0).all() and (sol.radius_upper[~margin.correct] == 0).all()


@pytest.mark.parametrize("norm, tol", [("linf", 0.03), ("l1", 0.05)])
def test_a_loose_solver_gives_a_loose_lower_bound_never_a_wrong_one(monkeypatch, norm, tol):
    """With HiGHS's dual feasibility tolerance at a few % the simplex stops at suboptimal vertices:
    the solver's values exceed the true radius, so the old radius (solver value x (1 - 1e-8)) was
    wrong; the weak-duality bound from the same solver's multipliers stays below the truth."""
    monkeypatch.setattr(programs, "LP_OPTIONS", {"dual_feasibility_tolerance": tol})
    overshoot, checked = 0.0, 0
    for seed in range(8):
        rng = np.random.default_rng(seed)
        t, ty = rng.normal(size=(40, 12)), rng.integers(0, 2, 40)
        x, y = rng.normal(size=(10, 12)), rng.integers(0, 2, 10)
        try:
            sol, _ = _solution(x, y, t, ty, norm)
            cert = nnmargin.certify(x, y, (t, ty), bound="exact", norm=norm)
        except RuntimeError:  # HiGHS sometimes gives up at this tolerance (model status unknown)
            continue
        for i in np.flatnonzero(cert.correct):
            ref = independent_radius(x[i], y[i], t, ty, norm)
            overshoot = max(overshoot, sol.primal[i] * (1 - 1e-8) / ref - 1)
            assert cert.radius[i] <= ref * (1 + REF_TOL)        # what certify reports is still a proof
            assert cert.radius_upper[i] >= ref * (1 - REF_TOL)  # and so is the upper end
            checked += 1
    assert checked >= 10 and overshoot > 1e-3  # the shaded solver value would have been unsound


def test_weak_duality_holds_for_arbitrary_multipliers():
    """dual_bound is a lower bound for any multipliers >= 0, not only optimal ones."""
    rng = np.random.default_rng(7)
    t, ty = rng.normal(size=(12, 5)), np.array([0] * 6 + [1] * 6)
    x, y = t[0] + 0.1 * rng.normal(size=5), 0
    ref = independent_radius(x, y, t, ty, "l2")  # min over the cells of class 1
    same = t[ty == 0]
    for norm in ("l2", "linf", "l1"):
        ref = independent_radius(x, y, t, ty, norm)
        for _ in range(20):
            lam = rng.exponential(size=len(same)) * (rng.random(len(same)) < 0.6)
            bounds = [dual_bound(x, u, same, lam, norm) for u in t[ty == 1]]
            assert min(bounds) <= ref * (1 + REF_TOL)


def test_predict_1nn_decides_near_ties_exactly():
    """Points within a few ulps of a bisector: float64 distances tie or lie, the exact check does not."""
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=8), rng.normal(size=8)
    t, ty = np.stack([a, b, rng.normal(size=8) + 10]), np.array([0, 1, 0])
    train64 = nnmargin.TrainSet(t, ty).float64(1.0)
    mid = (a + b) / 2
    zs = np.stack([mid + k * np.spacing(np.abs(mid).max()) * (b - a) for k in range(-4, 5)])
    got = exact.predict_1nn(train64, zs)
    assert got.tolist() == [_exact_label(z, t, ty) for z in zs]
    assert len(set(got.tolist())) == 2


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_uint8_pixels_examples_are_proven_on_the_exact_data(norm):
    """uint8 data at scale 1/255: the classifier's points are k * scale exactly; every example is
    misclassified there in exact arithmetic, and radius_upper bounds its exact distance."""
    rng = np.random.default_rng(11)
    t = rng.integers(0, 256, (30, 10)).astype(np.uint8)
    ty, x, y = rng.integers(0, 2, 30), rng.integers(0, 256, (6, 10)).astype(np.uint8), rng.integers(0, 2, 6)
    cert = nnmargin.certify(x, y, (t, ty), bound="exact", norm=norm, box=True)
    scale = Fraction(cert.scale)
    ok = cert.correct
    for i in np.flatnonzero(ok):
        adv = cert.adversarial[i]
        assert _exact_label(adv, t, ty, scale) != y[i]
        diff = [Fraction(float(a)) - int(b) * scale for a, b in zip(adv, x[i])]
        dist = sum(v * v for v in diff) if norm == "l2" else max(abs(v) for v in diff)
        assert Fraction(cert.radius_upper[i]) ** (2 if norm == "l2" else 1) >= dist
        ref = independent_radius(x[i] / 255.0, y[i], t / 255.0, ty, norm, box=(0.0, 1.0))
        assert cert.radius[i] <= ref * (1 + 1e-7) and cert.radius_upper[i] >= ref * (1 - 1e-7)
    gaps = cert.gap_summary()
    assert gaps["not_closed"] == 0 and gaps["exact_points"] == ok.sum()
    assert "not closed (gap > 1e-06): 0 of" in cert.summary()


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_leave_one_out_exact_equals_the_training_set_without_the_point(norm):
    rng = np.random.default_rng(5)
    t = rng.integers(0, 256, (24, 6)).astype(np.uint8)
    t[5] = t[4]  # a duplicate: without itself, point 5 still has its twin as a neighbour
    ty = rng.integers(0, 2, 24)
    loo = nnmargin.certify(t, ty, (t, ty), bound="exact", norm=norm, leave_one_out=True, batch_size=7)
    assert loo.leave_one_out and loo.radius_upper is not None
    for i in range(len(t)):
        keep = np.arange(len(t)) != i
        alone = nnmargin.certify(t[i:i + 1], ty[i:i + 1], (t[keep], ty[keep]), bound="exact", norm=norm)
        assert loo.correct[i] == alone.correct[0]
        np.testing.assert_allclose(loo.radius[i], alone.radius[0], rtol=1e-9)
        np.testing.assert_allclose(loo.radius_upper[i], alone.radius_upper[0], rtol=1e-6)
        if alone.correct[0]:
            ref = independent_radius(t[i] / 255.0, ty[i], t[keep] / 255.0, ty[keep], norm)
            assert loo.radius[i] <= ref * (1 + 1e-7) <= loo.radius_upper[i] * (1 + 2e-7)
    # with the point itself in the classifier every training point is robust up to its nearest
    # other-class bisector; without it some are not: the two conventions differ
    with_self = nnmargin.certify(t, ty, (t, ty), bound="exact", norm=norm)
    assert (with_self.radius >= loo.radius).all() and (with_self.radius > loo.radius).any()


def test_radius_upper_only_for_the_exact_bound_and_kept_across_chunks():
    rng = np.random.default_rng(2)
    t, ty = rng.normal(size=(30, 5)), rng.integers(0, 2, 30)
    x, y = rng.normal(size=(9, 5)), rng.integers(0, 2, 9)
    assert nnmargin.certify(x, y, (t, ty), bound="bisector").radius_upper is None
    whole = nnmargin.certify(x, y, (t, ty), bound="exact")
    chunked = nnmargin.certify(x, y, (t, ty), bound="exact", batch_size=4)
    np.testing.assert_array_equal(whole.radius_upper, chunked.radius_upper)
    np.testing.assert_array_equal(whole.radius, chunked.radius)
    assert len(whole.to_dict()["radius_upper"]) == 9 and "gap_median" in whole.to_dict(arrays=False)
    assert whole.to_csv().splitlines()[0].endswith(",radius,radius_upper")
