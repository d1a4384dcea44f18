"""The training set as row shards on Dask workers, each a prepared :class:`nnmargin.TrainSet`.

The client keeps only the labels (M,) and the futures of the shards. Queries go to every shard;
per-shard results (O(N) values and global indices) come back through a tree of merges on the
workers, so results equal the single-machine ones index for index, whatever the number of shards,
workers or query chunks.
"""
from __future__ import annotations

import os
import warnings
from typing import List, Sequence

import numpy as np

from .._errors import InputError, InputTypeError
from .._validate import as_labels, float_dtype_for, to_numpy
from ..trainset import TrainSetBase
from . import _shard

# Client-side arrays (training shards, queries) travel inside their tasks on purpose: that is what
# lets Dask rebuild them when a worker dies (see _embedded). Dask warns about such large tasks from
# its own event-loop thread, where a local catch_warnings cannot reach, so the one message is
# silenced here for the process.
warnings.filterwarnings("ignore", message="Sending large graph", category=UserWarning)


def _default_client():
    from distributed import default_client

    try:
        return default_client()
    except ValueError:
        raise InputError("no Dask client: pass client=Client(...) (dask.distributed) or create one first") from None


def _is_dask_array(x) -> bool:
    return type(x).__module__.split(".")[0] == "dask" and hasattr(x, "to_delayed") and hasattr(x, "chunks")


def _is_path(x) -> bool:
    return isinstance(x, (str, os.PathLike))


class TrainSet(TrainSetBase):
    """A training set sharded by rows over the workers of a Dask cluster.

    Args:
        x_train: the points (M, ...), as one of
            - a ``dask.array`` (its row chunks are the shards; blocks are computed on the workers),
            - a list of arrays (one shard each; sent from the client),
            - a list of ``.npy`` paths on the workers' disks (memory-mapped and read there, never
              through the client),
            - one numpy array, split into shards of ``shard_rows`` rows.
        y_train: (M,) integer labels in the order of the rows, or a list with one (M_s,) array
            per shard.
        client: a ``dask.distributed.Client`` (default: the current one).
        shard_rows: rows per shard when ``x_train`` is one numpy array.

    Every shard is checked (features, dtype, finite values, labels) before any shard is built.
    Shards stay on their workers, prepared once, until :meth:`close` (or the object is dropped); a
    worker lost mid-run is replaced by Dask and its shards rebuilt from their source.
    """

    def __init__(self, x_train, y_train, *, client=None, shard_rows: int | None = None):
        self.client = client if client is not None else _default_client()
        sources = self._sources(x_train, shard_rows)
        stats = self._stats(sources)
        self._dim, self._dtype = _check_shards(stats)
        sizes = [s["rows"] for s in stats]
        self.labels = _labels(y_train, sizes)
        self.labels.flags.writeable = False
        self.classes = np.unique(self.labels)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.shard_sizes = np.asarray(sizes, dtype=np.int64)
        self._shards = [
            self.client.submit(_shard.build_shard, src, self.labels[o:o + n], int(o), self._dtype.str, pure=False)
            for src, o, n in zip(sources, self.offsets, sizes)
        ]
        _wait_for(self._shards)  # build now: errors surface here, not at the first search
        del sources

    # ---------------------------------------------------------------- construction

    def _sources(self, x_train, shard_rows) -> list:
        """One future per shard that yields its points on a worker."""
        client = self.client
        if _is_dask_array(x_train):
            if x_train.ndim < 2:
                raise InputError(f"x_train must have shape (points, features...), got shape {x_train.shape}")
            x = x_train.rechunk({axis: -1 for axis in range(1, x_train.ndim)})
            return client.compute(list(x.to_delayed().ravel()))
        if isinstance(x_train, (list, tuple)):
            if not x_train:
                raise InputError("x_train is an empty list of shards")
            if all(_is_path(p) for p in x_train):
                return [client.submit(_shard.load_npy, os.fspath(p), pure=False) for p in x_train]
            return [_embedded(client, to_numpy(a, f"x_train[{k}]")) for k, a in enumerate(x_train)]
        arr = to_numpy(x_train, "x_train")
        if arr.ndim < 2:
            raise InputError(f"x_train must have shape (points, features...), got shape {arr.shape}")
        rows = len(arr) if shard_rows is None else int(shard_rows)
        if rows < 1:
            raise InputError(f"shard_rows must be a positive integer, got {shard_rows!r}")
        return [_embedded(client, arr[b:b + rows]) for b in range(0, max(len(arr), 1), rows)]

    def _stats(self, sources) -> List[dict]:
        try:
            return self.client.gather([self.client.submit(_shard.shard_stats, s, pure=False) for s in sources])
        except (FileNotFoundError, ValueError) as exc:  # a path that is no .npy file on the worker
            raise InputError(f"cannot read a shard of x_train on its worker: {exc}") from exc

    # ---------------------------------------------------------------- TrainSetBase

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def n_shards(self) -> int:
        return len(self._shards)

    def _reduce(self, parts, merge):
        """Merge per-shard futures pairwise on the workers (a tree of depth log2(shards))."""
        while len(parts) > 1:
            merged = [self.client.submit(merge, a, b, pure=False) for a, b in zip(parts[0::2], parts[1::2])]
            parts = merged + (parts[-1:] if len(parts) % 2 else [])
        return self.client.gather(parts[0])

    def _send(self, *arrays):
        """Futures of the arrays, each sent once; unlike scattered data, a task holding them can be
        recomputed by Dask when the worker that kept them dies."""
        return [_embedded(self.client, a) for a in arrays]

    def search(self, queries, labels, skip, metric: str, device: str = "cpu", isa: str = "auto", threads: int = 0):
        q, lab = self._send(queries, labels)
        parts = [self.client.submit(_shard.search_shard, shard, q, lab, skip, metric, device, isa, threads, pure=False)
                 for shard in self._shards]
        return self._reduce(parts, _shard.merge_neighbours)

    def search_topk(self, queries, skip, k: int, metric: str, isa: str = "auto", threads: int = 0):
        q, = self._send(queries)
        parts = [self.client.submit(_shard.topk_shard, shard, q, skip, k, metric, isa, threads, self.classes,
                                    pure=False) for shard in self._shards]
        return self._reduce(parts, _shard.merge_topk)

    def bisector(self, queries, labels, pivot_rows, pivot_sq, norm: str, isa: str = "auto", threads: int = 0):
        data = self._send(queries, labels, pivot_rows, pivot_sq)
        parts = [self.client.submit(_shard.bisector_shard, shard, *data, norm, isa, threads, pure=False)
                 for shard in self._shards]
        return self._reduce(parts, _shard.merge_bisector)

    def rows(self, index: np.ndarray) -> np.ndarray:
        index = np.asarray(index, dtype=np.int64)
        flat = index.reshape(-1)
        if flat.size and (flat.min() < 0 or flat.max() >= self.n_points):
            raise IndexError("training index out of range")
        shard_of = np.searchsorted(self.offsets, flat, side="right") - 1
        out = np.empty((flat.size, self.dim), dtype=self.dtype)
        wanted = np.unique(shard_of)
        futures = [self.client.submit(_shard.rows_of_shard, self._shards[s], flat[shard_of == s] - self.offsets[s],
                                      pure=False) for s in wanted]
        for s, rows in zip(wanted, self.client.gather(futures)):
            out[shard_of == s] = rows
        return out.reshape(index.shape + (self.dim,))

    def is_own_training_set(self, queries: np.ndarray, labels: np.ndarray) -> bool:
        if queries.shape != (self.n_points, self.dim) or not np.array_equal(labels, self.labels):
            return False
        futures = [self.client.submit(_shard.shard_equals, shard, queries[o:o + n], pure=False)
                   for shard, o, n in zip(self._shards, self.offsets, self.shard_sizes)]
        return all(self.client.gather(futures))

    # ---------------------------------------------------------------- lifetime

    def close(self) -> None:
        """Release the shards on the workers."""
        if getattr(self, "_shards", None):
            self.client.cancel(self._shards)
            self._shards = []

    def __enter__(self) -> "TrainSet":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"distributed.TrainSet({self.n_points} points in {self.n_shards} shards, {self.dim} features, "
                f"{self.dtype}, {len(self.classes)} classes)")


def _embedded(client, array):
    """A future of ``array`` whose data travels inside its task: unlike scattered data, Dask can
    recompute it when the worker holding it dies. (Data that does not fit the client belongs in
    files or a dask.array read on the workers.)"""
    return client.submit(np.array, array, pure=False)


def _wait_for(futures) -> None:
    """Block until the futures are done, leaving their results on the workers; re-raise the first
    failure (e.g. an InputError raised while a shard was prepared)."""
    from distributed import wait

    wait(futures)
    for future in futures:
        if future.status == "error":
            future.result()


def _check_shards(stats: Sequence[dict]):
    """(D, kernel dtype) of the whole set, or an InputError naming the first bad shard."""
    first = stats[0]
    for k, s in enumerate(stats):
        dtype = np.dtype(s["dtype"])
        if s["ndim"] < 2 or s["dim"] == 0:
            raise InputError(f"shard {k} of x_train must have shape (points, features...), with features")
        if dtype == np.bool_ or dtype.kind not in "uif":
            raise InputTypeError(f"shard {k} of x_train holds {dtype}; use uint8, float32 or float64")
        if s["dim"] != first["dim"]:
            raise InputError(f"shard {k} of x_train has {s['dim']} features, shard 0 has {first['dim']}")
        if s["dtype"] != first["dtype"]:
            raise InputTypeError(f"shard {k} of x_train is {dtype}, shard 0 is {np.dtype(first['dtype'])}: "
                                 f"give every shard the same dtype")
        if s["nonfinite"]:
            raise InputError(f"shard {k} of x_train contains {s['nonfinite']} NaN or infinite value(s)")
    if sum(s["rows"] for s in stats) == 0:
        raise InputError("the training set is empty (x_train has 0 points)")
    dtype = np.dtype(first["dtype"])
    if dtype == np.uint8:
        return first["dim"], dtype
    lo, hi = min(s["lo"] for s in stats), max(s["hi"] for s in stats)
    if dtype.kind in "ui":
        if hi > 2**53:
            raise InputError("x_train holds integers beyond 2**53, which float64 cannot represent exactly")
        dtype = np.dtype(np.float64)
    elif dtype == np.float16:
        dtype = np.dtype(np.float32)
    return first["dim"], float_dtype_for(dtype, lo, hi)


def _labels(y_train, sizes) -> np.ndarray:
    """(M,) int64 labels from one array or one array per shard."""
    if isinstance(y_train, (list, tuple)) and y_train and all(np.ndim(v) == 1 for v in y_train):
        if len(y_train) != len(sizes):
            raise InputError(f"y_train has labels for {len(y_train)} shards but x_train has {len(sizes)}")
        parts = [as_labels(v, n, f"y_train[{k}]") for k, (v, n) in enumerate(zip(y_train, sizes))]
        return np.concatenate(parts)
    if _is_dask_array(y_train):
        y_train = y_train.compute()
    return np.array(as_labels(y_train, sum(sizes), "y_train"))
