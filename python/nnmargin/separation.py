"""r-separation of a dataset (Yang et al. 2020, "A Closer Look at Accuracy vs. Robustness"): how far
each point lies from the nearest training point of another class.

A dataset is r-separated when points of different classes are at least 2r apart; then a classifier
exists that is both accurate and robust to every perturbation of norm < r. Yang et al.'s Table 1
reports, in l∞ on the [0, 1] pixel scale, the minimum of these distances (2r) over the training set
(train-train) and over the test set against the training set (test-train).

>>> sep = nnmargin.separation(x_train, y_train, metric="linf")                     # doctest: +SKIP
>>> sep.min, sep.radius, sep.fraction_beyond                                        # doctest: +SKIP
>>> nnmargin.separation(x_train, y_train, (x_test, y_test), metric="linf").summary()  # doctest: +SKIP
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from ._errors import InputError
from ._names import DEFAULT_UINT8_SCALE, as_metric
from .certify import certify
from .trainset import TrainSet

# Perturbation sizes whose 2 * eps the distances are compared with, per metric, on the [0, 1] pixel
# scale: l∞ 8/255 (the CIFAR-10 standard), 0.1 and 0.3 (the MNIST ones; Yang et al.'s Figure 2
# marks 2 * 0.1 for MNIST and 2 * 0.031 for CIFAR-10); l2 0.5 (CIFAR-10), 1 and 2 (MNIST); l1 2, 5
# and 10 (10 is the usual MNIST l1 budget).
DEFAULT_EPS: Dict[str, Tuple[float, ...]] = {
    "linf": (8 * DEFAULT_UINT8_SCALE, 0.1, 0.3),
    "l2": (0.5, 1.0, 2.0),
    "l1": (2.0, 5.0, 10.0),
}

TRAIN_TRAIN = "train-train"
TEST_TRAIN = "test-train"
_STATISTICS = ("min", "p1", "median", "mean", "radius")
_CSV_COLUMNS = ("label", "distance", "nearest_index", "nearest_label")


def _quantile(ordered: np.ndarray, q: float) -> float:
    """The q-quantile of sorted values, interpolated linearly between order statistics (numpy's
    default), but inf where the neighbours are inf (numpy gives nan for inf - inf)."""
    position = q * (len(ordered) - 1)
    lo = int(math.floor(position))
    a, b = float(ordered[lo]), float(ordered[min(lo + 1, len(ordered) - 1)])
    return a if a == b or position == lo else a + (b - a) * (position - lo)


@dataclass(frozen=True)
class SeparationResult:
    """Distances of N points to their nearest other-class training point, with their statistics.

    Distances are in ``metric``'s norm and in the units of the input: for uint8 data the exact
    integer distance times ``scale`` (default 1/255, the [0, 1] pixel scale), for float data the
    float64 distance between the given points. A point whose class is the only one in the training
    set has distance inf (written as null in JSON).

    Attributes:
        kind: "train-train" (training points against the other-class training points) or
            "test-train" (query points against the training set).
        distances: (N,) float64 distance of each point to the nearest training point of another class.
        nearest_index: (N,) int64 index of that training point (-1 when none; ties: lowest index).
        nearest_label: (N,) int64 its label (-1 when none).
        labels: (N,) int64 labels of the points.
        metric: "l2", "l1" or "linf".
        scale: units per integer step for uint8 input, None for float input.
        eps: the perturbation sizes of :attr:`fraction_beyond`.
        n_train: number of training points.
        seconds: wall time of the nearest-neighbour search.
    """

    kind: str
    distances: np.ndarray
    nearest_index: np.ndarray
    nearest_label: np.ndarray
    labels: np.ndarray
    metric: str
    scale: Optional[float]
    eps: Tuple[float, ...]
    n_train: int
    seconds: float

    def __len__(self) -> int:
        return int(self.distances.shape[0])

    def _sorted(self) -> np.ndarray:
        return np.sort(self.distances)

    @property
    def min(self) -> float:
        """The smallest distance: 2r, the separation of the points from the other classes."""
        return float(self.distances.min())

    @property
    def p1(self) -> float:
        """The 1st percentile of the distances."""
        return _quantile(self._sorted(), 0.01)

    @property
    def median(self) -> float:
        return _quantile(self._sorted(), 0.5)

    @property
    def mean(self) -> float:
        return float(self.distances.mean())

    @property
    def radius(self) -> float:
        """The separation radius r = min / 2: the points are r-separated from the other classes."""
        return self.min / 2

    @property
    def fraction_beyond(self) -> Dict[float, float]:
        """{eps: fraction of the points farther than 2 * eps from every other-class training point},
        i.e. whose eps-ball cannot meet the eps-ball of any training point of another class."""
        return {e: float((self.distances > 2 * e).mean()) for e in self.eps}

    def statistics(self) -> Dict[str, float]:
        """{"min", "p1", "median", "mean", "radius"}: the summary numbers."""
        return {name: getattr(self, name) for name in _STATISTICS}

    def summary(self) -> str:
        """A readable table of the statistics and of :attr:`fraction_beyond`."""
        unit = f", uint8 x {self.scale:.6g}" if self.scale is not None else ""
        lines = [f"r-separation {self.kind}: {len(self)} points, {self.n_train} training points, "
                 f"metric {self.metric}{unit}"]
        names = {"min": "min (2r)", "p1": "1st percentile", "radius": "radius r = min/2"}
        lines += [f"  {names.get(k, k):<20}{v:.4f}" for k, v in self.statistics().items()]
        lines += [f"  {f'farther than 2*{e:.4g}':<20}{100 * f:.2f} %" for e, f in self.fraction_beyond.items()]
        lines.append(f"  search time         {self.seconds:.3f} s")
        return "\n".join(lines)

    def to_dict(self, arrays: bool = True) -> dict:
        """Plain-Python dict (JSON-ready: inf becomes None); ``arrays=False`` keeps only the summary."""
        out = {
            "kind": self.kind,
            "metric": self.metric,
            "scale": self.scale,
            "n_points": len(self),
            "n_train": self.n_train,
            **{k: _json_number(v) for k, v in self.statistics().items()},
            "fraction_beyond_2eps": {repr(e): f for e, f in self.fraction_beyond.items()},
            "seconds": self.seconds,
        }
        if arrays:
            out["labels"] = self.labels.tolist()
            out["distances"] = [_json_number(v) for v in self.distances.tolist()]
            out["nearest_index"] = self.nearest_index.tolist()
            out["nearest_label"] = self.nearest_label.tolist()
        return out

    def to_json(self, path=None, arrays: bool = True) -> str:
        """JSON text of :meth:`to_dict`; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(arrays=arrays), indent=1)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    def to_csv(self, path=None) -> str:
        """One row per point (index, label, distance, nearest_index, nearest_label); also written to
        ``path`` when given. Distances are written with repr (round-trip exact; inf as 'inf')."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(("index",) + _CSV_COLUMNS)
        columns = (self.labels.tolist(), [repr(v) for v in self.distances.tolist()],
                   self.nearest_index.tolist(), self.nearest_label.tolist())
        for i, row in enumerate(zip(*columns)):
            writer.writerow((i,) + row)
        if path is not None:
            Path(path).write_text(buf.getvalue(), encoding="utf-8", newline="")
        return buf.getvalue()

    def __repr__(self) -> str:
        return (f"SeparationResult({self.kind}, {len(self)} points, metric={self.metric!r}, "
                f"min={self.min:.4g}, radius={self.radius:.4g})")


def _json_number(value: float):
    return value if math.isfinite(value) else None


def _as_eps(eps, metric: str) -> Tuple[float, ...]:
    if eps is None:
        return DEFAULT_EPS[metric]
    try:
        values = tuple(float(e) for e in np.atleast_1d(np.asarray(eps, dtype=np.float64)))
    except (TypeError, ValueError):
        raise InputError(f"eps must be a number or a sequence of numbers, got {eps!r}") from None
    if not all(math.isfinite(e) and e >= 0 for e in values):
        raise InputError(f"eps must be finite and >= 0, got {eps!r}")
    return values


def _as_queries(queries):
    if isinstance(queries, (tuple, list)) and len(queries) == 2:
        return queries
    raise InputError("queries must be None (train-train) or a pair (x_test, y_test) (test-train), "
                     f"got {type(queries).__name__}")


def separation(x_train, y_train, queries=None, *, metric: str = "linf", scale: float | None = None, eps=None,
               num_threads: int | None = None, batch_size: int | None = None,
               progress: bool = False) -> SeparationResult:
    """Distance of each point to the nearest training point of another class, and its statistics.

    Args:
        x_train: (M, ...) training points: uint8, float32 or float64 (numpy, CPU torch, array-like).
        y_train: (M,) integer labels.
        queries: None for train-train (each training point against the training points of the
            other classes), or ``(x_test, y_test)`` for test-train.
        metric: "linf" (default, Yang et al.'s), "l2" or "l1".
        scale: units of one uint8 step (default 1/255: the [0, 1] pixel scale); uint8 input only.
        eps: perturbation sizes for :attr:`SeparationResult.fraction_beyond` (default
            :data:`DEFAULT_EPS` of the metric: l∞ 8/255, 0.1, 0.3; l2 0.5, 1, 2; l1 2, 5, 10).
        num_threads: CPU threads (default: all cores).
        batch_size: search the points in chunks of this many (default: all at once, or a few
            thousand with ``progress``); results do not depend on it.
        progress: show a progress bar (tqdm).

    Returns:
        A :class:`SeparationResult`. The distances are ``certify(...).dist_other``: exact for uint8
        (integer arithmetic), the float64 distance of the exact nearest point for float input.

    Train-train needs no leave-one-out: a training point's own class is its own, so the point
    itself is never an other-class candidate; leaving it out would change only the same-class
    distance, which separation does not use. A copy of a point filed under another class counts
    (distance 0), as it should: no classifier separates the two.
    """
    metric = as_metric(metric)
    eps = _as_eps(eps, metric)
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
                                   or batch_size < 1):
        raise InputError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    trainset = TrainSet(x_train, y_train)
    if queries is None:
        kind, (x, y) = TRAIN_TRAIN, (x_train, y_train)
    else:
        kind, (x, y) = TEST_TRAIN, _as_queries(queries)
    cert = certify(x, y, trainset, metric=metric, scale=scale, num_threads=num_threads, batch_size=batch_size,
                   progress=progress)
    if len(cert) == 0:
        raise InputError(f"no points to measure: the {'training set' if queries is None else 'queries'} "
                         "are empty")
    nearest_label = np.where(cert.idx_other >= 0, trainset.labels[np.maximum(cert.idx_other, 0)], -1)
    return SeparationResult(kind=kind, distances=cert.dist_other, nearest_index=cert.idx_other,
                            nearest_label=nearest_label.astype(np.int64), labels=cert.labels, metric=metric,
                            scale=cert.scale, eps=eps, n_train=trainset.n_points, seconds=cert.seconds)
