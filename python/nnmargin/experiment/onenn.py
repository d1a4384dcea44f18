"""Robust accuracy of the l2 1-nearest-neighbour classifier: certified, never attacked.

The classifier is always the 1NN in the l2 metric (the seed paper's); what varies is the norm of
the perturbation and how its robust radius is bounded. This module is the one switch:

* ``bound="margin"``: the half margin r = (d_other - d_same) / 2 of :func:`nnmargin.certify`
  (metric "l2") is a sound l2 radius. For l∞, ``r / sqrt(D)`` is sound because
  ||v||_2 <= sqrt(D) ||v||_∞ for v in R^D; it is loose (a perturbation spread over all D pixels is
  the worst case), so l∞ numbers under this bound understate the 1NN's robustness.
* ``bound="bisector"``: distance to the nearest bisector half-space (a tighter lower bound).
* ``bound="exact"``: the minimal perturbation that changes the prediction (QP / LP per Voronoi
  cell), with perturbed images kept in the [0, 1] pixel box -- the same threat model as the
  attacks on the networks, which also clip to [0, 1].

Every bound is computed by ``nnmargin.certify(..., bound=, norm=)``; this module only picks the
options and counts.

Robust accuracy at eps counts the points classified correctly with radius > eps (certify's own
convention). Results are certified lower bounds, or exact when the bound is "exact".
"""
from __future__ import annotations

import dataclasses
import time
from typing import Optional, Sequence

import numpy as np

from .._errors import InputError
from .._names import ATTACK_NORMS
from ..certify import certify
from ..trainset import TrainSet


def bound_kind(bound: str) -> str:
    """What the robust numbers of ``bound`` are: "exact" or "certified" (a lower bound)."""
    return "exact" if bound == "exact" else "certified"


@dataclasses.dataclass
class OneNNResult:
    """Robust accuracy of the l2-1NN on one split in one norm.

    Attributes:
        norm: "linf" or "l2"; bound: how ``radius`` was obtained; kind: "certified" or "exact".
        eps: (K,) perturbation sizes ([0, 1] pixel scale).
        correct: (N,) bool, the 1NN classifies the clean point correctly.
        radius: (N,) float64 robust radius in ``norm`` (0 where not correct).
        robust_correct: (K, N) bool, ``correct & (radius > eps[k])``.
        seconds: wall time (nearest-neighbour search and bound).
    """

    norm: str
    bound: str
    kind: str
    eps: np.ndarray
    correct: np.ndarray
    radius: np.ndarray
    robust_correct: np.ndarray
    seconds: float

    @property
    def clean_acc(self) -> float:
        return float(self.correct.mean()) if self.correct.size else float("nan")

    @property
    def robust_acc(self) -> np.ndarray:
        return self.robust_correct.mean(axis=1) if self.correct.size else np.full(len(self.eps), np.nan)


def split_arrays(pair, split: str, eval_limit: Optional[int] = None):
    """(x, y) of ``split`` ("train" or "test") of a :class:`~nnmargin.datasets.BinaryPair`, first
    ``eval_limit`` points."""
    if split not in ("train", "test"):
        raise InputError(f"split must be 'train' or 'test', got {split!r}")
    x, y = (pair.x_train, pair.y_train) if split == "train" else (pair.x_test, pair.y_test)
    return x[:eval_limit], y[:eval_limit]


def one_nn_robust_accuracy(pair, split: str, norm: str, eps_list: Sequence[float], bound: str = "margin",
                           *, eval_limit: Optional[int] = None, trainset=None, k: int = 1) -> OneNNResult:
    """Robust accuracy of the l2-1NN trained on ``pair.x_train`` for the points of ``split``.

    Args:
        pair: a :class:`~nnmargin.datasets.BinaryPair` (uint8 images; distances on [0, 1] scale).
        split: "train" (each training point is its own neighbour: the paper's convention, under
            which the training points are robust up to half their distance to the other class) or
            "test".
        norm: perturbation norm, "l2" or "linf". eps_list: (K,) sizes in that norm.
        bound: "margin" or a bound :func:`nnmargin.certify` accepts (see the module docstring).
        eval_limit: evaluate only the first ``eval_limit`` points of the split.
        trainset: a prepared :class:`nnmargin.TrainSet` of ``pair``'s training split, to reuse.
        k: voting neighbours (k > 1: the k-NN, certified by the relaxation; bound must be "margin").
    """
    if norm not in ATTACK_NORMS:
        raise InputError(f"norm must be one of {', '.join(ATTACK_NORMS)}, got {norm!r}")
    start = time.perf_counter()
    x, y = split_arrays(pair, split, eval_limit)
    train = trainset if trainset is not None else TrainSet(pair.x_train, pair.y_train)
    # The pixel box matters only to the exact bound; the others ignore it (and stay sound).
    box = {"box": True} if bound == "exact" else {}
    cert = certify(x, y, train, metric="l2", bound=bound, norm=norm, k=k, **box)
    eps = np.asarray([float(e) for e in eps_list], dtype=np.float64)
    robust = cert.correct[None, :] & (cert.radius[None, :] > eps[:, None])
    return OneNNResult(norm, bound, bound_kind(bound), eps, cert.correct.copy(), np.asarray(cert.radius, np.float64),
                       robust, time.perf_counter() - start)
