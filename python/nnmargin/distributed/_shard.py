"""What runs on the Dask workers: one shard of the training set, prepared once and searched many
times, and the merges of per-shard results.

Every function here is plain numpy on top of the single-machine :class:`nnmargin.TrainSet`, so a
shard is searched by exactly the kernels (and gives exactly the values) of one machine. Indices
leave a shard as *global* training indices (shard offset + local index); merges keep, per query,
the smaller value and on equal values the lower global index, the rule of the single-machine merge.
That order is total, so any tree of merges gives the same answer.
"""
from __future__ import annotations

import numpy as np

from .._validate import magnitude_range
from ..trainset import TrainSet


class Shard:
    """Rows [offset, offset + n_points) of the training set, as a prepared local TrainSet."""

    def __init__(self, train: TrainSet, offset: int):
        self.train = train
        self.offset = int(offset)

    @property
    def n_points(self) -> int:
        return self.train.n_points


def shard_stats(block) -> dict:
    """What the client checks before building: rows, features, dtype, bad values, magnitudes."""
    arr = np.asarray(block)
    stats = {"rows": int(arr.shape[0]) if arr.ndim else 0, "dim": int(np.prod(arr.shape[1:])) if arr.ndim >= 2 else 0,
             "ndim": int(arr.ndim), "dtype": arr.dtype.str, "nonfinite": 0, "lo": np.inf, "hi": 0.0}
    if arr.dtype.kind == "f":
        stats["nonfinite"] = int(arr.size - np.count_nonzero(np.isfinite(arr)))
    if arr.dtype.kind in "fiu" and arr.dtype != np.uint8 and arr.size and not stats["nonfinite"]:
        stats["lo"], stats["hi"] = magnitude_range(arr)
    return stats


def load_npy(path: str):
    """A ``.npy`` file on the worker's disk, memory-mapped (read where it lies)."""
    return np.load(path, mmap_mode="r")


def build_shard(block, labels: np.ndarray, offset: int, kernel_dtype: str) -> Shard:
    """Prepare one shard: its points in the kernel dtype the client chose for the whole set."""
    arr = np.asarray(block)
    arr = arr.reshape(arr.shape[0], -1)
    if np.dtype(kernel_dtype) != np.uint8:
        arr = arr.astype(kernel_dtype, copy=False)
    train = TrainSet(arr, labels)
    if train.dtype != np.dtype(kernel_dtype):  # the client's choice covers every shard's magnitudes
        raise RuntimeError(f"shard at row {offset} prepared as {train.dtype}, expected {kernel_dtype}")
    return Shard(train, offset)


def _worker_threads(threads: int) -> int:
    """``threads``, or for 0 the worker's own thread count (never all cores of a shared machine)."""
    if threads:
        return threads
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):  # not on a worker (e.g. a direct call in a test)
        return 0
    state = getattr(worker, "state", worker)
    return int(getattr(state, "nthreads", 0) or 0)


def _globalize(index: np.ndarray, offset: int) -> np.ndarray:
    return np.where(index >= 0, index + offset, -1)


def _local_skip(shard: Shard, skip):
    """Global leave-one-out indices (N,) as the shard's local ones (-1 outside it), or None."""
    if skip is None:
        return None
    inside = (skip >= shard.offset) & (skip < shard.offset + shard.n_points)
    return np.where(inside, skip - shard.offset, -1).astype(np.int64)


def search_shard(shard: Shard, queries, labels, skip, metric, device, isa, threads):
    """The shard's nearest same/other-class points: (value_same, idx_same, value_other, idx_other),
    indices global. ``skip`` (N,) holds global leave-one-out indices, or None."""
    v_same, i_same, v_other, i_other = shard.train.search(queries, labels, _local_skip(shard, skip), metric, device,
                                                          isa, _worker_threads(threads))
    return v_same, _globalize(i_same, shard.offset), v_other, _globalize(i_other, shard.offset)


def topk_shard(shard: Shard, queries, skip, k, metric, isa, threads, classes):
    """The shard's k nearest points of each class of the whole set (``classes``, sorted), as
    (value, global index), each (N, len(classes), k); a class the shard lacks is all +inf / -1."""
    value, index = shard.train.search_topk(queries, _local_skip(shard, skip), k, metric, isa, _worker_threads(threads))
    out_v = np.full((value.shape[0], len(classes), k), np.inf)
    out_i = np.full(out_v.shape, -1, dtype=np.int64)
    at = np.searchsorted(classes, shard.train.classes)
    out_v[:, at], out_i[:, at] = value, _globalize(index, shard.offset)
    return out_v, out_i


def bisector_shard(shard: Shard, queries, labels, pivot_rows, pivot_sq, norm, isa, threads):
    """The bisector bound over the shard's other-class points: (bound, global index)."""
    bound, index = shard.train.bisector(queries, labels, pivot_rows, pivot_sq, norm, isa, _worker_threads(threads))
    return bound, _globalize(index, shard.offset)


def rows_of_shard(shard: Shard, local_index: np.ndarray) -> np.ndarray:
    return shard.train.points[local_index]


def shard_equals(shard: Shard, rows: np.ndarray) -> bool:
    """Whether ``rows`` are exactly this shard's points (for the leave-one-out check)."""
    return rows.shape == shard.train.points.shape and bool(np.array_equal(rows, shard.train.points))


def _better(v_new, i_new, v_old, i_old) -> np.ndarray:
    """Where (v_new, i_new) beats (v_old, i_old): smaller value, then lower global index; -1 is none."""
    return (i_new >= 0) & ((i_old < 0) | (v_new < v_old) | ((v_new == v_old) & (i_new < i_old)))


def merge_neighbours(a, b):
    """Two shards' (value_same, idx_same, value_other, idx_other) -> the better of each."""
    out = []
    for k in (0, 2):
        take = _better(b[k], b[k + 1], a[k], a[k + 1])
        out += [np.where(take, b[k], a[k]), np.where(take, b[k + 1], a[k + 1])]
    return tuple(out)


def merge_topk(a, b):
    """Two shards' per-class lists (value, index) -> the k best of both under (value, global index)."""
    k = a[0].shape[2]
    value, index = np.concatenate([a[0], b[0]], axis=2), np.concatenate([a[1], b[1]], axis=2)
    order = np.lexsort((np.where(index >= 0, index, np.iinfo(np.int64).max), value), axis=-1)[..., :k]
    return np.take_along_axis(value, order, axis=2), np.take_along_axis(index, order, axis=2)


def merge_bisector(a, b):
    """Two shards' (bound, index) -> the smaller bound (lower global index on ties)."""
    take = _better(b[0], b[1], a[0], a[1])
    return np.where(take, b[0], a[0]), np.where(take, b[1], a[1])
