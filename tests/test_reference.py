"""The numpy reference itself, against plain Python loops on tiny inputs: it is what every kernel
test trusts, so it must be right on its own."""
from __future__ import annotations

import math

import numpy as np
import pytest

from nnmargin import reference


def loop_distance(a, b, metric):
    diffs = [abs(int(u) - int(v)) if isinstance(u, np.integer) else abs(float(u) - float(v)) for u, v in zip(a, b)]
    if metric == "l2":
        return math.sqrt(sum(d * d for d in diffs))
    return float(sum(diffs)) if metric == "l1" else float(max(diffs))


@pytest.mark.parametrize("metric", ["l2", "l1", "linf"])
@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_distances_equal_python_loops(metric, dtype):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (5, 7)).astype(dtype)
    t = rng.integers(0, 256, (9, 7)).astype(dtype)
    got = reference.distances(x, t, metric)
    want = np.array([[loop_distance(a, b, metric) for b in t] for a in x])
    np.testing.assert_array_equal(got, want)


def test_uint8_squared_l2_is_exact_at_the_extremes():
    x = np.full((1, 4096), 255, np.uint8)
    t = np.zeros((2, 4096), np.uint8)
    t[1, 0] = 255
    np.testing.assert_array_equal(reference.distances(x, t, "l2", squared=True), [[4096 * 255**2, 4095 * 255**2]])


def test_nearest_same_other_ties_empty_classes_and_leave_one_out():
    t = np.array([[0.0], [1.0], [1.0], [3.0]])
    ty = np.array([0, 1, 1, 0])
    d_same, i_same, d_other, i_other = reference.nearest_same_other([[2.0]], [1], t, ty)
    assert (i_same[0], d_same[0], i_other[0], d_other[0]) == (1, 1.0, 3, 1.0)  # ties: lowest index
    d_same, i_same, _, _ = reference.nearest_same_other([[2.0]], [7], t, ty)   # class 7 has no point
    assert (i_same[0], d_same[0]) == (-1, np.inf)
    loo = reference.nearest_same_other(t, ty, t, ty, leave_one_out=True)
    np.testing.assert_array_equal(loo[1], [3, 2, 1, 0])


def test_bisector_bound_is_the_half_space_distance():
    # x = 0, pivot p = 1, other-class t = 3 on a line: the bisector is at 2, at distance 2 from x.
    t = np.array([[1.0], [3.0]])
    ty = np.array([0, 1])
    assert reference.bisector_bound([[0.0]], [0], t, ty, [[0]], "l2")[0] == pytest.approx(2.0)
    assert reference.predict_1nn([[1.9], [2.1]], t, ty).tolist() == [0, 1]
