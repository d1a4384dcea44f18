"""The CUDA backend's real kernel and driver sources, compiled for the host against
csrc/cuda/emulation (``device="cuda-emulated"`` of ``_core.search``), against the CPU backend and a
numpy brute force.

What this proves without a GPU: the kernels' indexing, tiling, padding, epilogue and key merge, the
driver's packing, resident cache and streaming, and the device checks, given that the emulated
mma.sync follows the PTX ISA's fragment tables (a planted fragment bug must make these tests fail).
What it cannot: timing, the hardware's own behaviour, stream ordering (emulated copies and kernels run
at once, in call order); see benchmarks/gpu_check.sh for the GPU run.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

import nnmargin
from nnmargin import _core
from nnmargin.reference import distances

EMULATED = "cuda-emulated"


def search(ts, x, y, metric="l2", skip=None, device=EMULATED):
    """_core.search on a TrainSet: (value_same, index_same, value_other, index_other), each (n,)."""
    return _core.search(ts.prepared(metric), x, ts.class_ids(y), skip, device=device)


def brute(x, y, t, ty, metric="l2", skip=None):
    """numpy: the same four arrays in kernel units (squared l2), lowest index on ties."""
    d = distances(x, t, metric, squared=True).astype(np.float64)
    if skip is not None:
        d[np.arange(len(x)), skip] = np.inf
    out = []
    for same in (True, False):
        mask = (np.asarray(y)[:, None] == np.asarray(ty)[None]) == same
        dm = np.where(mask, d, np.inf)
        idx = dm.argmin(axis=1)  # first minimum: the lowest original index
        val = dm[np.arange(len(x)), idx]
        out += [val, np.where(np.isinf(val), -1, idx)]
    return tuple(out)


def assert_same(got, want, what=""):
    for name, g, w in zip(("value_same", "index_same", "value_other", "index_other"), got, want):
        np.testing.assert_array_equal(g, w, err_msg=f"{what} {name}")


def check(x, y, t, ty, metric="l2", leave_one_out=False):
    ts = nnmargin.TrainSet(t, ty)
    skip = np.arange(len(x), dtype=np.int64) if leave_one_out else None
    got = search(ts, x, y, metric, skip)
    assert_same(got, search(ts, x, y, metric, skip, device="cpu"), "vs cpu")
    if np.asarray(t).dtype == np.uint8 or metric == "linf":  # float sums: numpy adds in another order
        assert_same(got, brute(x, y, t, ty, metric, skip), "vs brute force")
    return ts, got


def u8(rng, shape, values=None):
    return (rng.choice(values, shape) if values is not None else rng.integers(0, 256, shape)).astype(np.uint8)


# -------------------------------------------------------------------- the tensor-core kernel

# Tile edges: 64 queries per block, 64 training points per tile, 128 dims per stage, 32 per mma.
@pytest.mark.parametrize("n,m,d", [(1, 1, 1), (63, 65, 127), (64, 64, 128), (65, 130, 129), (130, 63, 33),
                                   (7, 200, 300), (100, 129, 784)])
def test_emulated_tensor_core_full_range(n, m, d):
    rng = np.random.default_rng(n * 1000 + d)
    check(u8(rng, (n, d)), rng.integers(0, 3, n), u8(rng, (m, d)), rng.integers(0, 3, m))


def test_emulated_tensor_core_extremes():
    """Only 0 and 255: the largest squared distances and int8 values -128 / 127 after the shift."""
    rng = np.random.default_rng(1)
    check(u8(rng, (70, 784), [0, 255]), rng.integers(0, 2, 70), u8(rng, (150, 784), [0, 255]), rng.integers(0, 2, 150))


def test_emulated_tensor_core_largest_dim():
    """D = 32767, the tensor-core limit: 65025 * D just fits in int32, across 256 dim stages."""
    rng = np.random.default_rng(2)
    t = u8(rng, (70, 32767), [0, 255])
    t[0] = 0
    t[1] = 255  # a pair at the largest distance the kernel accepts
    x = np.concatenate([t[:2], u8(rng, (3, 32767), [0, 255])])
    # class 0 holds only t[1]: query 0 (all zeros) has its same-class neighbour at the largest distance
    _, got = check(x, np.array([0, 1, 0, 1, 2]), t, np.r_[1, 0, rng.integers(1, 3, 68)])
    assert got[0][0] == 65025 * 32767 and got[1][0] == 1


def test_emulated_tensor_core_ties_go_to_the_lowest_index():
    rng = np.random.default_rng(3)
    rows = u8(rng, (3, 200))
    t = rows[rng.integers(0, 3, 300)]  # many exact duplicates, spread over tiles and blocks
    x = rows[rng.integers(0, 3, 90)]
    check(x, rng.integers(0, 2, 90), t, rng.integers(0, 2, 300))


def test_emulated_tensor_core_leave_one_out_and_empty_classes():
    rng = np.random.default_rng(4)
    t = u8(rng, (140, 50), [0, 1, 254, 255])
    ty = rng.integers(0, 3, 140)
    check(t, ty, t, ty, leave_one_out=True)
    x = u8(rng, (20, 50))
    check(x, np.full(20, 7), t, ty)  # a class with no training point: same = inf, -1
    check(x, rng.integers(0, 2, 20), t, np.zeros(140, dtype=int))  # one class: other = inf, -1 for some


# -------------------------------------------------------------------- driver: streaming and cache

@pytest.mark.parametrize("rows", [64, 100, 1000])
def test_emulated_streaming_in_forced_chunks(monkeypatch, rows):
    rng = np.random.default_rng(5)
    distinct = u8(rng, (4, 96))
    t = np.concatenate([u8(rng, (300, 96)), distinct[rng.integers(0, 4, 100)]])  # ties across chunks
    ty = rng.integers(0, 3, 400)
    monkeypatch.setenv("NNMARGIN_CUDA_CHUNK_ROWS", str(rows))
    check(t, ty, t, ty, leave_one_out=True)
    stats = _core.cuda_last_search(emulated=True)
    assert stats["chunks"] == -(-400 // (-(-min(rows, 400) // 64) * 64)) and not stats["resident"]


def test_emulated_resident_copy_is_reused_when_it_fills_free_memory(monkeypatch):
    """The cached copy occupies device memory: the second call must reuse it, not stream."""
    rng = np.random.default_rng(6)
    m, d = 640, 256
    t, ty = u8(rng, (m, d)), rng.integers(0, 2, m)
    x, y = u8(rng, (10, d)), rng.integers(0, 2, 10)
    set_bytes = m * (d + 12)
    monkeypatch.setenv("NNMARGIN_CUDA_EMULATED_MEMORY", str(int(2.5 * set_bytes)))
    ts = nnmargin.TrainSet(t, ty)
    first = search(ts, x, y)
    assert _core.cuda_last_search(emulated=True)["resident"]
    second = search(ts, x, y)
    assert _core.cuda_last_search(emulated=True)["resident"] and _core.cuda_last_search(emulated=True)["chunks"] == 1
    assert_same(second, first)
    assert_same(first, brute(x, y, t, ty))


def test_emulated_streams_when_the_set_does_not_fit(monkeypatch):
    rng = np.random.default_rng(7)
    m, d = 1000, 128
    t, ty = u8(rng, (m, d)), rng.integers(0, 2, m)
    x, y = u8(rng, (30, d)), rng.integers(0, 2, 30)
    monkeypatch.setenv("NNMARGIN_CUDA_EMULATED_MEMORY", str(int(1.2 * m * (d + 12))))
    check(x, y, t, ty)
    stats = _core.cuda_last_search(emulated=True)
    assert stats["chunks"] > 2 and not stats["resident"]


def test_emulated_threads_share_one_trainset():
    rng = np.random.default_rng(8)
    t, ty = u8(rng, (200, 64)), rng.integers(0, 3, 200)
    x, y = u8(rng, (64, 64)), rng.integers(0, 3, 64)
    ts = nnmargin.TrainSet(t, ty)
    want = brute(x, y, t, ty)
    results = [None] * 4

    def work(i):
        results[i] = search(ts, x, y)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for got in results:
        assert_same(got, want)


def test_emulated_bad_chunk_setting_is_refused(monkeypatch):
    rng = np.random.default_rng(9)
    monkeypatch.setenv("NNMARGIN_CUDA_CHUNK_ROWS", "0")
    ts = nnmargin.TrainSet(u8(rng, (10, 4)), np.zeros(10, dtype=int))
    with pytest.raises(ValueError, match="NNMARGIN_CUDA_CHUNK_ROWS"):
        search(ts, u8(rng, (2, 4)), np.zeros(2, dtype=int))


# -------------------------------------------------------------------- the reference kernel

@pytest.mark.parametrize("dtype,metric", [(np.uint8, "l1"), (np.uint8, "linf"), (np.float32, "l2"),
                                          (np.float64, "l2"), (np.float32, "linf"), (np.float64, "l1")])
def test_emulated_reference_kernel(dtype, metric):
    rng = np.random.default_rng(10)
    make = (lambda s: u8(rng, s)) if dtype == np.uint8 else (lambda s: rng.normal(size=s).astype(dtype))
    t = make((150, 37))
    t[75:] = t[:75]  # exact duplicates: ties
    x = np.concatenate([make((60, 37)), t[:10]])
    check(x, rng.integers(0, 3, 70), t, rng.integers(0, 3, 150), metric)


# -------------------------------------------------------------------- device checks

@pytest.mark.parametrize("setting,value,reason", [
    ("NNMARGIN_CUDA_EMULATED_DRIVER", "0", "no CUDA driver found"),
    ("NNMARGIN_CUDA_EMULATED_DRIVER", "12040", "supports CUDA 12.4, older than the CUDA 13.0 runtime"),
    ("NNMARGIN_CUDA_EMULATED_CC", "7.5", "compute capability 8.0 or newer"),
])
def test_emulated_device_status_says_why(monkeypatch, setting, value, reason):
    assert _core.cuda_status(emulated=True) == (1, "")
    monkeypatch.setenv(setting, value)
    usable, why = _core.cuda_status(emulated=True)
    assert usable == 0 and reason in why
    ts = nnmargin.TrainSet(np.zeros((4, 3), np.uint8), np.zeros(4, dtype=int))
    with pytest.raises(RuntimeError, match=reason):
        search(ts, np.zeros((1, 3), np.uint8), np.zeros(1, dtype=int))


# -------------------------------------------------------------------- the tests can fail

@pytest.mark.parametrize("bug", ["a_regs", "b_k", "c_col"])
def test_emulated_planted_fragment_bug_is_caught(monkeypatch, bug):
    """A wrong fragment index (planted in the emulated mma's tables) must break the comparison."""
    rng = np.random.default_rng(11)
    t, ty = u8(rng, (130, 100)), rng.integers(0, 2, 130)
    x, y = u8(rng, (70, 100)), rng.integers(0, 2, 70)
    monkeypatch.setenv("NNMARGIN_CUDA_EMULATED_BUG", bug)
    ts = nnmargin.TrainSet(t, ty)
    with pytest.raises(AssertionError):
        assert_same(search(ts, x, y), brute(x, y, t, ty))


@pytest.mark.parametrize("n,m,d", [(65, 130, 300), (7, 200, 129)])
def test_emulated_reverse_thread_order(monkeypatch, n, m, d):
    """The threads of a block handed over in the opposite order: results must not change (a race
    between them, such as a missing __syncthreads, would show under one order or the other)."""
    monkeypatch.setenv("NNMARGIN_CUDA_EMULATED_ORDER", "reverse")
    rng = np.random.default_rng(12)
    check(u8(rng, (n, d)), rng.integers(0, 3, n), u8(rng, (m, d)), rng.integers(0, 3, m))
    monkeypatch.setenv("NNMARGIN_CUDA_CHUNK_ROWS", "64")
    check(u8(rng, (n, d)), rng.integers(0, 3, n), u8(rng, (m, d)), rng.integers(0, 3, m))
