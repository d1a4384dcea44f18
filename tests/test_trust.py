"""Regression tests for the silent-wrong-answer holes of issue 8: aliasing of the caller's arrays,
races with the GIL released, the error policy, and the vocabulary shared with the compiled core."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import nnmargin
from nnmargin import _core, _names
from nnmargin.reference import nearest_same_other


def _blobs(seed=0, m=200, n=50, d=12, classes=3):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 256, (m, d)).astype(np.uint8)
    ty = rng.integers(0, classes, m)
    x = rng.integers(0, 256, (n, d)).astype(np.uint8)
    y = rng.integers(0, classes, n)
    return x, y, t, ty


# ---------------------------------------------------------------------------- aliasing


def test_overwriting_the_training_array_changes_nothing_in_the_trainset():
    """The user's scenario: certify, overwrite the training array in place, certify again with the
    bisector bound. Every result must come from the data the TrainSet was built from."""
    x, y, t, ty = _blobs()
    original = t.copy()
    ts = nnmargin.TrainSet(t, ty)
    before = nnmargin.certify(x, y, ts, bound="bisector")
    t[:] = np.random.default_rng(9).integers(0, 256, t.shape)  # the caller reuses its buffer
    ty[:] = 1 - np.minimum(ty, 1)
    after = nnmargin.certify(x, y, ts, bound="bisector")
    for name in ("pred", "idx_same", "idx_other", "dist_same", "dist_other", "radius", "target_index"):
        np.testing.assert_array_equal(getattr(before, name), getattr(after, name), err_msg=name)
    np.testing.assert_array_equal(ts.points, original)
    # and the radii are sound for the snapshot: never above the exact radius of that data
    exact = nnmargin.certify(x, y, (original, ts.labels), bound="exact")
    assert (after.radius <= exact.radius * (1 + 1e-9) + 1e-12).all()


def test_leave_one_out_check_reads_the_snapshot():
    _, _, t, ty = _blobs(1)
    ts = nnmargin.TrainSet(t, ty)
    snapshot = t.copy()
    t[0, 0] ^= 0xFF  # the caller's array no longer equals the training set
    loo = nnmargin.certify(snapshot, ty, ts, leave_one_out=True)
    assert (loo.idx_same != np.arange(len(ty))).all()
    with pytest.raises(nnmargin.InputError, match="leave_one_out"):
        nnmargin.certify(t, ty, ts, leave_one_out=True)


def test_trainset_data_is_read_only_and_private():
    _, _, t, ty = _blobs(2)
    ts = nnmargin.TrainSet(t, ty)
    assert not np.shares_memory(ts.points, t) and not np.shares_memory(ts.labels, ty)
    with pytest.raises(ValueError):
        ts.points[0, 0] = 1
    with pytest.raises(ValueError):
        ts.labels[0] = 1
    with pytest.raises(ValueError):
        ts.float64(1.0).points[0, 0] = 1.0


def test_torch_training_tensor_written_in_place_changes_nothing():
    torch = pytest.importorskip("torch")
    x, y, t, ty = _blobs(3)
    tt = torch.from_numpy(t.copy())
    ts = nnmargin.TrainSet(tt, ty)
    before = nnmargin.certify(x, y, ts)
    tt.zero_()
    after = nnmargin.certify(x, y, ts)
    np.testing.assert_array_equal(before.idx_other, after.idx_other)
    np.testing.assert_array_equal(ts.points, t)


# ---------------------------------------------------------------------------- threads


@pytest.mark.parametrize("bound", ["margin", "bisector"])
def test_concurrent_certify_on_one_trainset_is_identical_to_serial(bound):
    """Python threads on one TrainSet (the kernels release the GIL; the layouts are built lazily by
    whichever thread comes first) must give the serial result, bit for bit."""
    x, y, t, ty = _blobs(4, m=600, n=120, d=40)
    serial = nnmargin.certify(x, y, (t, ty), bound=bound, norm="linf")
    isas = nnmargin.cpu_isas()
    ts = nnmargin.TrainSet(t, ty)  # fresh: the layout caches fill up under contention

    def run(k):
        return nnmargin.certify(x, y, ts, bound=bound, norm="linf", isa=isas[k % len(isas)], num_threads=1 + k % 2)

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(run, range(12)))
    for res in results:
        for name in ("idx_same", "idx_other", "dist_same", "dist_other", "radius"):
            np.testing.assert_array_equal(getattr(res, name), getattr(serial, name), err_msg=name)


def test_concurrent_float64_views_are_built_once():
    _, _, t, ty = _blobs(5)
    ts = nnmargin.TrainSet(t, ty)
    with ThreadPoolExecutor(max_workers=4) as pool:
        views = list(pool.map(lambda _: ts.float64(1 / 255), range(16)))
    assert all(v is views[0] for v in views)


# ---------------------------------------------------------------------------- error policy


@pytest.mark.parametrize("kwargs, match", [
    (dict(metric="l3"), "metric"),
    (dict(norm="l0"), "norm"),
    (dict(bound="tight"), "bound"),
    (dict(device="tpu"), "device"),
    (dict(pivots=_names.MAX_PIVOTS + 1), "pivots"),
    (dict(scale=-1.0), "scale"),
    (dict(bound="exact", box=(1.0, 0.0)), "lo < hi"),
    (dict(num_threads=0), "num_threads"),
])
def test_bad_options_are_input_errors(kwargs, match):
    x, y, t, ty = _blobs(6)
    with pytest.raises(nnmargin.InputError, match=match):
        nnmargin.certify(x, y, (t, ty), **kwargs)


def test_input_error_is_a_value_error_and_type_problems_stay_type_errors():
    x, y, t, ty = _blobs(7)
    assert issubclass(nnmargin.InputError, ValueError)
    with pytest.raises(nnmargin.InputError, match="features"):
        nnmargin.certify(x[:, :5], y, (t, ty))
    with pytest.raises(TypeError) as info:
        nnmargin.certify(x.astype(np.float32), y, (t, ty))
    assert isinstance(info.value, nnmargin.InputError)


def test_internal_failures_are_not_reported_as_bad_input(monkeypatch):
    """A failure inside the search or the solver keeps its own type: never an InputError."""
    x, y, t, ty = _blobs(8)

    def broken_search(*args, **kwargs):
        raise RuntimeError("kernel exploded")

    monkeypatch.setattr(_core, "search", broken_search)
    with pytest.raises(RuntimeError, match="exploded") as info:
        nnmargin.certify(x, y, (t, ty))
    assert not isinstance(info.value, nnmargin.InputError)


def test_solver_failure_propagates_with_its_type(monkeypatch):
    pytest.importorskip("scipy")
    from nnmargin import exact

    x, y, t, ty = _blobs(9)

    def not_converging(*args, **kwargs):
        raise RuntimeError("constraint generation did not converge")

    monkeypatch.setattr(exact, "_cell_distance", not_converging)
    with pytest.raises(RuntimeError, match="converge") as info:
        nnmargin.certify(x, y, (t, ty), bound="exact")
    assert not isinstance(info.value, nnmargin.InputError)


# ---------------------------------------------------------------------------- one vocabulary


@pytest.mark.parametrize("text, name", [("l∞", "linf"), ("L_inf", "linf"), ("∞", "linf"), ("inf", "linf"),
                                        ("L2", "l2"), ("euclidean", "l2"), ("1", "l1"), ("manhattan", "l1")])
def test_norm_and_metric_aliases(text, name):
    assert _names.as_norm(text) == name
    assert _names.as_metric(text) == name


def test_metric_names_and_pivot_limit_come_from_the_core():
    assert tuple(_core.Metric.__members__) == _names.METRICS
    assert _names.MAX_PIVOTS == _core.MAX_PIVOTS == 3
    with pytest.raises(TypeError):
        _core.prepare_train(np.zeros((2, 2), np.uint8), np.zeros(2, np.int32), 0)  # no magic integers


def test_the_core_refuses_more_pivots_than_python_allows():
    x, y, t, ty = _blobs(10)
    ts = nnmargin.TrainSet(t, ty)
    k = _names.MAX_PIVOTS + 1
    pivots = np.ascontiguousarray(np.broadcast_to(t[:1], (len(x), k, t.shape[1])))
    with pytest.raises(ValueError, match="pivots"):
        _core.bisector(ts.prepared("l2"), ts.prepared("l2"), x, ts.class_ids(y), pivots, np.zeros((len(x), k)))


def test_auto_device_stays_on_the_cpu_even_with_a_gpu(monkeypatch):
    x, y, t, ty = _blobs(11)
    monkeypatch.setattr(_core, "cuda_device_count", lambda: 1)
    assert nnmargin.certify(x, y, (t, ty), device="auto").info["device"] == "cpu"


# ---------------------------------------------------------------------------- batching


@pytest.mark.parametrize("bound", ["margin", "bisector"])
def test_batches_and_progress_do_not_change_results(bound):
    x, y, t, ty = _blobs(12, n=37)
    whole = nnmargin.certify(x, y, (t, ty), bound=bound)
    chunked = nnmargin.certify(x, y, (t, ty), bound=bound, batch_size=8, progress=True)
    for name in ("pred", "idx_same", "idx_other", "dist_same", "dist_other", "radius", "target_index"):
        np.testing.assert_array_equal(getattr(whole, name), getattr(chunked, name), err_msg=name)


def test_leave_one_out_in_batches_matches_the_reference():
    _, _, t, ty = _blobs(13)
    loo = nnmargin.certify(t, ty, (t, ty), leave_one_out=True, batch_size=33, scale=1.0)
    ref = nearest_same_other(t, ty, t, ty, "l2", leave_one_out=True)
    np.testing.assert_array_equal(loo.idx_same, ref[1])
    np.testing.assert_array_equal(loo.idx_other, ref[3])


def test_margin_radius_in_another_norm_matches_a_new_certify():
    x, y, t, ty = _blobs(14)
    cert = nnmargin.certify(x, y, (t, ty))
    for norm in _names.NORMS:
        np.testing.assert_array_equal(cert.margin_radius(norm), nnmargin.certify(x, y, (t, ty), norm=norm).radius)
