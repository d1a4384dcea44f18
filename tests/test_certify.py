"""certify()'s contract: predictions, certified radii (sound), units, reuse, exports, array types."""
from __future__ import annotations

import json

import numpy as np
import pytest

import nnmargin
from nnmargin.reference import distances, predict_1nn


@pytest.fixture(scope="module")
def blobs():
    """Two overlapping float64 Gaussian classes in 8-D: train (300) and test (80)."""
    rng = np.random.default_rng(0)
    centers = np.array([[0.0] * 8, [1.5] * 8])
    ty, y = rng.integers(0, 2, 300), rng.integers(0, 2, 80)
    t = centers[ty] + rng.normal(size=(300, 8))
    x = centers[y] + rng.normal(size=(80, 8))
    return x, y, t, ty


@pytest.mark.parametrize("metric", ["l2", "l1", "linf"])
def test_prediction_is_the_1nn_prediction(blobs, metric):
    x, y, t, ty = blobs
    cert = nnmargin.certify(x, y, (t, ty), metric=metric)
    np.testing.assert_array_equal(cert.pred, predict_1nn(x, t, ty, metric))
    np.testing.assert_array_equal(cert.correct, cert.pred == y)


@pytest.mark.parametrize("metric", ["l2", "l1", "linf"])
def test_radius_is_half_margin_rounded_down_and_zero_when_wrong(blobs, metric):
    x, y, t, ty = blobs
    cert = nnmargin.certify(x, y, (t, ty), metric=metric)
    half = (cert.dist_other - cert.dist_same) / 2
    ok = cert.correct
    assert (cert.radius[~ok] == 0).all()
    assert (cert.radius[ok] <= half[ok]).all()
    np.testing.assert_allclose(cert.radius[ok], half[ok], rtol=1e-12)


def test_certificate_survives_the_worst_perturbation_inside_the_radius(blobs):
    """Moving a query straight towards its nearest other-class point (the direction that hurts the
    margin most) by just under the radius never changes the exact 1NN prediction."""
    x, y, t, ty = blobs
    cert = nnmargin.certify(x, y, (t, ty))
    ok = np.flatnonzero(cert.correct & (cert.radius > 0))
    direction = t[cert.idx_other[ok]] - x[ok]
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    moved = x[ok] + direction * (cert.radius[ok, None] * (1 - 1e-9))
    np.testing.assert_array_equal(predict_1nn(moved, t, ty, "l2"), y[ok])
    # ... and just past twice the radius the same move does reach the other point's side
    beyond = x[ok] + direction * (cert.radius[ok, None] * 2 * (1 + 1e-6))
    assert (predict_1nn(beyond, t, ty, "l2") != y[ok]).any()


def test_robust_accuracy_is_monotone_and_equals_accuracy_at_zero(blobs):
    x, y, t, ty = blobs
    cert = nnmargin.certify(x, y, (t, ty))
    eps = np.linspace(0, 3, 31)
    values = cert.robust_accuracy(eps)
    assert values.shape == (31,) and values[0] == cert.accuracy
    assert (np.diff(values) <= 0).all()
    assert cert.robust_accuracy(0.7) == pytest.approx(np.mean(cert.correct & (cert.radius > 0.7)))
    with pytest.raises(ValueError, match="eps"):
        cert.robust_accuracy(-1)


def test_training_points_are_their_own_neighbours_unless_left_out(blobs):
    _, _, t, ty = blobs
    cert = nnmargin.certify(t, ty, (t, ty))
    assert cert.correct.all() and (cert.dist_same == 0).all()
    np.testing.assert_allclose(cert.radius, cert.dist_other / 2, rtol=1e-12)
    loo = nnmargin.certify(t, ty, (t, ty), leave_one_out=True)
    assert loo.accuracy < 1 and (loo.dist_same > 0).all()
    with pytest.raises(ValueError, match="leave_one_out"):
        nnmargin.certify(t[:10], ty[:10], (t, ty), leave_one_out=True)


def test_tie_between_classes_goes_to_the_lower_training_index():
    t = np.array([[0.0], [2.0], [-2.0]])
    x = np.array([[0.0]])
    first_other = nnmargin.certify(x + 1, [1], (t, [1, 0, 1]))  # d = 1 to index 0 (same) and 1 (other)
    assert first_other.pred[0] == 1 and first_other.correct[0] and first_other.radius[0] == 0
    cert = nnmargin.certify(x + 1, [0], (t, [1, 0, 1]))  # same class is index 1, other class index 0 wins
    assert cert.pred[0] == 1 and not cert.correct[0]


def test_uint8_units_are_pixel_intensities_on_the_unit_scale():
    t = np.array([[0, 0], [30, 40]], dtype=np.uint8)
    x = np.array([[0, 0]], dtype=np.uint8)
    cert = nnmargin.certify(x, [0], (t, [0, 1]))
    assert cert.dist_other[0] == pytest.approx(50 / 255, rel=1e-15) and cert.scale == pytest.approx(1 / 255)
    raw = nnmargin.certify(x, [0], (t, [0, 1]), scale=1.0)
    assert raw.dist_other[0] == 50.0
    l1 = nnmargin.certify(x, [0], (t, [0, 1]), metric="l1", scale=1.0)
    linf = nnmargin.certify(x, [0], (t, [0, 1]), metric="linf", scale=1.0)
    assert l1.dist_other[0] == 70.0 and linf.dist_other[0] == 40.0


def test_images_are_flattened_and_trainset_is_reusable():
    rng = np.random.default_rng(1)
    t, ty = rng.integers(0, 256, (60, 4, 4, 3), dtype=np.uint8), rng.integers(0, 3, 60)
    x, y = rng.integers(0, 256, (10, 4, 4, 3), dtype=np.uint8), rng.integers(0, 3, 10)
    ts = nnmargin.TrainSet(t, ty)
    assert ts.dim == 48 and ts.n_points == 60 and "3 classes" in repr(ts)
    a = nnmargin.certify(x, y, ts)
    b = nnmargin.certify(x.reshape(10, -1), y, (t.reshape(60, -1), ty))
    np.testing.assert_array_equal(a.idx_other, b.idx_other)
    assert ts.prepared("l2") is ts.prepared("l2")  # laid out once


def test_arbitrary_integer_labels():
    t = np.array([[0.0], [1.0], [5.0]])
    cert = nnmargin.certify([[0.9], [4.0]], [-7, 1000], (t, [-7, 1000, 1000]))
    np.testing.assert_array_equal(cert.pred, [1000, 1000])
    np.testing.assert_array_equal(cert.correct, [False, True])


def test_no_queries_gives_an_empty_result():
    cert = nnmargin.certify(np.zeros((0, 3)), np.zeros(0, int), (np.ones((4, 3)), [0, 1, 0, 1]))
    assert len(cert) == 0 and np.isnan(cert.accuracy)


def test_exports_round_trip(blobs, tmp_path):
    x, y, t, ty = blobs
    cert = nnmargin.certify(x, y, (t, ty))
    data = json.loads(cert.to_json(tmp_path / "r.json", eps=[0.5, 1.0]))
    assert data["n_queries"] == 80 and data["robust_accuracy"]["0.5"] == cert.robust_accuracy(0.5)
    assert json.loads((tmp_path / "r.json").read_text())["radius"] == cert.radius.tolist()
    rows = cert.to_csv(tmp_path / "r.csv").strip().split("\n")
    assert len(rows) == 81 and rows[0].startswith("index,labels,pred")
    assert float(rows[1].split(",")[-1]) == cert.radius[0]
    assert "clean accuracy" in cert.summary(eps=[0.5]) and "eps=0.5" in cert.summary(eps=[0.5])
    assert set(cert.to_dict(arrays=False)) >= {"accuracy", "metric", "n_train", "seconds"}


def test_absent_neighbours_are_null_in_json():
    cert = nnmargin.certify([[0.0]], [3], (np.array([[1.0]]), [0]))
    data = json.loads(cert.to_json())
    assert data["dist_same"] == [None] and data["idx_same"] == [-1]


def test_torch_cpu_tensors_are_accepted_and_queries_read_in_place():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    t = torch.from_numpy(rng.integers(0, 256, (50, 20), dtype=np.uint8))
    ty = torch.from_numpy(rng.integers(0, 2, 50))
    x, y = torch.from_numpy(rng.integers(0, 256, (7, 20), dtype=np.uint8)), torch.tensor([0, 1, 0, 1, 0, 1, 0])
    ts = nnmargin.TrainSet(t, ty)
    assert not np.shares_memory(ts.points, t.numpy())  # the TrainSet owns a snapshot (see test_trust.py)
    assert np.shares_memory(ts.queries_like(x), x.numpy())  # queries are read where they are
    a = nnmargin.certify(x, y, ts)
    b = nnmargin.certify(x.numpy(), y.numpy(), (t.numpy(), ty.numpy()))
    np.testing.assert_array_equal(a.idx_same, b.idx_same)
    f32 = nnmargin.certify(x.float(), y, (t.float(), ty))
    np.testing.assert_array_equal(f32.idx_other, b.idx_other)


def test_float32_with_extreme_magnitudes_is_still_exact():
    """float32 values whose squares would overflow float32 are searched in float64."""
    rng = np.random.default_rng(3)
    t = (rng.normal(size=(40, 5)) * 1e30).astype(np.float32)
    x = (rng.normal(size=(6, 5)) * 1e30).astype(np.float32)
    cert = nnmargin.certify(x, np.zeros(6, int), (t, rng.integers(0, 2, 40)))
    d = distances(x, t, "l2")
    best = np.minimum(cert.dist_same, cert.dist_other)
    np.testing.assert_allclose(best, d.min(axis=1), rtol=1e-12)


def test_version_and_introspection():
    import importlib.metadata
    import re

    assert re.fullmatch(r"\d+\.\d+\.\d+", nnmargin.__version__)
    assert nnmargin.__version__ == importlib.metadata.version("nnmargin")
    isas = nnmargin.cpu_isas()
    assert isas[-1] == "generic" and len(set(isas)) == len(isas)
    assert set(isas) <= {"avx512_vnni", "avx512", "avx2_vnni", "avx2", "generic"}
    built = nnmargin._core.built_isas()  # what the tests list; the variants beyond this CPU skip
    assert [isa for isa in built if isa in isas] == isas
    # two separate answers of the core (device count, status with its reason) must agree
    usable, reason = nnmargin._core.cuda_status()
    assert nnmargin.cuda_available() is (usable > 0)
    assert usable > 0 or "CUDA" in reason, reason
