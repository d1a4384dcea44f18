"""nnmargin's vocabulary: the names users pass (metrics, norms, bounds, devices), their aliases and
the constants every module shares. Defined here once; the command line builds its choices from it.

The compiled core has its own copy of nothing: metric codes come from ``_core.Metric`` and the
largest pivot count from ``_core.MAX_PIVOTS``, so Python and C++ cannot disagree.
"""
from __future__ import annotations

import math

from . import _core
from ._errors import InputError

METRICS = ("l2", "l1", "linf")      # distances of the 1NN classifier
NORMS = METRICS                     # perturbation norms of a certified radius
# Norms the network side of the comparison trains (TRADES) and attacks (APGD) in.
ATTACK_NORMS = ("linf", "l2")
BOUNDS = ("margin", "bisector", "exact")
DEVICES = ("cpu", "cuda", "auto")

# Spellings users write for the three norms (lower case, '_' and spaces dropped, '∞' as 'inf').
_ALIASES = {
    "l2": "l2", "2": "l2", "euclidean": "l2",
    "l1": "l1", "1": "l1", "manhattan": "l1", "cityblock": "l1",
    "linf": "linf", "inf": "linf", "max": "linf", "chebyshev": "linf",
}

DUAL_NORM = {"l2": "l2", "linf": "l1", "l1": "linf"}       # ||.||_* of each norm
P_OF_NORM = {"l1": 1.0, "l2": 2.0, "linf": math.inf}      # the p of l_p
NUMPY_ORD = {"l1": 1, "l2": 2, "linf": math.inf}          # np.linalg.norm's ord
NORM_TEXT = {"l1": "l1", "l2": "l2", "linf": "l∞"}        # how tables and figures write each norm

UNIT_ROUNDOFF = 2.0**-53      # float64 unit roundoff u: one rounding moves a value by <= u relative
DEFAULT_UINT8_SCALE = 1.0 / 255.0   # one uint8 step on the [0, 1] pixel scale of robustness papers
MAX_PIVOTS = int(_core.MAX_PIVOTS)  # same-class pivots of the bisector bound, at most
# device="auto" stays on the CPU until the CUDA backend has passed a run on a real GPU (it has only
# been compiled so far); device="cuda" still selects it explicitly.
AUTO_USES_CUDA = False
# Queries per chunk when certify shows progress without a batch size: large enough to keep every
# core busy, small enough that the bar moves every few seconds (exact radii take ~0.1 s per query).
PROGRESS_BATCH = {"margin": 2000, "bisector": 2000, "exact": 32}
# k-NN: the largest k accepted, and how many (query, class, neighbour) entries a chunk of queries
# may hold at once (the per-class lists take ~16 bytes an entry, a few times over): ~0.5 GB.
MAX_K = 4096
KNN_BATCH_ENTRIES = 1 << 23


def _canonical(value, kind: str, choices) -> str:
    key = str(value).lower().replace("_", "").replace(" ", "").replace("∞", "inf")
    name = _ALIASES.get(key)
    if name is None or name not in choices:
        raise InputError(f"{kind} must be one of {tuple(choices)}, got {value!r}")
    return name


def as_metric(metric) -> str:
    """The canonical metric name ("l2", "l1" or "linf") for a name or alias."""
    return _canonical(metric, "metric", METRICS)


def as_norm(norm) -> str:
    """The canonical perturbation-norm name ("l2", "l1" or "linf") for a name or alias."""
    return _canonical(norm, "norm", NORMS)


def as_choice(value, kind: str, choices):
    """``value`` if it is one of ``choices``, else an InputError naming ``kind``."""
    if value not in choices:
        raise InputError(f"{kind} must be one of {tuple(choices)}, got {value!r}")
    return value


def metric_code(metric: str):
    """The compiled core's ``Metric`` value for a canonical metric name."""
    return _core.Metric.__members__[metric]
