"""Bad input gets a TypeError / ValueError that names the problem: never a crash, hang or wrong answer."""
from __future__ import annotations

import numpy as np
import pytest

import nnmargin

T = np.random.default_rng(0).integers(0, 256, (20, 6)).astype(np.uint8)
TY = np.arange(20) % 2
X = T[:4].copy()
Y = TY[:4].copy()


@pytest.mark.parametrize(
    "x, y, train, error, match",
    [
        (X.astype(float) * np.nan, Y, (T.astype(float), TY), ValueError, "NaN"),
        (X.astype(float), Y, (np.where(T == T[0, 0], np.inf, T).astype(float), TY), ValueError, "infinite"),
        (X[:, :5], Y, (T, TY), ValueError, "5 features .* 6"),
        (X, Y[:3], (T, TY), ValueError, "3 labels but there are 4"),
        (X, Y, (T[:0], TY[:0]), ValueError, "empty"),
        (X, Y, (T, TY[:5]), ValueError, "5 labels"),
        (X, Y + 0.5, (T, TY), ValueError, "integer"),
        (X, np.array(["a", "b", "c", "d"]), (T, TY), TypeError, "integer"),
        (np.array([["a"] * 6] * 4), Y, (T, TY), TypeError, "numbers"),
        (X.astype(bool), Y, (T, TY), TypeError, "numbers"),
        (X.astype(np.complex64), Y, (T, TY), TypeError, "numbers"),
        (X.astype(np.float32), Y, (T, TY), TypeError, "uint8"),
        (X[0], Y[:1], (T, TY), ValueError, "shape"),
        (np.zeros((4, 0)), Y, (T, TY), ValueError, "no features"),
        (X, Y, T, TypeError, "TrainSet or a tuple"),
        (X, Y, (T, TY, TY), TypeError, "TrainSet or a tuple"),
        (X.astype(float) * 1e200, Y, (T.astype(float), TY), ValueError, "rescale"),
        ([[1, 2], [3]], [0, 1], (T, TY), TypeError, "cannot be converted"),
    ],
)
def test_bad_data_is_rejected_with_a_clear_message(x, y, train, error, match):
    with pytest.raises(error, match=match):
        nnmargin.certify(x, y, train)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"metric": "cosine"}, ValueError, "metric"),
        ({"device": "tpu"}, ValueError, "device"),
        ({"num_threads": 0}, ValueError, "num_threads"),
        ({"num_threads": 1.5}, ValueError, "num_threads"),
        ({"scale": -1.0}, ValueError, "scale"),
        ({"scale": float("nan")}, ValueError, "scale"),
        ({"isa": "avx1024"}, ValueError, "avx1024"),
    ],
)
def test_bad_options_are_rejected(kwargs, error, match):
    with pytest.raises(error, match=match):
        nnmargin.certify(X, Y, (T, TY), **kwargs)


def test_scale_is_for_uint8_only():
    with pytest.raises(ValueError, match="uint8 input only"):
        nnmargin.certify(X.astype(float), Y, (T.astype(float), TY), scale=1.0)


def test_float64_queries_that_float32_cannot_hold_are_refused():
    t = np.random.default_rng(1).normal(size=(10, 3)).astype(np.float32)
    with pytest.raises(TypeError, match="without rounding"):
        nnmargin.certify(np.full((1, 3), 0.1), [0], (t, np.arange(10) % 2))
    exact = nnmargin.certify(t[:2].astype(np.float64), [0, 1], (t, np.arange(10) % 2))  # exactly representable
    assert (exact.dist_same == 0).all()


@pytest.mark.skipif(nnmargin.cuda_available(), reason="checks the no-GPU message")
def test_cuda_request_without_a_gpu_says_why():
    with pytest.raises(RuntimeError, match="CUDA"):
        nnmargin.certify(X, Y, (T, TY), device="cuda")
    assert nnmargin.certify(X, Y, (T, TY), device="auto").info["device"] == "cpu"


def test_other_integer_dtypes_are_searched_exactly_as_float64():
    cert = nnmargin.certify(X.astype(np.int64), Y, (T.astype(np.int32), TY))
    ref = nnmargin.certify(X, Y, (T, TY), scale=1.0)
    np.testing.assert_array_equal(cert.idx_other, ref.idx_other)
    np.testing.assert_array_equal(cert.dist_other, ref.dist_other)


@pytest.mark.parametrize("metric, limit", [("l2", 66051), ("l1", 8421504)])
def test_uint8_dims_beyond_the_exact_key_range_are_refused(metric, limit):
    """Exact uint8 keys are 32-bit: l2 holds 65025 * dim, l1 255 * dim (below 2^31); one feature more
    is refused by name instead of wrapping around."""
    t = np.zeros((2, limit + 1), np.uint8)
    with pytest.raises(ValueError, match=f"at most {limit} features"):
        nnmargin.certify(t[:1], [0], (t, [0, 1]), metric=metric)
