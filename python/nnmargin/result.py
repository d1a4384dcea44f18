"""The result of :func:`nnmargin.certify`: per-query nearest neighbours, predictions and radii."""
from __future__ import annotations

import csv
import dataclasses
import io
import json
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ._errors import InputError
from ._names import as_norm
from .bounds import margin_radius

_ARRAYS = ("labels", "pred", "correct", "dist_same", "idx_same", "dist_other", "idx_other", "radius")


@dataclass(frozen=True)
class CertifyResult:
    """Certified robustness of a 1-nearest-neighbour classifier on N queries.

    Distances are in the units of the input: for uint8 data the integer distance times ``scale``
    (default 1/255, i.e. pixel intensities on the [0, 1] scale robustness papers use for eps), for
    float data the float64 value of the distance between the given points. ``radius`` is in the
    norm of ``metric``.

    Attributes:
        labels: (N,) int64 true labels of the queries.
        pred: (N,) int64 label predicted by the 1NN classifier (ties: lowest training index).
        correct: (N,) bool, ``pred == labels``.
        dist_same: (N,) float64 distance to the nearest training point of the query's own class
            (inf when that class has no training point).
        idx_same: (N,) int64 index of that point in the training set (-1 when none).
        dist_other: (N,) float64 distance to the nearest training point of any other class.
        idx_other: (N,) int64 its training index (-1 when there is no other class).
        radius: (N,) float64 certified radius: no perturbation of norm < radius changes the 1NN
            prediction. max(0, (dist_other - dist_same) / 2), rounded down so float rounding can
            never overstate it; 0 where the query is misclassified.
        metric: "l2", "l1" or "linf".
        scale: units per integer step for uint8 input, None for float input.
        n_train: number of training points.
        seconds: wall time of the nearest-neighbour search.
        leave_one_out: whether query i ignored training point i.
        bound: "margin", "bisector" or "exact": how ``radius`` was certified.
        norm: the perturbation norm of ``radius``.
        target_index: (N,) int64 other-class training point whose cell is closest (bisector:
            the point attaining the bound; exact: the cell the minimal perturbation enters), -1
            when not computed.
        adversarial: (N, D) float64 minimal adversarial examples for bound="exact" (in the data's
            units; verified misclassified by an exact 1NN), nan rows where none; else None.
        info: run details (device, timings, counts of programs solved, ...).
        n_features: D, the number of features per point.
        distance_rel_err: how far (relative) a reported distance may be from the real-number one;
            what :meth:`margin_radius` shrinks by to stay sound.
        radius_upper: (N,) float64 for bound="exact": the upper end of the proven interval
            [radius, radius_upper] around the exact robust radius, the norm of a verified
            adversarial example (exact rational check), rounded up; nan where no example was
            verified, 0 where the query is misclassified. None for the other bounds.
        k: voting neighbours of the classifier (1: the 1NN; see :mod:`nnmargin.knn` for k > 1,
            where ``radius`` is the relaxation's and ``pred`` the plurality vote).
    """

    labels: np.ndarray
    pred: np.ndarray
    correct: np.ndarray
    dist_same: np.ndarray
    idx_same: np.ndarray
    dist_other: np.ndarray
    idx_other: np.ndarray
    radius: np.ndarray
    metric: str = "l2"
    scale: float | None = None
    n_train: int = 0
    seconds: float = 0.0
    leave_one_out: bool = False
    bound: str = "margin"
    norm: str = "l2"
    target_index: np.ndarray | None = None
    adversarial: np.ndarray | None = None
    info: dict = field(default_factory=dict)
    n_features: int = 0
    distance_rel_err: float = 0.0
    radius_upper: np.ndarray | None = None
    k: int = 1

    # An exact interval counts as closed when its relative gap is at most this.
    GAP_CLOSED = 1e-6
    # Counters in ``info`` that are not additive across chunks.
    _NOT_SUMMED = ("pivots",)

    @classmethod
    def concatenate(cls, parts: Sequence["CertifyResult"]) -> "CertifyResult":
        """One result for consecutive query chunks certified against one training set with the same
        options: per-query arrays concatenated, search times and numeric counters in ``info`` added."""
        if not parts:
            raise ValueError("concatenate needs at least one CertifyResult")
        first = parts[0]
        if len(parts) == 1:
            return first
        arrays = {
            f.name: np.concatenate([getattr(p, f.name) for p in parts])
            for f in dataclasses.fields(first)
            if isinstance(getattr(first, f.name), np.ndarray)
        }
        info = dict(first.info)
        for key, value in first.info.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in cls._NOT_SUMMED:
                info[key] = sum(p.info.get(key, 0) for p in parts)
        return dataclasses.replace(first, **arrays, seconds=sum(p.seconds for p in parts), info=info)

    def margin_radius(self, norm: str | None = None) -> np.ndarray:
        """(N,) the margin bound of these queries in perturbation norm ``norm`` (default: this
        result's norm), from the stored distances, with no new search; rounded down, 0 where the
        query is misclassified. The 1NN's bound: for a k-NN result (k > 1) the certificate is
        ``radius`` itself, and this raises InputError."""
        if self.k > 1:
            raise InputError(f"margin_radius() is the 1NN's margin bound; this result certifies the {self.k}-NN, "
                             f"whose certified radius is `radius`")
        norm = self.norm if norm is None else as_norm(norm)
        return margin_radius(self.dist_same, self.dist_other, self.correct, self.metric, norm,
                             self.n_features, self.distance_rel_err)

    def relative_gap(self) -> np.ndarray | None:
        """(N,) (radius_upper - radius) / radius_upper for bound="exact" (0 where both are 0 or inf,
        nan where no example was verified); None for the other bounds."""
        if self.radius_upper is None:
            return None
        hi, lo = self.radius_upper, self.radius
        with np.errstate(divide="ignore", invalid="ignore"):
            gap = (hi - lo) / hi
        return np.where((hi == lo) & ~np.isnan(hi), 0.0, gap)

    def gap_summary(self) -> dict:
        """Gap statistics of the exact intervals over the correctly classified queries with a finite
        radius: median / max relative gap, points not closed (gap > GAP_CLOSED or no verified
        example) and points without a verified example. Empty for the other bounds."""
        gap = self.relative_gap()
        if gap is None:
            return {}
        sel = self.correct & np.isfinite(self.radius)
        g = gap[sel]
        found = g[~np.isnan(g)]
        return {"exact_points": int(sel.sum()),
                "gap_median": float(np.median(found)) if found.size else float("nan"),
                "gap_max": float(found.max()) if found.size else float("nan"),
                "not_closed": int(np.sum(~(g <= self.GAP_CLOSED))),
                "no_example": int(np.isnan(g).sum())}

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def accuracy(self) -> float:
        """Fraction of queries the classifier gets right (nan for no queries)."""
        return float(self.correct.mean()) if len(self) else float("nan")

    def robust_accuracy(self, eps):
        """Certified robust accuracy at perturbation size ``eps`` (scalar or array, in ``metric``'s norm).

        A query counts when it is classified correctly and no perturbation of norm <= eps can change
        the prediction, i.e. radius > eps; at eps = 0 this is the clean accuracy.
        """
        eps_arr = np.asarray(eps, dtype=np.float64)
        if np.any(~np.isfinite(eps_arr)) or np.any(eps_arr < 0):
            raise InputError(f"eps must be finite and >= 0, got {eps!r}")
        if not len(self):
            return np.full(eps_arr.shape, np.nan) if eps_arr.ndim else float("nan")
        robust = self.correct[None, :] & (
            (self.radius[None, :] > eps_arr.reshape(-1, 1)) | (eps_arr.reshape(-1, 1) == 0)
        )
        values = robust.mean(axis=1)
        return float(values[0]) if eps_arr.ndim == 0 else values.reshape(eps_arr.shape)

    def summary(self, eps=()) -> str:
        """A readable table: accuracy, certified robust accuracy at each eps, timing."""
        unit = f" (uint8 x {self.scale:.6g})" if self.scale is not None else ""
        lines = [
            f"{'1NN' if self.k == 1 else f'{self.k}-NN'} certificates: {len(self)} queries, {self.n_train} training points, metric {self.metric}{unit}"
            + (", leave-one-out" if self.leave_one_out else ""),
            f"  bound {self.bound}, radius in the {self.norm} norm",
            f"  clean accuracy              {100 * self.accuracy:7.2f} %",
        ]
        for e in np.atleast_1d(np.asarray(eps, dtype=np.float64)):
            lines.append(f"  certified robust acc. eps={e:<8.4g}{100 * self.robust_accuracy(e):7.2f} %")
        ok = self.radius[self.correct]
        if ok.size:
            lines.append(f"  median radius (correct)     {float(np.median(ok)):.4g}")
        gaps = self.gap_summary()
        if gaps:
            lines.append(f"  exact interval [radius, radius_upper]: relative gap median {gaps['gap_median']:.2g}, "
                         f"max {gaps['gap_max']:.2g}")
            lines.append(f"  not closed (gap > {self.GAP_CLOSED:g}): {gaps['not_closed']} of {gaps['exact_points']} "
                         f"points ({gaps['no_example']} without a verified example)")
        lines.append(f"  search time                 {self.seconds:.3f} s")
        return "\n".join(lines)

    def to_dict(self, arrays: bool = True, eps=()) -> dict:
        """Plain-Python dict (JSON-ready); ``arrays=False`` keeps only the summary numbers."""
        eps_list = [float(e) for e in np.atleast_1d(np.asarray(eps, dtype=np.float64))]
        out = {
            "metric": self.metric,
            "scale": self.scale,
            "n_queries": len(self),
            "n_train": self.n_train,
            "leave_one_out": self.leave_one_out,
            "bound": self.bound,
            "norm": self.norm,
            "k": self.k,
            "accuracy": self.accuracy,
            "robust_accuracy": {str(e): self.robust_accuracy(e) for e in eps_list},
            "seconds": self.seconds,
            **self.info,
            **self.gap_summary(),
        }
        if arrays:
            if self.target_index is not None:
                out["target_index"] = self.target_index.tolist()
            if self.radius_upper is not None:
                out["radius_upper"] = [None if not np.isfinite(v) else v for v in self.radius_upper.tolist()]
            for name in _ARRAYS:
                values = getattr(self, name)
                # JSON has no inf: an absent neighbour is written as null.
                out[name] = [None if isinstance(v, float) and not np.isfinite(v) else v for v in values.tolist()]
        return out

    def to_json(self, path=None, arrays: bool = True, eps=()) -> str:
        """JSON text of :meth:`to_dict`; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(arrays=arrays, eps=eps), indent=1)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        return text

    def to_csv(self, path=None) -> str:
        """One row per query (index, label, pred, correct, dist_same, idx_same, dist_other, idx_other,
        radius, and radius_upper for bound="exact"); also written to ``path`` when given."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        names = _ARRAYS + (("radius_upper",) if self.radius_upper is not None else ())
        writer.writerow(("index",) + names)
        columns = [getattr(self, name).tolist() for name in names]
        for i, row in enumerate(zip(*columns)):
            writer.writerow((i,) + tuple(repr(v) if isinstance(v, float) else v for v in row))
        text = buf.getvalue()
        if path is not None:
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(text)
        return text

    def __repr__(self) -> str:
        return (
            f"CertifyResult({len(self)} queries, metric={self.metric!r}, accuracy={self.accuracy:.4f}, "
            f"median radius={float(np.median(self.radius)) if len(self) else float('nan'):.4g})"
        )
