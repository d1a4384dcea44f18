"""``certify``: exact nearest same-class / other-class neighbours and certified radii of the 1NN."""
from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np

from . import _core
from ._validate import as_labels, as_metric, as_num_threads
from .bounds import as_norm, bisector_bound, norm_factor
from .result import CertifyResult
from .trainset import TrainSet

_DEVICES = ("auto", "cpu", "cuda")
BOUNDS = ("margin", "bisector", "exact")
_U = 2.0**-53  # float64 unit roundoff


class RawNeighbours(NamedTuple):
    """Kernel output, each (n,): exact values (squared for l2; uint8 in integer steps) and indices."""

    value_same: np.ndarray
    idx_same: np.ndarray
    value_other: np.ndarray
    idx_other: np.ndarray


def _as_trainset(train) -> TrainSet:
    if isinstance(train, TrainSet):
        return train
    if isinstance(train, (tuple, list)) and len(train) == 2:
        return TrainSet(*train)
    raise TypeError("train must be a nnmargin.TrainSet or a tuple (x_train, y_train)")


def _resolve_device(device: str, bound: str) -> str:
    if device not in _DEVICES:
        raise ValueError(f"device must be one of {_DEVICES}, got {device!r}")
    if device == "auto":  # the bisector and exact bounds run on the CPU in this version
        return "cuda" if _core.cuda_device_count() > 0 and bound == "margin" else "cpu"
    if device == "cuda" and _core.cuda_device_count() == 0:
        why = "no CUDA device was found" if _core.built_with_cuda() else "nnmargin was built without CUDA"
        raise RuntimeError(f"device='cuda' requested but {why}")
    return device


def sound_half_margin(dist_same: np.ndarray, dist_other: np.ndarray, rel_err: float) -> np.ndarray:
    """max(0, (dist_other - dist_same) / 2), rounded down.

    Each distance may be off from the real-number distance by a relative ``rel_err``; shrinking both
    by it, then the difference by one more rounding, gives a value never above the true half margin.
    """
    with np.errstate(invalid="ignore"):  # inf - inf where both classes are empty
        half = (dist_other * (1 - rel_err) - dist_same * (1 + rel_err)) * (0.5 * (1 - 4 * _U))
    return np.where(half > 0, half, 0.0)


def certify(
    x,
    y,
    train,
    *,
    metric: str = "l2",
    bound: str = "margin",
    norm: str | None = None,
    pivots: int = 1,
    scale: float | None = None,
    leave_one_out: bool = False,
    num_threads: int | None = None,
    device: str = "cpu",
    isa: str = "auto",
    box=None,
) -> CertifyResult:
    """Certify the 1-nearest-neighbour classifier on queries ``(x, y)``.

    For each query, finds in one fused pass the nearest training point of its own class and of any
    other class. With margin m = dist_other - dist_same > 0, no perturbation of norm < m/2 (in the
    metric's own norm) can change the 1NN prediction, by the triangle inequality.

    Args:
        x: (N, ...) queries, flattened to (N, D); numpy array, CPU torch tensor or array-like.
        y: (N,) integer labels of the queries.
        train: a :class:`TrainSet`, or a tuple ``(x_train, y_train)`` with x_train (M, ...) and
            y_train (M,). Reuse a TrainSet to prepare the training data once for many calls.
        metric: "l2" (default), "l1" or "linf": the distance of the 1NN classifier.
        bound: how ``radius`` is certified. "margin": (dist_other - dist_same) / 2, converted to
            ``norm`` (valid for every metric). "bisector" (metric "l2" only): the distance to the
            nearest bisector half-space of a same-class pivot and an other-class point, in ``norm``
            (its dual norm is used), never below the margin bound; see :mod:`nnmargin.bounds`.
            "exact" (metric "l2" only): the minimal perturbation that changes the prediction, from
            a QP (l2) or LP (linf, l1) per screened Voronoi cell (needs scipy); ``adversarial``
            then holds the minimal adversarial examples; see :mod:`nnmargin.exact`.
        norm: the perturbation norm of ``radius``: "l2", "l1" or "linf" (default: the metric's).
        pivots: same-class pivots per query for the bisector bound (1 to 3; more is tighter, slower).
        scale: units of one uint8 step (default 1/255: distances on the [0, 1] pixel scale). Only
            for uint8 input; float input is taken as given.
        leave_one_out: query i is training point i and ignores itself (x, y must equal the
            training set). Without it a training point is its own neighbour (distance 0), the seed
            paper's convention.
        num_threads: CPU threads (default: all cores).
        device: "cpu", "cuda" or "auto" (CUDA when a GPU and a CUDA build are present and the bound
            is "margin"). GPU arrays (torch, cupy) are accepted and copied to the host first.
        isa: CPU kernel variant, "auto" or one of :func:`nnmargin.cpu_isas` (for tests/benchmarks).
        box: for bound="exact", keep perturbed points in a box: True for the valid image domain
            [0, 255 * scale] of uint8 data, or (lo, hi) in the data's units. The margin and bisector
            bounds ignore it (they stay sound: a box only makes attacks harder).

    Returns:
        A :class:`CertifyResult`. Indices refer to the training set's original order; ties are
        broken by the lowest training index. uint8 distances are exact (integer arithmetic); float
        distances are the float64 value of the exact nearest point (screened in the input precision,
        close candidates re-checked in float64). Radii are rounded down: they are proofs.
    """
    trainset = _as_trainset(train)
    metric = as_metric(metric)
    norm = metric if norm is None else as_norm(norm)
    if bound not in BOUNDS:
        raise ValueError(f"bound must be one of {BOUNDS}, got {bound!r}")
    if bound != "margin" and metric != "l2":
        raise ValueError(f"bound={bound!r} is for the l2-metric 1NN (metric='l2'), got metric={metric!r}")
    if bound == "exact" and leave_one_out:
        raise ValueError("bound='exact' does not support leave_one_out yet")
    if isinstance(pivots, bool) or not isinstance(pivots, (int, np.integer)) or not 1 <= pivots <= 3:
        raise ValueError(f"pivots must be 1, 2 or 3, got {pivots!r}")
    queries = trainset.queries_like(x, "x")
    labels = as_labels(y, queries.shape[0], "y")
    threads = as_num_threads(num_threads)
    is_uint8 = trainset.dtype == np.uint8
    if scale is not None and not is_uint8:
        raise ValueError("scale applies to uint8 input only; float input is taken as given")
    if is_uint8:
        scale = 1.0 / 255.0 if scale is None else float(scale)
        if not (np.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive finite number, got {scale!r}")
    own_index = None
    if leave_one_out:
        if queries.shape != trainset.points.shape or not (
            np.array_equal(queries, trainset.points) and np.array_equal(labels, trainset.labels)
        ):
            raise ValueError("leave_one_out=True needs the queries (x, y) to be the training set itself")
        own_index = np.arange(queries.shape[0], dtype=np.int64)
    run_on = _resolve_device(device, bound)
    if bound != "margin" and run_on != "cpu":
        raise ValueError(f"bound={bound!r} runs on the CPU in this version; use device='cpu'")
    prepared = trainset.prepared(metric)

    def search(q, lab, skip) -> RawNeighbours:
        return RawNeighbours(*_core.search(prepared, q, trainset.class_ids(lab), skip, run_on, isa, threads))

    start = time.perf_counter()
    raw = search(queries, labels, own_index)
    search_seconds = time.perf_counter() - start

    # Kernel values are squared for l2; uint8 values are integers in units of one intensity step.
    unit = scale if is_uint8 else 1.0
    to_dist = np.sqrt if metric == "l2" else (lambda v: v)
    dist_same = to_dist(raw.value_same) * unit
    dist_other = to_dist(raw.value_other) * unit
    # Relative error of a reported distance against the real-number one: a few roundings (sqrt,
    # scale) for exact integers; for floats also the float64 sum over D terms.
    rel_err = 8 * _U if is_uint8 else (trainset.dim + 8) * _U

    same_wins = (dist_same < dist_other) | ((dist_same == dist_other) & (raw.idx_same < raw.idx_other))
    same_wins &= raw.idx_same >= 0
    pred = np.where(same_wins, labels, trainset.labels[np.maximum(raw.idx_other, 0)])
    pred = np.where((raw.idx_same < 0) & (raw.idx_other < 0), -1, pred)
    correct = pred == labels
    margin = sound_half_margin(dist_same, dist_other, rel_err)
    radius = np.where(correct, margin / norm_factor(metric, norm, trainset.dim) * (1 - 4 * _U), 0.0)
    info = {"device": run_on, "dtype": str(trainset.dtype), "bound": bound, "norm": norm}

    target_index = None
    adversarial = None
    if bound in ("bisector", "exact"):
        start = time.perf_counter()
        sel = np.flatnonzero(correct & (raw.idx_other >= 0))
        sub = RawNeighbours(*(a[sel] for a in raw))
        b_raw, b_idx = bisector_bound(trainset, queries[sel], labels[sel], sub, norm, pivots, search, isa,
                                      threads, None if own_index is None else own_index[sel])
        radius[sel] = np.maximum(radius[sel], b_raw * unit * (1 - 4 * _U))
        target_index = np.full(len(labels), -1, dtype=np.int64)
        target_index[sel] = b_idx
        info["bisector_seconds"] = time.perf_counter() - start
        info["pivots"] = int(pivots)
    if bound == "exact":
        start = time.perf_counter()
        solution, adversarial = exact_with_examples(trainset, queries, labels, raw.idx_same, correct, norm, unit,
                                                    _as_box(box, is_uint8, unit))
        # the solvers are accurate to ~1e-9 relative: shade by 1e-8 so the radius stays a proof
        radius = np.where(correct, np.maximum(radius, solution.radius * (1 - 1e-8)), 0.0)
        target_index = np.where(solution.target >= 0, solution.target, target_index)
        info["exact_seconds"] = time.perf_counter() - start
        info["programs_solved"] = int(solution.programs.sum())
        info["cells_screened"] = int(solution.candidates.sum())

    return CertifyResult(
        labels=labels,
        pred=pred.astype(np.int64),
        correct=correct,
        dist_same=dist_same,
        idx_same=raw.idx_same,
        dist_other=dist_other,
        idx_other=raw.idx_other,
        radius=radius,
        metric=metric,
        scale=scale if is_uint8 else None,
        n_train=trainset.n_points,
        seconds=search_seconds,
        leave_one_out=leave_one_out,
        bound=bound,
        norm=norm,
        target_index=target_index,
        adversarial=adversarial,
        info=info,
    )


def _as_box(box, is_uint8: bool, unit: float):
    """(lo, hi) in the data's units, or None."""
    if box is None or box is False:
        return None
    if box is True:
        if not is_uint8:
            raise ValueError("box=True means [0, 255 * scale] for uint8 data; give (lo, hi) for float data")
        return (0.0, 255.0 * unit)
    try:
        lo, hi = (float(v) for v in box)
    except (TypeError, ValueError):
        raise ValueError(f"box must be True or a pair (lo, hi), got {box!r}") from None
    if not lo < hi:
        raise ValueError(f"box needs lo < hi, got {box!r}")
    return (lo, hi)


def exact_with_examples(trainset, queries, labels, idx_same, correct, norm, unit, box):
    """Exact radii plus verified minimal adversarial examples (n, D) for the queries."""
    from .adversarial import boundary_to_adversarial
    from .exact import exact_radii

    problem = trainset.float64_problem(unit)
    solution = exact_radii(trainset.points, trainset.labels, queries, labels, idx_same, correct, norm=norm,
                           unit=unit, box=box, problem=problem)
    xs = queries.astype(np.float64) * unit
    examples = np.full(xs.shape, np.nan)
    for i in np.flatnonzero(solution.target >= 0):
        adv = boundary_to_adversarial(problem, xs[i], labels[i], xs[i] + solution.delta[i], solution.target[i], box)
        if adv is not None:
            examples[i] = adv
    return solution, examples
