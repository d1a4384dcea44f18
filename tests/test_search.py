"""The fused nearest same-class / other-class search against the float64 reference.

uint8 and integer-valued inputs must match the reference exactly (indices and distances); general
float inputs must return a true argmin (its reference distance equals the reference minimum) and the
float64 distance. Random inputs and adversarial ones: duplicates, near-ties one unit apart, empty
classes, D = 1 and D not a multiple of the SIMD width, N or M of 1.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnmargin
from nnmargin.reference import distances, nearest_same_other

METRICS = ["l2", "l1", "linf"]
DTYPES = [np.uint8, np.float32, np.float64]


def run(x, y, t, ty, metric, backend, **kw):
    device, isa = backend
    scale = 1.0 if np.asarray(t).dtype == np.uint8 else None
    return nnmargin.certify(x, y, (t, ty), metric=metric, scale=scale, device=device, isa=isa, **kw)


def assert_exact(cert, x, y, t, ty, metric, leave_one_out=False):
    """Indices and distances equal the reference's (inputs whose distances float64 holds exactly)."""
    ds, is_, do, io = nearest_same_other(x, y, t, ty, metric, leave_one_out)
    np.testing.assert_array_equal(cert.idx_same, is_)
    np.testing.assert_array_equal(cert.idx_other, io)
    np.testing.assert_allclose(cert.dist_same, ds, rtol=1e-15)
    np.testing.assert_allclose(cert.dist_other, do, rtol=1e-15)


def assert_true_argmin(cert, x, y, t, ty, metric):
    """General floats: each returned index attains the reference minimum (up to float64 rounding)."""
    ds, is_, do, io = nearest_same_other(x, y, t, ty, metric)
    dist = distances(x, t, metric)
    for got_idx, got_dist, ref_idx, ref_dist in ((cert.idx_same, cert.dist_same, is_, ds), (cert.idx_other, cert.dist_other, io, do)):
        np.testing.assert_array_equal(got_idx < 0, ref_idx < 0)
        has = ref_idx >= 0
        np.testing.assert_allclose(got_dist[has], ref_dist[has], rtol=1e-12)
        np.testing.assert_allclose(dist[np.flatnonzero(has), got_idx[has]], ref_dist[has], rtol=1e-12)


def random_points(rng, shape, dtype):
    if dtype == np.uint8:
        return rng.integers(0, 256, shape).astype(np.uint8)
    return rng.normal(size=shape).astype(dtype)


SHAPES = [(1, 1, 1), (7, 1, 3), (1, 300, 5), (37, 101, 17), (50, 300, 130), (20, 97, 65), (9, 400, 784)]


@pytest.mark.parametrize("n,m,d", SHAPES)
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_random_inputs_match_reference(backend, dtype, metric, n, m, d):
    rng = np.random.default_rng(n * 1000 + m + d)
    x, t = random_points(rng, (n, d), dtype), random_points(rng, (m, d), dtype)
    y, ty = rng.integers(0, 3, n), rng.integers(0, 3, m)
    cert = run(x, y, t, ty, metric, backend)
    if dtype == np.uint8:
        assert_exact(cert, x, y, t, ty, metric)
    else:
        assert_true_argmin(cert, x, y, t, ty, metric)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_duplicates_go_to_lowest_index(backend, dtype, metric):
    rng = np.random.default_rng(1)
    distinct = rng.integers(0, 4, (5, 33)).astype(dtype)
    t = distinct[rng.integers(0, 5, 600)]  # every point has ~120 exact copies, in several classes
    ty = rng.integers(0, 3, 600)
    x = np.concatenate([distinct, rng.integers(0, 4, (20, 33)).astype(dtype)])
    y = rng.integers(0, 3, len(x))
    assert_exact(run(x, y, t, ty, metric, backend), x, y, t, ty, metric)


@pytest.mark.parametrize("metric", METRICS)
def test_uint8_near_ties_one_unit_apart(backend, metric):
    rng = np.random.default_rng(2)
    d = 70
    x = rng.integers(1, 255, (30, d)).astype(np.uint8)
    # every training point is a query moved by +-1 on one to three pixels: distances 1, 2 or 3 apart
    base = x[rng.integers(0, 30, 900)].astype(np.int16)
    for row in base:
        pix = rng.choice(d, size=rng.integers(1, 4), replace=False)
        row[pix] += rng.choice([-1, 1], size=len(pix))
    t = base.astype(np.uint8)
    y, ty = rng.integers(0, 2, 30), rng.integers(0, 2, 900)
    assert_exact(run(x, y, t, ty, metric, backend), x, y, t, ty, metric)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_float_near_ties_resolved_in_float64(backend, dtype, metric):
    """Hundreds of points a few ulps apart: screening cannot order them, the exact re-check must."""
    rng = np.random.default_rng(3)
    d, m = 40, 700
    offsets = np.empty(m, dtype=dtype)
    offsets[0] = dtype(1.5)
    for j in range(1, m):  # a chain of neighbouring floats below 1.5
        offsets[j] = np.nextafter(offsets[j - 1], dtype(0))
    order = rng.permutation(m)  # the closest point sits at a random index, not the lowest
    t = np.zeros((m, d), dtype=dtype)
    t[np.arange(m), rng.integers(0, d, m)] = offsets[order]  # one non-zero feature: exact in float64
    ty = rng.integers(0, 2, m)
    x = np.zeros((4, d), dtype=dtype)
    y = np.array([0, 1, 0, 1])
    assert_exact(run(x, y, t, ty, metric, backend), x, y, t, ty, metric)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_class_without_training_points(backend, dtype):
    rng = np.random.default_rng(4)
    t, ty = random_points(rng, (50, 10), dtype), rng.integers(0, 2, 50)
    x, y = random_points(rng, (6, 10), dtype), np.array([0, 1, 7, 7, 1, 0])  # 7: no training point
    cert = run(x, y, t, ty, "l2", backend)
    absent = y == 7
    assert np.isinf(cert.dist_same[absent]).all() and (cert.idx_same[absent] == -1).all()
    assert (cert.radius[absent] == 0).all() and not cert.correct[absent].any()
    np.testing.assert_array_equal(cert.pred[absent], ty[cert.idx_other[absent]])


def test_single_class_training_set(backend):
    rng = np.random.default_rng(5)
    t, x = rng.integers(0, 256, (40, 12)).astype(np.uint8), rng.integers(0, 256, (5, 12)).astype(np.uint8)
    cert = run(x, np.zeros(5, int), t, np.zeros(40, int), "l2", backend)
    assert np.isinf(cert.dist_other).all() and (cert.idx_other == -1).all()
    assert cert.correct.all() and np.isinf(cert.radius).all()  # nothing else to switch to


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("n", [1, 3])
def test_few_queries_split_training_set_without_changing_ties(backend, n, threads):
    """Few queries make the driver split the training points across threads; the merge must keep
    the lowest index among exact ties wherever they fall."""
    rng = np.random.default_rng(6)
    distinct = rng.integers(0, 3, (3, 20)).astype(np.uint8)
    t, ty = distinct[rng.integers(0, 3, 5000)], rng.integers(0, 4, 5000)
    x, y = distinct[:n], rng.integers(0, 4, n)
    assert_exact(run(x, y, t, ty, "l2", backend, num_threads=threads), x, y, t, ty, "l2")


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_leave_one_out_ignores_only_the_point_itself(backend, dtype, metric):
    rng = np.random.default_rng(7)
    t = rng.integers(0, 3, (200, 9)).astype(dtype)  # many duplicates: a copy of itself still counts
    ty = rng.integers(0, 3, 200)
    cert = run(t, ty, t, ty, metric, backend, leave_one_out=True)
    assert_exact(cert, t, ty, t, ty, metric, leave_one_out=True)
    assert (cert.idx_same != np.arange(200)).all() and (cert.idx_other != np.arange(200)).all()


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 12),
    m=st.integers(1, 120),
    d=st.integers(1, 70),
    n_classes=st.integers(1, 4),
    alphabet=st.integers(1, 4),
    dtype=st.sampled_from(DTYPES),
    metric=st.sampled_from(METRICS),
    isa=st.sampled_from(nnmargin.cpu_isas()),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_small_alphabets_match_reference_exactly(n, m, d, n_classes, alphabet, dtype, metric, isa, seed):
    """Values from a tiny alphabet make exact ties everywhere; float64 holds every distance exactly."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, alphabet + 1, (n, d)).astype(dtype)
    t = rng.integers(0, alphabet + 1, (m, d)).astype(dtype)
    y, ty = rng.integers(0, n_classes, n), rng.integers(0, n_classes, m)
    assert_exact(run(x, y, t, ty, metric, ("cpu", isa)), x, y, t, ty, metric)


def test_results_do_not_depend_on_thread_count_or_isa():
    rng = np.random.default_rng(8)
    t, ty = rng.normal(size=(3000, 50)).astype(np.float32), rng.integers(0, 5, 3000)
    x, y = rng.normal(size=(300, 50)).astype(np.float32), rng.integers(0, 5, 300)
    ts = nnmargin.TrainSet(t, ty)
    runs = [nnmargin.certify(x, y, ts, isa=isa, num_threads=th) for isa in nnmargin.cpu_isas() for th in (1, 2)]
    for other in runs[1:]:
        for field in ("idx_same", "idx_other", "dist_same", "dist_other"):
            np.testing.assert_array_equal(getattr(other, field), getattr(runs[0], field))


@pytest.mark.parametrize("dtype,metric", [(np.uint8, "l2"), (np.uint8, "l1"), (np.uint8, "linf"),
                                          (np.float32, "l2"), (np.float64, "l2"), (np.float32, "l1")])
def test_layouts_built_on_any_thread_count_search_alike(dtype, metric, isa):
    """The training layout is packed by several threads (rows split among them, 1001 points: the
    last tile is partial); one thread and three must give the same layout, hence the same answers,
    on every kernel variant (each packs its queries in its own format)."""
    rng = np.random.default_rng(9)
    t = rng.integers(0, 256, (1001, 37)).astype(dtype) if dtype == np.uint8 else rng.normal(size=(1001, 37)).astype(dtype)
    ty, x, y = rng.integers(0, 4, 1001), t[::7] + 1, rng.integers(0, 4, 143)
    answers = []
    for threads in (1, 3):
        ts = nnmargin.TrainSet(t, ty)
        prepared = ts.prepared(metric, threads)
        assert ts.prepared(metric) is prepared  # cached: the thread count is not part of the key
        scale = 1.0 if dtype == np.uint8 else None  # distances in integer steps, as the reference's
        answers.append(nnmargin.certify(x, y, ts, metric=metric, scale=scale, isa=isa, num_threads=1))
    for field in ("idx_same", "idx_other", "dist_same", "dist_other"):
        np.testing.assert_array_equal(getattr(answers[0], field), getattr(answers[1], field))
    check = assert_exact if dtype == np.uint8 else assert_true_argmin  # float sums depend on order
    for answer in answers:
        check(answer, x, y, t, ty, metric)


def test_prepared_refuses_a_bad_thread_count():
    ts = nnmargin.TrainSet(np.zeros((3, 2), np.uint8), [0, 1, 0])
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(nnmargin.InputError, match="threads"):
            ts.prepared("l2", bad)


def test_peak_probe_reports_every_variant_sequence():
    """The benchmark's peaks: every sequence of every variant this CPU runs gives a positive rate,
    and an unknown sequence is refused rather than reported as 0."""
    core = nnmargin._core
    for isa in nnmargin.cpu_isas():
        sequences = core.peak_sequences(isa)
        assert "scalar_fma" in sequences
        for sequence in sequences:
            assert core.peak_probe(isa, sequence, 0.002) > 0
        with pytest.raises(ValueError, match="no peak sequence"):
            core.peak_probe(isa, "no_such_sequence", 0.002)


@pytest.mark.parametrize("d", [1, 31, 32, 33, 257, 3072])
def test_uint8_extremes_are_exact_on_every_variant(isa, d):
    """All-255 queries against all-0 / all-255 / alternating training rows: the largest partial
    sums every integer path (int16 nibble sums, int32 dot products) has to hold exactly."""
    rows = [np.zeros(d), np.full(d, 255), np.arange(d) % 2 * 255, (np.arange(d) + 1) % 2 * 255]
    t = np.array(rows * 3, dtype=np.uint8)
    ty = np.repeat([0, 1, 2], 4)
    x = np.array([np.full(d, 255), np.zeros(d), np.arange(d) % 2 * 255], dtype=np.uint8)
    y = np.array([0, 1, 2])
    for metric in METRICS:
        cert = nnmargin.certify(x, y, (t, ty), metric=metric, isa=isa, scale=1.0)
        ref = nearest_same_other(x, y, t, ty, metric)
        np.testing.assert_array_equal(cert.idx_same, ref[1])
        np.testing.assert_array_equal(cert.idx_other, ref[3])
        np.testing.assert_array_equal(cert.dist_same, ref[0])
        np.testing.assert_array_equal(cert.dist_other, ref[2])


# ---- float l2 in GEMM form: |x|^2 + |t|^2 - 2 x.t cancels far from the origin ----------------------
def far_near_ties(dtype, seed=11):
    """Queries spread far from the origin, each with a handful of training points at nearly equal tiny
    distances (the GEMM form's rounding exceeds their gaps) among many distant ones: the per-pair bound
    must keep every near point a candidate without making every point one."""
    rng = np.random.default_rng(seed)
    d, n, near = 32, 40, 5
    center, spread = (100.0, 10.0) if dtype == np.float32 else (1e7, 1e3)
    x = (center + spread * rng.standard_normal((n, d))).astype(dtype)
    dirs = rng.standard_normal((n, near, d))
    dirs /= np.linalg.norm(dirs, axis=2, keepdims=True)
    radii = 0.1 * (1.0 + 0.05 * rng.random((n, near, 1)))
    t_near = (x[:, None, :].astype(np.float64) + radii * dirs).reshape(-1, d)
    t_far = center + spread * rng.standard_normal((1500, d))
    t = np.concatenate([t_far, t_near]).astype(dtype)
    perm = rng.permutation(len(t))
    return x, rng.integers(0, 2, n), t[perm], rng.integers(0, 2, len(t))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_float_l2_far_from_origin_near_ties(backend, dtype):
    x, y, t, ty = far_near_ties(dtype)
    assert_true_argmin(run(x, y, t, ty, "l2", backend), x, y, t, ty, "l2")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_float_l2_clustered_far_from_origin(backend, dtype):
    """Everything in one tight cluster far out (1e3 + 1e-3 noise): the GEMM bound exceeds every
    distance, the kernel falls back to direct differences, and the contract still holds."""
    rng = np.random.default_rng(12)
    d = 24
    base = 1e3 * (1.0 + rng.random(d))
    t = (base + 1e-3 * rng.standard_normal((600, d))).astype(dtype)
    x = (base + 1e-3 * rng.standard_normal((30, d))).astype(dtype)
    t[300:310] = t[5]  # exact duplicates far out: the lowest index must win
    x[:3] = t[5]
    y, ty = rng.integers(0, 2, 30), rng.integers(0, 2, 600)
    assert_true_argmin(run(x, y, t, ty, "l2", backend), x, y, t, ty, "l2")
    ds, is_, do, io = nearest_same_other(x, y, t, ty, "l2")
    cert = run(x, y, t, ty, "l2", backend)
    np.testing.assert_array_equal(cert.idx_same[:3], is_[:3])
    np.testing.assert_array_equal(cert.idx_other[:3], io[:3])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_float_l2_far_near_ties_in_ulps(backend, dtype):
    """A chain of neighbouring floats far from the origin on one coordinate: distances a few ulps
    apart, every one a candidate; the exact re-check orders them."""
    rng = np.random.default_rng(13)
    d, m = 16, 300
    t = np.full((m, d), 1e3, dtype=dtype)
    vals = np.empty(m, dtype=dtype)
    vals[0] = dtype(1e3 + 1.0)
    for j in range(1, m):
        vals[j] = np.nextafter(vals[j - 1], dtype(0))
    t[np.arange(m), rng.integers(0, d, m)] = vals[rng.permutation(m)]
    x = np.full((4, d), 1e3, dtype=dtype)
    y, ty = np.array([0, 1, 0, 1]), rng.integers(0, 2, m)
    assert_true_argmin(run(x, y, t, ty, "l2", backend), x, y, t, ty, "l2")


def test_shrunk_gemm_bound_is_caught(monkeypatch):
    """The adversarial case above is sharp: with the error bound scaled down (a debug switch, never
    set otherwise) the screen drops true minima and the contract check fails."""
    x, y, t, ty = far_near_ties(np.float32)
    for isa in nnmargin.cpu_isas():
        assert_true_argmin(run(x, y, t, ty, "l2", ("cpu", isa)), x, y, t, ty, "l2")
    monkeypatch.setenv("NNMARGIN_DEBUG_GEMM_BOUND_SCALE", "0.01")
    for isa in nnmargin.cpu_isas():
        with pytest.raises(AssertionError):
            assert_true_argmin(run(x, y, t, ty, "l2", ("cpu", isa)), x, y, t, ty, "l2")


@pytest.mark.parametrize("metric", ["l1", "linf"])
def test_early_abandoning_on_images(backend, metric):
    """uint8 l1 and l-inf abandon a pair once its partial distance passes the running minimum: on
    real images (l-inf distances crowd at 250-255, so ties at the minimum are everywhere) and
    leave-one-out the results still equal the reference's."""
    s = nnmargin.datasets.load_sample()
    t, ty = s.x_train.reshape(len(s.x_train), -1), s.y_train
    x, y = s.x_test[:200].reshape(200, -1), s.y_test[:200]
    assert_exact(run(x, y, t, ty, metric, backend), x, y, t, ty, metric)
    assert_exact(run(t[:300], ty[:300], t[:300], ty[:300], metric, backend, leave_one_out=True),
                 t[:300], ty[:300], t[:300], ty[:300], metric, leave_one_out=True)


@pytest.mark.parametrize("metric", ["l1", "linf"])
@pytest.mark.parametrize("last_block_gap", [0, 1])
def test_partial_distance_equal_to_the_minimum_is_not_abandoned(backend, metric, last_block_gap):
    """A pair whose partial distance over the blocks visited first equals the running minimum, held
    by a higher index, must not be abandoned: with gap 0 it ties and its lower index wins; with gap
    1 its true distance is one more (an l1 pair stopped there would report a false tie)."""
    d = 192  # three blocks of 64 dims; the first abandoning test comes after two
    x = np.full((2048, d), 50, np.uint8)  # 8 query blocks: every task scans all training tiles in order
    y = np.zeros(len(x), np.int64)
    # original order: the contender (index 0, class 2), 16 of class 0, 48 of class 1, 15 of class 2;
    # sorted by class, the holder (index 17, the first of class 1) lands in tile 0, the contender in tile 1
    ty = np.array([2] + [0] * 16 + [1] * 48 + [2] * 15)
    t = np.full((len(ty), d), 50, np.uint8)
    t[:, :128] = 250  # far points; the first two blocks spread most, so they are visited first
    contender, holder = 0, 17
    t[holder] = 50
    t[holder, 0] = 150  # distance 100 in l1 and l-inf
    t[contender] = 50
    t[contender, 1] = 150  # 100 in the blocks visited first ...
    t[contender, 150] = 50 + (100 if metric == "linf" else 0) + last_block_gap  # ... and the rest in the last
    for threads in (1, 2):
        cert = run(x, y, t, ty, metric, backend, num_threads=threads)
        assert_exact(cert, x, y, t, ty, metric)
        assert set(cert.idx_other) == {contender if last_block_gap == 0 else holder}


@pytest.mark.parametrize("metric", ["l1", "linf"])
@pytest.mark.parametrize("d", [64, 200, 784])
def test_abandoning_decided_in_the_least_spread_block(backend, metric, d):
    """The points that win differ from the query only in the dims visited last (no spread across the
    training set), after many points have set a running minimum; ties at that minimum with lower
    indices later in the scan must still win."""
    rng = np.random.default_rng(d)
    m = 2000
    t = np.zeros((m, d), np.uint8)
    t[:, : d // 2] = rng.choice([0, 255], (m, d // 2))  # high-spread half: far from the query
    x = np.zeros((6, d), np.uint8)
    y = np.array([0, 1, 2, 0, 1, 2])
    ty = rng.integers(0, 3, m)
    # near points: equal to the query except one low-spread dim, at distances 7 and 9; ties among them
    near = rng.choice(m, 60, replace=False)
    t[near] = 0
    t[near, d - 1] = rng.choice([7, 9], 60)
    assert_exact(run(x, y, t, ty, metric, backend), x, y, t, ty, metric)
    assert_exact(run(x, y, t, ty, metric, backend, num_threads=2), x, y, t, ty, metric)
