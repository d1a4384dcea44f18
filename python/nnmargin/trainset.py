"""Training data prepared once (layout, norms, class grouping) and searched many times."""
from __future__ import annotations

import numpy as np

from . import _core
from ._names import as_metric, metric_code
from ._validate import as_labels, as_points, safe_float_dtype



class TrainSet:
    """The training set of a 1-nearest-neighbour classifier, ready for :func:`nnmargin.certify`.

    Args:
        x_train: (M, ...) training points, flattened to (M, D). uint8 data is searched with exact
            integer arithmetic; float32 / float64 are taken as given (other integer dtypes become
            float64). numpy arrays and CPU torch tensors are read without a copy where possible.
        y_train: (M,) integer class labels (any integers; they need not be 0..C-1).

    The per-metric kernel layout (points sorted by class, padded, packed) is built on first use and
    kept, so certifying several query sets against one TrainSet prepares the data once.
    """

    def __init__(self, x_train, y_train):
        points = as_points(x_train, "x_train")
        if points.shape[0] == 0:
            raise ValueError("the training set is empty (x_train has 0 points)")
        self.labels = as_labels(y_train, points.shape[0], "y_train")
        if points.dtype != np.uint8:
            points = points.astype(safe_float_dtype(points), copy=False)
        self.points = points  # (M, D)
        self.input_shape = tuple(np.shape(x_train)[1:])
        # Dense class ids: the kernels compare small integers, the user's labels can be anything.
        self.classes, class_id = np.unique(self.labels, return_inverse=True)
        self._class_id = class_id.astype(np.int32)
        self._prepared: dict[str, _core.PreparedTrain] = {}
        self._float64: dict[float, object] = {}

    @property
    def n_points(self) -> int:
        return self.points.shape[0]

    @property
    def dim(self) -> int:
        return self.points.shape[1]

    @property
    def dtype(self) -> np.dtype:
        return self.points.dtype

    def prepared(self, metric: str = "l2") -> "_core.PreparedTrain":
        """The compiled layout for ``metric`` (built once, then cached)."""
        metric = as_metric(metric)
        if metric not in self._prepared:
            self._prepared[metric] = _core.prepare_train(self.points, self._class_id, metric_code(metric))
        return self._prepared[metric]

    def float64_problem(self, unit: float):
        """The training points in float64 data units, grouped by class, for the exact solver and
        the attack (built once per unit, then cached: ~8 bytes per feature per point)."""
        if unit not in self._float64:
            from .exact import _Problem

            self._float64[unit] = _Problem(self.points, self.labels, unit)
        return self._float64[unit]

    def class_ids(self, labels: np.ndarray) -> np.ndarray:
        """(N,) int32 dense ids of ``labels``; -1 for a label no training point has."""
        pos = np.searchsorted(self.classes, labels)
        pos = np.minimum(pos, len(self.classes) - 1)
        return np.where(self.classes[pos] == labels, pos, -1).astype(np.int32)

    def queries_like(self, x, name: str = "x") -> np.ndarray:
        """Validate queries and bring them to this set's (N, D) layout and dtype, exactly or not at all."""
        q = as_points(x, name)
        if q.shape[1] != self.dim:
            raise ValueError(f"{name} has {q.shape[1]} features per point but the training set has {self.dim}")
        if q.dtype != np.uint8:
            safe_float_dtype(q)  # raises for magnitudes no float search handles exactly
        if q.dtype == self.dtype:
            return q
        if (q.dtype == np.uint8) != (self.dtype == np.uint8):
            raise TypeError(
                f"{name} is {q.dtype} but the training set is {self.dtype}; give both as uint8 pixels "
                f"or both as floats"
            )
        converted = q.astype(self.dtype)
        if not np.array_equal(converted.astype(q.dtype), q):
            raise TypeError(
                f"{name} is {q.dtype} and cannot be converted to the training set's {self.dtype} "
                f"without rounding; build the TrainSet from {q.dtype} data"
            )
        return converted

    def __repr__(self) -> str:
        return (
            f"TrainSet({self.n_points} points, {self.dim} features, {self.dtype}, "
            f"{len(self.classes)} classes)"
        )
