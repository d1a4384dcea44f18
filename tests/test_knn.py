"""k-NN (issue 11): the per-class top-K kernels against numpy on every CPU variant, the vote
against a numpy k-NN, the relaxation radius against an enumeration of every k-subset, and the
radius against adversarial points a dense search finds (it must never exceed them)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import nnmargin
from nnmargin import knn, reference
from nnmargin.cli._certify_output import robust_accuracy_curves


def _data(rng, m, d, n, n_classes, dtype, levels=4):
    if dtype == np.uint8:
        t, x = rng.integers(0, levels, (m, d)), rng.integers(0, levels, (n, d))
    else:
        t, x = rng.integers(0, levels, (m, d)) + rng.normal(0, 1e-3, (m, d)), rng.normal(1.5, 1, (n, d))
    return t.astype(dtype), rng.integers(0, n_classes, m), x.astype(dtype), rng.integers(0, n_classes, n)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
@pytest.mark.parametrize("metric", ["l2", "l1", "linf"])
def test_topk_kernel_matches_numpy(backend, dtype, metric):
    _, isa = backend
    rng = np.random.default_rng(7)
    # few levels: many exact ties (broken by the lowest index), duplicates across classes
    t, ty, x, _ = _data(rng, 437, 29, 61, 4, dtype)
    t[20] = t[21]
    ty[20], ty[21] = 0, 1
    ty[ty == 3] = 2
    ty[:2] = 3  # a class with two points: padded lists
    train = nnmargin.TrainSet(t, ty)
    for k in (1, 5, 12):
        value, index = train.search_topk(x, None, k, metric, isa=isa)
        ref_v, ref_i = reference.topk_per_class(x, t, ty, k, metric)
        np.testing.assert_array_equal(index, ref_i)
        np.testing.assert_allclose(value, ref_v, rtol=1e-12)


def test_topk_kernel_leave_one_out_and_k_beyond_m(backend):
    _, isa = backend
    rng = np.random.default_rng(8)
    t, ty, _, _ = _data(rng, 90, 11, 0, 3, np.uint8)
    train = nnmargin.TrainSet(t, ty)
    skip = np.arange(90, dtype=np.int64)
    value, index = train.search_topk(t, skip, 7, "l2", isa=isa)
    ref_v, ref_i = reference.topk_per_class(t, t, ty, 7, "l2", skip=skip)
    np.testing.assert_array_equal(index, ref_i)
    assert not (index == np.arange(90)[:, None, None]).any()
    value, index = train.search_topk(t[:5], None, 200, "l1", isa=isa)  # k > M: every point, then padding
    ref_v, ref_i = reference.topk_per_class(t[:5], t, ty, 200, "l1")
    np.testing.assert_array_equal(index, ref_i)
    assert np.isinf(value[index < 0]).all()


def test_topk_kernel_float_near_ties_are_rechecked(backend):
    """Points whose float32 screened values tie or cross while their float64 values differ: the
    float64 re-check must order them, like the nearest search."""
    _, isa = backend
    rng = np.random.default_rng(9)
    base = rng.normal(size=(1, 40)).astype(np.float32)
    t = np.repeat(base, 300, axis=0)
    t += (rng.integers(-3, 4, t.shape) * np.float32(2.0**-20)).astype(np.float32)
    ty = rng.integers(0, 2, 300)
    x = base + np.float32(0.5)
    value, index = nnmargin.TrainSet(t, ty).search_topk(x, None, 9, "l2", isa=isa)
    ref_v, ref_i = reference.topk_per_class(x, t, ty, 9, "l2")
    np.testing.assert_array_equal(index, ref_i)


@settings(max_examples=60, deadline=None)
@example(m=2, k=3, n_classes=2, levels=2, seed=0)
@given(m=st.integers(2, 9), k=st.integers(1, 5), n_classes=st.integers(1, 3), levels=st.integers(2, 4),
       seed=st.integers(0, 2**32 - 1))
def test_vote_and_radius_equal_the_subset_enumeration(m, k, n_classes, levels, seed):
    rng = np.random.default_rng(seed)
    t, ty, x, y = _data(rng, m, 2, 6, n_classes, np.uint8, levels)
    res = nnmargin.certify(x, y, (t, ty), k=k, scale=1.0)
    np.testing.assert_array_equal(res.pred, reference.predict_knn(x, t, ty, k))
    want = np.where(res.correct, reference.knn_relaxation_radius(x, y, t, ty, k), 0.0)
    assert (res.radius <= want).all()  # rounded down, never above
    np.testing.assert_allclose(res.radius, want, rtol=1e-12)


@pytest.mark.parametrize("metric", ["l2", "l1", "linf"])
def test_k1_relaxation_is_the_margin_bound_bit_for_bit(metric):
    rng = np.random.default_rng(3)
    t, ty, x, y = _data(rng, 400, 9, 200, 3, np.float64)
    margin = nnmargin.certify(x, y, (t, ty), metric=metric)
    train = nnmargin.TrainSet(t, ty)
    value, index = train.search_topk(x, None, 2, metric)
    to_dist = np.sqrt if metric == "l2" else (lambda v: v)
    lists = knn.topk_lists(value, index, to_dist)
    half = knn.relaxation_half_gap(lists, train.class_ids(y), 1, 3, margin.distance_rel_err)
    from nnmargin.bounds import radius_in_norm
    np.testing.assert_array_equal(radius_in_norm(half, margin.correct, metric, metric, 9), margin.radius)


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("metric", ["l2", "linf", "l1"])
def test_radius_never_exceeds_a_dense_search_adversary(k, metric):
    """2-D problems: every grid point around x whose k-NN label differs is at least radius away."""
    rng = np.random.default_rng(k)
    t, ty = rng.uniform(0, 1, (25, 2)), rng.integers(0, 3, 25)
    x, y = rng.uniform(0.2, 0.8, (12, 2)), rng.integers(0, 3, 12)
    res = nnmargin.certify(x, y, (t, ty), k=k, metric=metric)
    offsets = np.stack(np.meshgrid(np.linspace(-0.6, 0.6, 121), np.linspace(-0.6, 0.6, 121)), -1).reshape(-1, 2)
    ordp = {"l2": 2, "l1": 1, "linf": np.inf}[metric]
    closest = []
    for i in np.flatnonzero(res.correct):
        z = x[i] + offsets
        flipped = reference.predict_knn(z, t, ty, k, metric) != y[i]
        if flipped.any():
            nearest = np.linalg.norm(offsets[flipped], ord=ordp, axis=1).min()
            assert res.radius[i] <= nearest
            closest.append(res.radius[i] / nearest)
    assert closest and max(closest) > 0.3  # the test can fail: radii are not all ~0


def test_knn_with_duplicates_across_classes_and_small_classes():
    t = np.array([[0, 0], [0, 0], [0, 0], [5, 5], [9, 9]], dtype=np.uint8)
    ty = np.array([0, 1, 1, 0, 2])
    x, y = np.array([[0, 0], [9, 9]], dtype=np.uint8), np.array([1, 1])
    res = nnmargin.certify(x, y, (t, ty), k=3, scale=1.0)
    # x = (0, 0): the three duplicates (classes 0, 1, 1) vote 1; x = (9, 9) is outvoted by class 0
    np.testing.assert_array_equal(res.pred, reference.predict_knn(x, t, ty, 3))
    np.testing.assert_allclose(res.radius, np.where(res.correct, reference.knn_relaxation_radius(x, y, t, ty, 3), 0))
    every = nnmargin.certify(x, y, (t, ty), k=50, scale=1.0)  # k > M: the whole set votes (2 x class 0, 2 x 1)
    assert (every.pred == 0).all() and (every.radius == 0).all()  # vote tie 2-2-1: the smallest label


def test_knn_leave_one_out_equals_the_set_without_the_point():
    rng = np.random.default_rng(5)
    t, ty, _, _ = _data(rng, 60, 4, 0, 3, np.uint8)
    loo = nnmargin.certify(t, ty, (t, ty), k=5, leave_one_out=True)
    for i in (0, 17, 59):
        keep = np.arange(60) != i
        one = nnmargin.certify(t[i:i + 1], ty[i:i + 1], (t[keep], ty[keep]), k=5)
        assert loo.pred[i] == one.pred[0] and loo.radius[i] == one.radius[0]


def test_knn_results_do_not_depend_on_batching_or_threads():
    rng = np.random.default_rng(6)
    t, ty, x, y = _data(rng, 500, 16, 300, 4, np.uint8, levels=256)
    a = nnmargin.certify(x, y, (t, ty), k=7)
    b = nnmargin.certify(x, y, (t, ty), k=7, batch_size=37, num_threads=1)
    for name in ("pred", "radius", "dist_same", "idx_same", "dist_other", "idx_other"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.k == 7 and "7-NN" in a.summary()
    np.testing.assert_array_equal(a.idx_same, reference.nearest_same_other(x, y, t, ty)[1])


@pytest.mark.parametrize("kwargs, match", [
    ({"k": 0}, "k must be an integer"), ({"k": True}, "k must be an integer"), ({"k": 2.0}, "k must be"),
    ({"k": 10**6}, "k must be an integer from 1"), ({"k": 3, "bound": "bisector"}, "is for the 1NN"),
    ({"k": 3, "device": "cuda"}, "runs on the CPU")])
def test_bad_k_is_a_clear_input_error(kwargs, match):
    t, ty = np.zeros((4, 2), dtype=np.uint8), np.array([0, 1, 0, 1])
    with pytest.raises(nnmargin.InputError, match=match):
        nnmargin.certify(t, ty, (t, ty), **kwargs)


@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_attack_examples_are_real_and_never_below_the_certificate(dtype, norm):
    from nnmargin.knn_attack import attack_knn

    rng = np.random.default_rng(11)
    t, ty, x, y = _data(rng, 300, 12, 60, 3, dtype, levels=256)
    if dtype != np.uint8:
        t, x = t / 255, x / 255
    unit = 1 / 255 if dtype == np.uint8 else 1.0
    for k in (1, 5):
        cert = nnmargin.certify(x, y, (t, ty), k=k, norm=norm)
        att = attack_knn(x, y, (t, ty), k=k, norm=norm)
        found = np.isfinite(att.norm) & cert.correct
        assert found.sum() > 0.9 * cert.correct.sum() and cert.correct.sum() > 10
        assert (cert.radius <= att.norm).all()
        adv = att.adversarial[found] / unit
        adv = np.rint(adv).astype(np.uint8) if dtype == np.uint8 else adv
        assert (reference.predict_knn(adv, t, ty, k) != y[found]).all()
        ordp = {"l2": 2, "linf": np.inf}[norm]
        measured = np.linalg.norm(att.adversarial[found] - x[found].astype(np.float64) * unit, ord=ordp, axis=1)
        np.testing.assert_allclose(att.norm[found], measured, rtol=1e-9)
        assert (att.norm[~cert.correct] == 0).all()


def test_cli_certify_k_with_attack_prints_both_bounds(capsys):
    from nnmargin.cli import main

    assert main(["certify", "--dataset", "sample", "--k", "3", "--limit", "40", "--attack", "--eps", "0.5", "1"]) == 0
    out = capsys.readouterr().out
    assert "3-NN robustness certificates" in out and "certified >=  attacked <=  gap" in out


def test_experiment_accepts_knn_methods():
    from nnmargin.experiment import parse_methods
    from nnmargin.experiment.config import neighbours_of

    assert parse_methods("1nn,75nn,trades") == ["1nn", "75nn", "trades"]
    assert [neighbours_of(m) for m in ("1nn", "3nn", "7nn", "75nn", "trades")] == [1, 3, 7, 75, None]
    from nnmargin.experiment.config import DEFAULT_METHODS

    assert "1nn" in DEFAULT_METHODS and not {"3nn", "7nn", "75nn"} & set(DEFAULT_METHODS)  # opt-in
    with pytest.raises(nnmargin.InputError, match="unknown method"):
        parse_methods("4nn")


def test_attack_means_do_not_depend_on_the_chunking(monkeypatch):
    from nnmargin import knn_attack

    rng = np.random.default_rng(12)
    t, ty, _, _ = _data(rng, 50, 6, 0, 2, np.uint8, levels=256)
    train = nnmargin.TrainSet(t, ty)
    pts = rng.integers(-1, 50, (23, 4))
    pts[:, 0] = rng.integers(0, 50, 23)  # at least one point per query
    whole = knn_attack._means(train, pts, 6)
    monkeypatch.setattr(knn_attack, "_MEAN_CHUNK", 4 * 6 * 5)  # 5 queries per chunk
    np.testing.assert_array_equal(knn_attack._means(train, pts, 6), whole)
    want = [t[p[p >= 0]].astype(np.float64).mean(axis=0) for p in pts]
    np.testing.assert_allclose(whole, want, rtol=1e-12)


def test_knn_results_have_no_1nn_margin_curve():
    """The 1NN margin is no certificate of the k-NN (it can exceed the relaxation's radius): a k-NN
    result refuses margin_radius(), and --plot draws only the run's own bound."""
    s = nnmargin.datasets.load_sample()
    result = nnmargin.certify(s.x_test[:50], s.y_test[:50], (s.x_train, s.y_train), k=5)
    with pytest.raises(nnmargin.InputError, match="5-NN"):
        result.margin_radius()
    curves = robust_accuracy_curves(result)
    assert list(curves) == ["l2"] and list(curves["l2"]) == ["5-NN relaxation"]
    one = nnmargin.certify(s.x_test[:50], s.y_test[:50], (s.x_train, s.y_train))
    assert "margin" in robust_accuracy_curves(one)["l2"]
