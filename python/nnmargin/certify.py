"""``certify``: exact nearest same-class / other-class neighbours and certified radii of the 1NN.

One call reads as: validate the request -> search (nearest same/other) -> margin bound -> the
tightening steps of the requested bound (:data:`_TIGHTENING`).
"""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from typing import NamedTuple, Optional

import numpy as np

from . import _core
from ._chunks import Checkpoint, fingerprint, run_chunks
from ._errors import DeviceUnavailableError, InputError, InputTypeError
from ._names import (AUTO_USES_CUDA, BOUNDS, DEFAULT_UINT8_SCALE, DEVICES, KNN_BATCH_ENTRIES, MAX_K, MAX_PIVOTS,
                     PROGRESS_BATCH, UNIT_ROUNDOFF as _U, as_choice, as_metric, as_norm)
from ._validate import as_box, as_k, as_labels, as_num_threads, as_pivots, as_processes, as_scale
from .bounds import bisector_bound, margin_radius, radius_in_norm
from .knn import relaxation_half_gap, topk_lists, vote
from .exact import exact_with_examples
from .result import CertifyResult
from .trainset import TrainSetBase, as_trainset


class RawNeighbours(NamedTuple):
    """Kernel output, each (n,): exact values (squared for l2; uint8 in integer steps) and indices."""

    value_same: np.ndarray
    idx_same: np.ndarray
    value_other: np.ndarray
    idx_other: np.ndarray


@dataclass(frozen=True)
class _Request:
    """A validated certify call: what to search and how to bound it."""

    trainset: TrainSetBase
    queries: np.ndarray           # (N, D) in the training set's dtype
    labels: np.ndarray            # (N,) int64
    own_index: Optional[np.ndarray]  # (N,) leave-one-out: query i is training point own_index[i]
    metric: str
    norm: str
    bound: str
    pivots: int
    scale: Optional[float]        # uint8 units per step; None for float data
    box: Optional[tuple]          # (lo, hi) in data units, exact bound only
    device: str
    isa: str
    threads: int
    k: int = 1                    # voting neighbours (1: the 1NN)

    @property
    def unit(self) -> float:
        return 1.0 if self.scale is None else self.scale

    @property
    def rel_err(self) -> float:
        """Relative error of a reported distance against the real-number one: a few roundings
        (sqrt, scale) for exact integers; for floats also the float64 sum over D terms."""
        return 8 * _U if self.scale is not None else (self.trainset.dim + 8) * _U

    def to_dist(self, value: np.ndarray) -> np.ndarray:
        """Kernel values (squared for l2; uint8 in integer steps) as distances in data units."""
        return (np.sqrt(value) if self.metric == "l2" else value) * self.unit

    def rows(self, begin: int, end: int) -> "_Request":
        """The same request for queries [begin, end)."""
        own = None if self.own_index is None else self.own_index[begin:end]
        return dataclasses.replace(self, queries=self.queries[begin:end], labels=self.labels[begin:end],
                                   own_index=own)

    def without_queries(self, threads: int) -> "_Request":
        """What every worker process needs once (the training set and options), with ``threads``."""
        return dataclasses.replace(self, queries=self.queries[:0], labels=self.labels[:0], own_index=None,
                                   threads=threads)

    def query_part(self) -> tuple:
        return self.queries, self.labels, self.own_index

    def with_queries(self, part: tuple) -> "_Request":
        queries, labels, own_index = part
        return dataclasses.replace(self, queries=queries, labels=labels, own_index=own_index)

    def run_id(self, step: int) -> str:
        """Fingerprint of everything a result depends on: data, options, chunk size (not threads,
        device or ISA, which never change a result)."""
        points = getattr(self.trainset, "points", None)
        if points is None:
            raise InputError(f"checkpoint= needs a local nnmargin.TrainSet, got {type(self.trainset).__name__}")
        own = np.zeros(0) if self.own_index is None else self.own_index
        options = {"metric": self.metric, "norm": self.norm, "bound": self.bound, "pivots": self.pivots,
                   "scale": self.scale, "box": self.box, "k": self.k, "step": step}
        return fingerprint((points, self.trainset.labels, self.queries, self.labels, own), options)

    def search(self, queries, labels, skip) -> RawNeighbours:
        """Nearest same-class and other-class training point of each query (kernel units)."""
        return RawNeighbours(*self.trainset.search(queries, labels, skip, self.metric, self.device, self.isa,
                                                   self.threads))


@dataclass
class _Batch:
    """One chunk of queries after the search and the margin bound; tightening steps refine it."""

    queries: np.ndarray
    labels: np.ndarray
    own_index: Optional[np.ndarray]
    raw: RawNeighbours
    correct: np.ndarray
    radius: np.ndarray                      # (n,) certified radius in the request's norm
    target_index: Optional[np.ndarray] = None
    radius_upper: Optional[np.ndarray] = None   # exact bound: the proven upper end
    adversarial: Optional[np.ndarray] = None
    info: dict = field(default_factory=dict)


def certify(x, y, train, *, metric: str = "l2", bound: str = "margin", norm: str | None = None, pivots: int = 1,
            scale: float | None = None, leave_one_out: bool = False, num_threads: int | None = None,
            device: str = "cpu", isa: str = "auto", box=None, batch_size: int | None = None,
            progress: bool = False, lipschitz: float | None = None, k: int = 1, processes: int = 1,
            checkpoint=None) -> CertifyResult:
    """Certify the 1-nearest-neighbour (or k-NN) classifier on queries ``(x, y)``.

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
        device: "cpu", "cuda" or "auto" ("auto" runs on the CPU in this version: the CUDA backend
            has not yet passed a run on a real GPU). GPU arrays (torch, cupy) are accepted and
            copied to the host first.
        isa: CPU kernel variant, "auto" or one of :func:`nnmargin.cpu_isas` (for tests/benchmarks).
        box: for bound="exact", keep perturbed points in a box: True for the valid image domain
            [0, 255 * scale] of uint8 data, or (lo, hi) in the data's units. The margin and bisector
            bounds ignore it (they stay sound: a box only makes attacks harder).
        batch_size: certify the queries in chunks of this many (default: all at once, or a few
            thousand when ``progress`` is on); results do not depend on it.
        progress: show a progress bar over the queries (tqdm).
        lipschitz: L > 0 when ``x`` and the training points are features f(.) of a network f that
            is L-Lipschitz from the input norm ``norm`` to the feature l2 norm:
            ||f(u) - f(v)||_2 <= L ||u - v||_norm, f being the map as computed (floating-point
            rounding of the forward pass and of storing ``x`` included: ``nnmargin lipschitz``
            shrinks its radii by that slack). The bound is then computed in feature space in
            the l2 norm (metric must be "l2"), and ``radius`` is that l2 feature radius divided by
            L, rounded down: a certified radius in the input space, in ``norm`` (default "l2"), for
            the margin, bisector and exact bounds alike (a perturbation of norm < r / L moves the
            features by < r). The result's ``norm`` is the input norm; ``dist_*`` stay feature
            distances, ``margin_radius()`` is feature-space (not divided by L), ``adversarial``
            (and an exact upper end) is None (the minimal examples would be feature vectors) and
            ``info["lipschitz"]`` holds L.
            ``box`` is not accepted with it (the features' range is not a box).
        k: voting neighbours of the classifier (default 1, the 1NN). For k > 1 the prediction is
            the plurality vote of the k nearest training points (distance ties: lowest training
            index; vote ties: the smallest label), and ``radius`` is the exact value of the
            triangle-inequality relaxation (see :mod:`nnmargin.knn`), which equals the margin
            bound at k = 1; bound must be "margin", the search runs on the CPU. ``dist_*`` /
            ``idx_*`` still give the nearest same-class and other-class points.
        processes: worker processes for the chunks (default 1: this process). For bound="exact",
            whose programs run in single-threaded Python / NNLS / HiGHS, this is how to use every
            core; each worker searches with ``num_threads // processes`` threads (at least 1).
            Needs a local :class:`TrainSet` (sent to each worker once). Results do not depend on it.
        checkpoint: a folder that keeps every finished chunk (of ``batch_size`` queries). Called
            again with the same data, options and batch size, certify reuses the finished chunks
            and computes only the rest, so a long run survives an interruption; a folder of a
            different run is refused (InputError). Results do not depend on it.

    Returns:
        A :class:`CertifyResult`. Indices refer to the training set's original order; ties are
        broken by the lowest training index. uint8 distances are exact (integer arithmetic); float
        distances are the float64 value of the exact nearest point (screened in the input precision,
        close candidates re-checked in float64). Radii are rounded down: they are proofs.
    """
    lipschitz = _as_lipschitz(lipschitz, metric, box)
    input_norm = None if lipschitz is None else ("l2" if norm is None else as_norm(norm))
    request = _validate(x, y, train, metric, bound, norm if lipschitz is None else "l2", pivots, scale, leave_one_out,
                        num_threads, device, isa, box, k)
    n = len(request.labels)
    processes = as_processes(processes, request.trainset)
    step = _chunk_size(request, batch_size, chunked=progress or checkpoint is not None or processes > 1)
    store = None if checkpoint is None else Checkpoint(checkpoint, request.run_id(step), n, step)
    worker_threads = max(1, (request.threads or os.cpu_count() or 1) // processes)
    parts = run_chunks(_certify_batch, request, n, step, progress=progress, processes=processes, checkpoint=store,
                       worker_threads=worker_threads)
    result = CertifyResult.concatenate(parts)
    return result if lipschitz is None else _to_input_space(result, lipschitz, input_norm)


def _chunk_size(request: _Request, batch_size: Optional[int], chunked: bool) -> int:
    """Queries per chunk: ``batch_size``; else all at once, or PROGRESS_BATCH when the run is chunked
    anyway (a progress bar, a checkpoint, worker processes to share the chunks); k-NN chunks hold at
    most KNN_BATCH_ENTRIES (query, class, neighbour) entries."""
    n = len(request.labels)
    step = batch_size or (PROGRESS_BATCH[request.bound] if chunked else max(n, 1))
    if request.k > 1:  # the per-class lists are (queries, classes, k + 1)
        step = min(step, max(1, KNN_BATCH_ENTRIES // (len(request.trainset.classes) * (request.k + 1))))
    return step


def _as_lipschitz(lipschitz, metric, box) -> Optional[float]:
    """The validated Lipschitz constant of ``certify(..., lipschitz=L)``, or None."""
    if lipschitz is None:
        return None
    if isinstance(lipschitz, (bool, np.bool_)) or not isinstance(lipschitz, (int, float, np.integer, np.floating)):
        raise InputTypeError(f"lipschitz must be a number (the constant L of the feature map), got {lipschitz!r}")
    value = float(lipschitz)
    if not np.isfinite(value) or value <= 0:
        raise InputError(f"lipschitz must be a finite number > 0, got {lipschitz!r}")
    if as_metric(metric) != "l2":
        raise InputError(f"lipschitz= certifies from l2 feature distances: use metric='l2', got metric={metric!r}")
    if box is not None:
        raise InputError("box= cannot be combined with lipschitz= (box is an input-space constraint; the exact "
                         "bound would apply it to the features)")
    return value


def _to_input_space(result: CertifyResult, lipschitz: float, input_norm: str) -> CertifyResult:
    """Feature l2 radii r -> input radii r / L in ``input_norm``, rounded down (next float toward 0 of
    the correctly rounded quotient, so never above the real r / L)."""
    radius = result.radius / lipschitz
    radius = np.where(np.isfinite(radius) & (radius > 0), np.nextafter(radius, 0.0), radius)
    # Feature-space adversarial examples and upper ends say nothing about the input space: dropped.
    dropped = {f.name: None for f in dataclasses.fields(result) if f.name in ("adversarial", "radius_upper")}
    return dataclasses.replace(result, radius=radius, norm=input_norm, **dropped,
                               info={**result.info, "lipschitz": lipschitz, "feature_norm": "l2"})


def _validate(x, y, train, metric, bound, norm, pivots, scale, leave_one_out, num_threads, device, isa,
              box, k=1) -> _Request:
    """Every check of a certify call, before any search runs."""
    trainset = as_trainset(train)
    metric = as_metric(metric)
    norm = metric if norm is None else as_norm(norm)
    as_choice(bound, "bound", BOUNDS)
    k = as_k(k, MAX_K)
    if k > 1 and bound != "margin":
        raise InputError(f"bound={bound!r} is for the 1NN (k=1); k={k} is certified by the relaxation of "
                         f"bound='margin'")
    if bound != "margin" and metric != "l2":
        raise InputError(f"bound={bound!r} is for the l2-metric 1NN (metric='l2'), got metric={metric!r}")
    pivots = as_pivots(pivots, MAX_PIVOTS)
    queries = trainset.queries_like(x, "x")
    labels = as_labels(y, queries.shape[0], "y")
    is_uint8 = trainset.dtype == np.uint8
    scale = as_scale(scale, is_uint8, DEFAULT_UINT8_SCALE)
    own_index = None
    if leave_one_out:
        if not trainset.is_own_training_set(queries, labels):
            raise InputError("leave_one_out=True needs the queries (x, y) to be the training set itself")
        own_index = np.arange(queries.shape[0], dtype=np.int64)
    run_on = _resolve_device(device, bound, k)
    return _Request(trainset, queries, labels, own_index, metric, norm, bound, pivots, scale,
                    as_box(box, is_uint8, 1.0 if scale is None else scale), run_on, isa,
                    as_num_threads(num_threads), k)


def _resolve_device(device: str, bound: str, k: int) -> str:
    """Where the search runs: the CUDA backend serves the 1NN margin search only."""
    as_choice(device, "device", DEVICES)
    on_gpu = bound == "margin" and k == 1
    if device == "auto":
        return "cuda" if AUTO_USES_CUDA and on_gpu and _core.cuda_device_count() > 0 else "cpu"
    if device == "cuda":
        if k > 1:
            raise InputError(f"k={k} runs on the CPU in this version; use device='cpu'")
        if bound != "margin":
            raise InputError(f"bound={bound!r} runs on the CPU in this version; use device='cpu'")
        if _core.cuda_device_count() == 0:
            raise DeviceUnavailableError(f"device='cuda' requested but {_core.cuda_status()[1]}")
    return device


def _certify_batch(req: _Request) -> CertifyResult:
    """Search, margin bound, then the requested bound's tightening steps, for the request's queries."""
    if req.k > 1:
        return _certify_knn_batch(req)
    queries, labels, own_index = req.queries, req.labels, req.own_index
    start = time.perf_counter()
    raw = req.search(queries, labels, own_index)
    search_seconds = time.perf_counter() - start

    trainset = req.trainset
    dist_same, dist_other = req.to_dist(raw.value_same), req.to_dist(raw.value_other)
    same_wins = (dist_same < dist_other) | ((dist_same == dist_other) & (raw.idx_same < raw.idx_other))
    same_wins &= raw.idx_same >= 0
    pred = np.where(same_wins, labels, trainset.labels[np.maximum(raw.idx_other, 0)])
    pred = np.where((raw.idx_same < 0) & (raw.idx_other < 0), -1, pred)
    correct = pred == labels
    radius = margin_radius(dist_same, dist_other, correct, req.metric, req.norm, trainset.dim, req.rel_err)

    batch = _Batch(queries, labels, own_index, raw, correct, radius)
    for step in _TIGHTENING[req.bound]:
        step(req, batch)
    return _result(req, labels, pred, correct, (dist_same, raw.idx_same, dist_other, raw.idx_other), batch.radius,
                   search_seconds, batch.info, target_index=batch.target_index, adversarial=batch.adversarial,
                   radius_upper=batch.radius_upper)


def _result(req: _Request, labels, pred, correct, nearest, radius, seconds, info, **extra) -> CertifyResult:
    """A batch's CertifyResult: ``nearest`` = (dist_same, idx_same, dist_other, idx_other), each (n,)."""
    dist_same, idx_same, dist_other, idx_other = nearest
    return CertifyResult(
        labels=labels, pred=np.asarray(pred, dtype=np.int64), correct=correct, dist_same=dist_same,
        idx_same=idx_same, dist_other=dist_other, idx_other=idx_other, radius=radius, metric=req.metric,
        scale=req.scale, n_train=req.trainset.n_points, seconds=seconds, leave_one_out=req.own_index is not None,
        bound=req.bound, norm=req.norm, k=req.k, n_features=req.trainset.dim, distance_rel_err=req.rel_err,
        info={"device": req.device, "dtype": str(req.trainset.dtype), "bound": req.bound, "norm": req.norm, **info},
        **extra,
    )


def _certify_knn_batch(req: _Request) -> CertifyResult:
    """The k-NN: the k + 1 nearest points of every class, the vote, the relaxation's radius."""
    queries, labels, own_index = req.queries, req.labels, req.own_index
    trainset = req.trainset
    start = time.perf_counter()
    value, index = trainset.search_topk(queries, own_index, req.k + 1, req.metric, req.isa, req.threads)
    search_seconds = time.perf_counter() - start
    lists = topk_lists(value, index, req.to_dist)
    n_classes = len(trainset.classes)
    y = trainset.class_ids(labels)
    voted = vote(lists.cls, req.k, n_classes)
    pred = np.where(voted >= 0, trainset.classes[np.maximum(voted, 0)], -1)
    correct = pred == labels
    half = relaxation_half_gap(lists, y, req.k, n_classes, req.rel_err)
    radius = radius_in_norm(half, correct, req.metric, req.norm, trainset.dim)
    # the nearest same-class point (first of y's list) and other-class point (first entry not of y)
    rows_ = np.arange(len(labels))
    idx_same = np.where(y >= 0, index[rows_, np.maximum(y, 0), 0], -1)
    dist_same = np.where(idx_same >= 0, req.to_dist(value[rows_, np.maximum(y, 0), 0]), np.inf)
    first_other = np.argmax(lists.cls != y[:, None], axis=1)
    cls_other = lists.cls[rows_, first_other]
    has_other = (cls_other >= 0) & (cls_other != y)
    idx_other = np.where(has_other, lists.index[rows_, first_other], -1)
    dist_other = np.where(has_other, lists.dist[rows_, first_other], np.inf)
    return _result(req, labels, pred, correct, (dist_same, idx_same, dist_other, idx_other), radius, search_seconds,
                   {"certify_seconds": time.perf_counter() - start})


def _tighten_by_bisectors(req: _Request, batch: _Batch) -> None:
    """The bisector bound of the correctly classified queries (never below the margin bound)."""
    start = time.perf_counter()
    sel = np.flatnonzero(batch.correct & (batch.raw.idx_other >= 0))
    sub = RawNeighbours(*(a[sel] for a in batch.raw))
    skip = None if batch.own_index is None else batch.own_index[sel]
    b_raw, b_idx = bisector_bound(req.trainset, batch.queries[sel], batch.labels[sel], sub, req.norm, req.pivots,
                                  req.search, req.isa, req.threads, skip)
    batch.radius[sel] = np.maximum(batch.radius[sel], b_raw * req.unit * (1 - 4 * _U))
    batch.target_index = np.full(len(batch.labels), -1, dtype=np.int64)
    batch.target_index[sel] = b_idx
    batch.info.update(bisector_seconds=time.perf_counter() - start, pivots=req.pivots)


def _solve_exactly(req: _Request, batch: _Batch) -> None:
    """Exact radii as proven intervals [radius, radius_upper] and verified adversarial examples
    (after the bisector bound). The solver runs on the exact raw data (uint8 or float) times
    ``req.unit``; leave-one-out queries leave their own training point out of the classifier."""
    start = time.perf_counter()
    solution, batch.adversarial = exact_with_examples(req.trainset, batch.queries, batch.labels, batch.raw.idx_same,
                                                      batch.correct, unit=req.unit, norm=req.norm, box=req.box,
                                                      skip=batch.own_index)
    # both are proven lower bounds (weak duality / screening bounds, rounded down): no shading
    batch.radius = np.where(batch.correct, np.maximum(batch.radius, solution.radius), 0.0)
    batch.radius_upper = np.where(batch.correct, solution.radius_upper, 0.0)
    batch.target_index = np.where(solution.target >= 0, solution.target, batch.target_index)
    batch.info.update(exact_seconds=time.perf_counter() - start, programs_solved=int(solution.programs.sum()),
                      cells_screened=int(solution.candidates.sum()))


# The table of bounds: the steps each bound adds to the margin bound, in order.
_TIGHTENING = {
    "margin": (),
    "bisector": (_tighten_by_bisectors,),
    "exact": (_tighten_by_bisectors, _solve_exactly),
}
