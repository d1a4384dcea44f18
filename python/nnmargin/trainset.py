"""Training data prepared once (layout, norms, class grouping) and searched many times.

A :class:`TrainSet` owns a private, read-only snapshot of the points and labels it was given: the
compiled layouts, the float64 view and every later read (pivots, leave-one-out checks) see the same
data, whatever the caller does to its own arrays afterwards. A certificate can never mix two
versions of the training set.
"""
from __future__ import annotations

import threading

import numpy as np

from . import _core
from ._errors import InputError, InputTypeError
from ._names import DUAL_NORM, as_metric, metric_code
from ._validate import as_labels, as_num_threads, as_points, is_torch_tensor, safe_float_dtype


def _may_alias(arr: np.ndarray, source) -> bool:
    """Whether ``arr`` may share memory with the caller's ``source`` (unknown array-likes: yes)."""
    if isinstance(source, np.ndarray):
        return np.may_share_memory(arr, source)
    if is_torch_tensor(source):
        return source.device.type == "cpu" and np.may_share_memory(arr, source.detach().numpy())
    return not isinstance(source, (list, tuple))  # lists are always converted into a fresh array


def _private_copy(arr: np.ndarray, source) -> np.ndarray:
    """``arr`` as a read-only array no one else can write: copied only when it may share memory with
    the caller's ``source``."""
    if _may_alias(arr, source):
        arr = arr.copy()
    arr.flags.writeable = False
    return arr


class Float64TrainSet:
    """The training points in float64 data units (``unit`` per stored step), grouped by class: what
    the exact solver, the 1NN attack and exact 1NN predictions work on.

    Attributes: points (M, D) float64, labels (M,) int64, sq_norms (M,) |t|^2, by_class
    {label: (M_c,) indices}.
    """

    def __init__(self, points: np.ndarray, labels: np.ndarray, unit: float):
        self.points = points.astype(np.float64) * unit
        self.points.flags.writeable = False
        self.labels = labels
        self.sq_norms = np.einsum("ij,ij->i", self.points, self.points)
        self.by_class = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}

    def nearest_of_class(self, z: np.ndarray, cls, k: int) -> np.ndarray:
        """Indices of the k points of class cls nearest to z (D,), nearest first (ties: lowest index).
        Screened by |t|^2 - 2 t.z: for ranking constraints, not for proofs."""
        idx = self.by_class[cls]
        d2 = self.sq_norms[idx] - 2.0 * (self.points[idx] @ z)
        k = min(k, len(idx))
        part = np.argpartition(d2, k - 1)[:k] if k < len(idx) else np.arange(len(idx))
        return idx[part[np.lexsort((idx[part], d2[part]))]]


class TrainSetBase:
    """What :func:`nnmargin.certify` needs of a training set, wherever its points live.

    Subclasses hold the points (here: :class:`TrainSet`; across machines:
    :class:`nnmargin.distributed.TrainSet`) and answer three questions with the kernels: the nearest
    same/other-class points of queries (:meth:`search`), the bisector bound (:meth:`bisector`), and
    rows by index (:meth:`rows`). The labels and classes are kept here, (M,) on the caller's side.
    """

    labels: np.ndarray   # (M,) int64 labels in the original order
    classes: np.ndarray  # (C,) sorted distinct labels

    @property
    def n_points(self) -> int:
        return int(self.labels.shape[0])

    @property
    def dim(self) -> int:
        raise NotImplementedError

    @property
    def dtype(self) -> np.dtype:
        raise NotImplementedError

    def search(self, queries, labels, skip, metric: str, device: str = "cpu", isa: str = "auto", threads: int = 0):
        """(value_same, index_same, value_other, index_other), each (N,), in kernel units (squared
        for l2, integer steps for uint8), with original training indices (-1: none). ``skip``: (N,)
        training index each query ignores (leave-one-out), or None."""
        raise NotImplementedError

    def search_topk(self, queries, skip, k: int, metric: str, isa: str = "auto", threads: int = 0):
        """(value, index), each (N, C, k) with C = len(classes): for every class (in ``classes``
        order) the k nearest training points of each query, ascending by (value, index), in
        kernel units; +inf / -1 where a class has fewer than k points. ``skip`` as in search."""
        raise NotImplementedError

    def bisector(self, queries, labels, pivot_rows, pivot_sq, norm: str, isa: str = "auto", threads: int = 0):
        """(bound (N,), index (N,)): the bisector bound in ``norm`` (kernel units, rounded down) and
        the other-class training point attaining it; see :func:`nnmargin.bounds.bisector_bound`."""
        raise NotImplementedError

    def rows(self, index: np.ndarray) -> np.ndarray:
        """Training points at original indices ``index`` (any shape), in the kernel dtype."""
        raise NotImplementedError

    def float64(self, unit: float = 1.0) -> "Float64TrainSet":
        raise InputError(f"{type(self).__name__} has no float64 view: the exact bound runs on one machine "
                         f"in this version (use nnmargin.TrainSet)")

    def is_own_training_set(self, queries: np.ndarray, labels: np.ndarray) -> bool:
        raise NotImplementedError

    def class_ids(self, labels: np.ndarray) -> np.ndarray:
        """(N,) int32 dense ids of ``labels``; -1 for a label no training point has."""
        pos = np.searchsorted(self.classes, labels)
        pos = np.minimum(pos, len(self.classes) - 1)
        return np.where(self.classes[pos] == labels, pos, -1).astype(np.int32)

    def queries_like(self, x, name: str = "x") -> np.ndarray:
        """Validate queries and bring them to this set's (N, D) layout and dtype, exactly or not at all."""
        q = as_points(x, name)
        if q.shape[1] != self.dim:
            raise InputError(f"{name} has {q.shape[1]} features per point but the training set has {self.dim}")
        if q.dtype != np.uint8:
            safe_float_dtype(q)  # raises for magnitudes no float search handles exactly
        if q.dtype == self.dtype:
            return q
        if (q.dtype == np.uint8) != (self.dtype == np.uint8):
            raise InputTypeError(
                f"{name} is {q.dtype} but the training set is {self.dtype}; give both as uint8 pixels "
                f"or both as floats"
            )
        converted = q.astype(self.dtype)
        if not np.array_equal(converted.astype(q.dtype), q):
            raise InputTypeError(
                f"{name} is {q.dtype} and cannot be converted to the training set's {self.dtype} "
                f"without rounding; build the TrainSet from {q.dtype} data"
            )
        return converted


class TrainSet(TrainSetBase):
    """The training set of a 1-nearest-neighbour classifier, ready for :func:`nnmargin.certify`.

    Args:
        x_train: (M, ...) training points, flattened to (M, D). uint8 data is searched with exact
            integer arithmetic; float32 / float64 are taken as given (other integer dtypes become
            float64). numpy arrays, CPU torch tensors and array-likes are accepted.
        y_train: (M,) integer class labels (any integers; they need not be 0..C-1).

    The TrainSet keeps its own read-only copy of the data (``points``, ``labels``), so changing the
    caller's arrays later changes nothing here. The per-metric kernel layout (points sorted by
    class, padded, packed) is built on first use and kept; one TrainSet may be used by several
    threads at once.
    """

    def __init__(self, x_train, y_train):
        points = as_points(x_train, "x_train")
        if points.shape[0] == 0:
            raise InputError("the training set is empty (x_train has 0 points)")
        labels = as_labels(y_train, points.shape[0], "y_train")
        if points.dtype != np.uint8:
            points = points.astype(safe_float_dtype(points), copy=False)
        self.points = _private_copy(points, x_train)  # (M, D)
        self.labels = _private_copy(labels, y_train)  # (M,) int64
        self.input_shape = tuple(np.shape(x_train)[1:])
        # Dense class ids: the kernels compare small integers, the user's labels can be anything.
        self.classes, class_id = np.unique(self.labels, return_inverse=True)
        self._class_id = class_id.astype(np.int32)
        self._prepared: dict[str, _core.PreparedTrain] = {}
        self._float64: dict[float, Float64TrainSet] = {}
        self._lock = threading.Lock()  # guards the two caches above

    def __getstate__(self) -> dict:
        """Pickled as its data: the compiled layouts and float64 views are rebuilt where it lands."""
        return {"points": self.points, "labels": self.labels, "input_shape": self.input_shape}

    def __setstate__(self, state: dict) -> None:
        self.points, self.labels, self.input_shape = state["points"], state["labels"], state["input_shape"]
        self.points.flags.writeable = self.labels.flags.writeable = False
        self.classes, class_id = np.unique(self.labels, return_inverse=True)
        self._class_id = class_id.astype(np.int32)
        self._prepared, self._float64, self._lock = {}, {}, threading.Lock()

    @property
    def dim(self) -> int:
        return self.points.shape[1]

    @property
    def dtype(self) -> np.dtype:
        return self.points.dtype

    def prepared(self, metric: str = "l2", threads: int = 0) -> "_core.PreparedTrain":
        """The compiled layout for ``metric`` (built once on ``threads`` threads, 0: all cores, then
        cached; the layout does not depend on the thread count)."""
        metric = as_metric(metric)
        threads = as_num_threads(threads or None)  # 0 and None: all cores
        with self._lock:
            if metric not in self._prepared:
                self._prepared[metric] = _core.prepare_train(self.points, self._class_id, metric_code(metric), threads)
            return self._prepared[metric]

    def float64(self, unit: float = 1.0) -> Float64TrainSet:
        """The points in float64 times ``unit`` (e.g. 1/255 for uint8 pixels), grouped by class
        (built once per unit, then cached: 8 bytes per feature per point)."""
        with self._lock:
            if unit not in self._float64:
                self._float64[unit] = Float64TrainSet(self.points, self.labels, unit)
            return self._float64[unit]

    def search(self, queries, labels, skip, metric: str, device: str = "cpu", isa: str = "auto", threads: int = 0):
        return _core.search(self.prepared(metric, threads), queries, self.class_ids(labels), skip, device, isa, threads)

    def search_topk(self, queries, skip, k: int, metric: str, isa: str = "auto", threads: int = 0):
        return _core.search_topk(self.prepared(metric, threads), queries, k, skip, isa, threads)

    def bisector(self, queries, labels, pivot_rows, pivot_sq, norm: str, isa: str = "auto", threads: int = 0):
        return _core.bisector(self.prepared("l2", threads), self.prepared(DUAL_NORM[norm], threads), queries, self.class_ids(labels),
                              pivot_rows, pivot_sq, isa, threads)

    def rows(self, index: np.ndarray) -> np.ndarray:
        return self.points[index]

    def is_own_training_set(self, queries: np.ndarray, labels: np.ndarray) -> bool:
        """Whether (queries, labels) are exactly this set's points and labels, in order."""
        return (queries.shape == self.points.shape and np.array_equal(queries, self.points)
                and np.array_equal(labels, self.labels))

    def __repr__(self) -> str:
        return (
            f"TrainSet({self.n_points} points, {self.dim} features, {self.dtype}, "
            f"{len(self.classes)} classes)"
        )


def as_trainset(train) -> TrainSet:
    """``train`` as a training set: a TrainSet (local or distributed) itself, or a tuple (x_train, y_train)."""
    if isinstance(train, TrainSetBase):
        return train
    if isinstance(train, (tuple, list)) and len(train) == 2:
        return TrainSet(*train)
    raise InputTypeError("train must be a nnmargin.TrainSet or a tuple (x_train, y_train)")
