"""The fused bisector-bound kernel against a float64 numpy evaluation of the same formula."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnmargin
import nnmargin._core as core
from nnmargin.bounds import choose_pivots, norm_factor
from nnmargin.certify import RawNeighbours
from nnmargin.reference import bisector_bound



def run(x, y, t, ty, norm, pivots, isa):
    scale = 1.0 if t.dtype == np.uint8 else None
    kw = dict(norm=norm, scale=scale, isa=isa)
    return (
        nnmargin.certify(x, y, (t, ty), bound="bisector", pivots=pivots, **kw),
        nnmargin.certify(x, y, (t, ty), bound="margin", **kw),
    )


def pivots_used(x, y, t, ty, n_pivots):
    ts = nnmargin.TrainSet(t, ty)
    prepared = ts.prepared("l2")

    def search(q, lab, skip):
        return RawNeighbours(*core.search(prepared, q, ts.class_ids(lab), skip))

    base = search(x, y, None)
    return choose_pivots(ts, x, y, base, n_pivots, search)


@pytest.mark.parametrize("norm", ["l2", "linf", "l1"])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("n_pivots", [1, 3])
def test_kernel_matches_reference_and_rounds_down(dtype, norm, isa, n_pivots):
    rng = np.random.default_rng(11)
    if dtype == np.uint8:
        t, x = rng.integers(0, 256, (300, 37)).astype(dtype), rng.integers(0, 256, (40, 37)).astype(dtype)
    else:
        t, x = rng.normal(size=(300, 37)).astype(dtype), rng.normal(size=(40, 37)).astype(dtype)
    ty, y = rng.integers(0, 3, 300), rng.integers(0, 3, 40)
    bis, margin = run(x, y, t, ty, norm, n_pivots, isa)
    ok = bis.correct
    ref = bisector_bound(x[ok], y[ok], t, ty, pivots_used(x[ok], y[ok], t, ty, n_pivots), norm)
    got = bis.radius[ok]
    assert (got <= np.maximum(ref, margin.radius[ok]) * (1 + 1e-15)).all()  # never above the true value
    np.testing.assert_allclose(got, np.maximum(ref, margin.radius[ok]), rtol={np.uint8: 1e-12, np.float32: 2e-3, np.float64: 1e-9}[dtype])  # float: worst-case screening slack
    assert (bis.radius >= margin.radius).all() and (bis.radius[~ok] == 0).all()


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(2, 80),
    d=st.integers(1, 40),
    n_classes=st.integers(2, 3),
    alphabet=st.integers(1, 6),
    norm=st.sampled_from(["l2", "linf", "l1"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_bisector_dominates_margin_on_ties_and_duplicates(m, d, n_classes, alphabet, norm, seed):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, alphabet + 1, (m, d)).astype(np.uint8)
    x = rng.integers(0, alphabet + 1, (10, d)).astype(np.uint8)
    ty, y = rng.integers(0, n_classes, m), rng.integers(0, n_classes, 10)
    bis, margin = run(x, y, t, ty, norm, 1, "auto")
    assert (bis.radius >= margin.radius).all()
    ok = bis.correct & (bis.idx_other >= 0)
    ref = bisector_bound(x[ok], y[ok], t, ty, bis.idx_same[ok, None], norm)
    assert (bis.radius[ok] <= np.maximum(ref, margin.radius[ok]) * (1 + 1e-15) + 1e-300).all()


def test_margin_converts_between_norms():
    assert norm_factor("l2", "l1", 100) == 1.0 and norm_factor("linf", "l2", 100) == 1.0
    assert norm_factor("l2", "linf", 100) == pytest.approx(10.0, rel=1e-15) and norm_factor("l2", "linf", 100) >= 10
    assert norm_factor("l1", "linf", 100) >= 100 and norm_factor("l1", "l2", 100) >= 10
    rng = np.random.default_rng(3)
    t, ty = rng.normal(size=(50, 16)), rng.integers(0, 2, 50)
    l2 = nnmargin.certify(t[:5], ty[:5], (t, ty), leave_one_out=False)
    linf = nnmargin.certify(t[:5], ty[:5], (t, ty), norm="linf")
    np.testing.assert_allclose(linf.radius, l2.radius / 4, rtol=1e-14)
    assert (linf.radius <= l2.radius / 4).all()


def test_bisector_options_are_checked():
    t, ty = np.eye(4), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="metric='l2'"):
        nnmargin.certify(t, ty, (t, ty), metric="l1", bound="bisector")
    with pytest.raises(ValueError, match="pivots"):
        nnmargin.certify(t, ty, (t, ty), bound="bisector", pivots=5)
    with pytest.raises(ValueError, match="bound"):
        nnmargin.certify(t, ty, (t, ty), bound="tight")
    with pytest.raises(ValueError, match="norm"):
        nnmargin.certify(t, ty, (t, ty), norm="l3")


def test_leave_one_out_bisector_never_uses_the_query_as_pivot():
    rng = np.random.default_rng(5)
    t, ty = rng.integers(0, 256, (120, 10)).astype(np.uint8), rng.integers(0, 2, 120)
    ts = nnmargin.TrainSet(t, ty)
    own = np.arange(120)

    def search(q, lab, skip):
        return RawNeighbours(*core.search(ts.prepared("l2"), q, ts.class_ids(lab), skip))

    base = search(t, ty, own)
    pivots = choose_pivots(ts, t, ty, base, 3, search, own_index=own)
    assert pivots.shape == (120, 2) and (pivots != own[:, None]).all()  # third pivot unused with LOO
    bis = nnmargin.certify(t, ty, ts, bound="bisector", pivots=3, leave_one_out=True, scale=1.0)
    margin = nnmargin.certify(t, ty, ts, leave_one_out=True, scale=1.0)
    assert (bis.radius >= margin.radius).all()
    for i in np.flatnonzero(bis.correct):  # reference on the training set without the query
        keep = own != i
        kept_pivots = [[np.searchsorted(own[keep], p) for p in pivots[i]]]
        ref = bisector_bound(t[i:i + 1], ty[i:i + 1], t[keep], ty[keep], kept_pivots, "l2")
        assert bis.radius[i] <= max(ref[0], margin.radius[i]) * (1 + 1e-15)
        np.testing.assert_allclose(bis.radius[i], max(ref[0], margin.radius[i]), rtol=1e-12)
