"""The methods the CPU benchmark times, each giving every query its nearest same-class and
other-class training point (ties: lowest training index) in nnmargin's units:

* nnmargin: ``certify`` on a TrainSet (prepared beforehand, or built in the timed run);
* faiss-cpu: the data as float32, one exact flat index per class, a k=1 search of every query in
  every class index, then the per-query same-class / other-class minima;
* numpy: float32 brute force, ||q||^2 + ||t||^2 - 2 q.t per query chunk, masked argmin (l2 only).

``*_method`` wraps each as a timed run for ``harness.interleaved``: ``run()`` returns
(Neighbours, {phase name: seconds}).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import faiss
import numpy as np

import nnmargin
from cases import BenchCase

FIELDS = ("dist_same", "idx_same", "dist_other", "idx_other")
FAISS_METRICS = {"l1": "METRIC_L1", "linf": "METRIC_Linf"}


@dataclass
class Neighbours:
    """Same-class / other-class nearest neighbours in nnmargin's units (uint8: integer distance / 255)."""

    dist_same: np.ndarray
    idx_same: np.ndarray
    dist_other: np.ndarray
    idx_other: np.ndarray

    def head(self, n: int) -> "Neighbours":
        """The first ``n`` queries."""
        return Neighbours(*(getattr(self, f)[:n] for f in FIELDS))


def use_threads(threads: int) -> None:
    """faiss's OpenMP pool to ``threads`` (numpy's BLAS reads the environment when it loads)."""
    faiss.omp_set_num_threads(threads)


# ------------------------------------------------------------------------------------- nnmargin


def nnmargin_prepare(case: BenchCase, threads: int = 0):
    """TrainSet construction plus the per-metric kernel layout (what end-to-end use pays once), packed
    on ``threads`` threads like every other timed phase (0: all cores)."""
    trainset = nnmargin.TrainSet(case.x_train, case.y_train)
    trainset.prepared(case.metric, threads)
    return trainset


def nnmargin_search(trainset, case: BenchCase, threads: int, isa: str = "auto") -> Neighbours:
    """One certify call on a prepared TrainSet."""
    cert = nnmargin.certify(case.x_query, case.y_query, trainset, metric=case.metric, num_threads=threads, isa=isa)
    return Neighbours(cert.dist_same, cert.idx_same, cert.dist_other, cert.idx_other)


def nnmargin_method(case: BenchCase, threads: int, isa: str = "auto", trainset=None) -> Callable:
    """nnmargin as a timed method: phases "prepare" (TrainSet + layout; skipped when a prepared
    ``trainset`` is given) and "search" (the certify call)."""
    def run():
        start = time.perf_counter()
        prepared = trainset if trainset is not None else nnmargin_prepare(case, threads)
        middle = time.perf_counter()
        result = nnmargin_search(prepared, case, threads, isa)
        phases = {"search": time.perf_counter() - middle}
        if trainset is None:
            phases["prepare"] = middle - start
        return result, phases
    return run


# ---------------------------------------------------------------------------------------- faiss


def faiss_build(case: BenchCase):
    """float32 conversion of the training set and one flat index per class.

    Returns (classes, list of indexes, list of global-index arrays mapping each index's ids back)."""
    train32 = np.ascontiguousarray(case.x_train, dtype=np.float32)
    classes = np.unique(case.y_train)
    indexes, id_maps = [], []
    for c in classes:
        members = np.flatnonzero(case.y_train == c)
        if case.metric == "l2":
            index = faiss.IndexFlatL2(case.d)
        else:
            index = faiss.IndexFlat(case.d, getattr(faiss, FAISS_METRICS[case.metric]))
        index.add(train32[members])
        indexes.append(index)
        id_maps.append(members)
    return classes, indexes, id_maps


def combine_per_class(classes, dist, idx, y_query):
    """Per-class nearest (C, N) -> same-class and other-class nearest per query.

    Other class: smallest distance over the other classes; among equal distances, lowest index."""
    own = classes[:, None] == np.asarray(y_query)[None, :]
    own_row = np.argmax(own, axis=0)
    has_own = own.any(axis=0)
    cols = np.arange(dist.shape[1])
    dist_same = np.where(has_own, dist[own_row, cols], np.inf)
    idx_same = np.where(has_own, idx[own_row, cols], -1)
    masked = np.where(own, np.inf, dist)
    dist_other = masked.min(axis=0)
    big = np.iinfo(np.int64).max
    idx_other = np.where(masked == dist_other[None, :], idx, big).min(axis=0)
    idx_other = np.where(np.isfinite(dist_other), idx_other, -1)
    return dist_same, idx_same, dist_other, idx_other


def faiss_search(built, case: BenchCase) -> Neighbours:
    """float32 conversion of the queries, k=1 search in every class index, combination."""
    classes, indexes, id_maps = built
    query32 = np.ascontiguousarray(case.x_query, dtype=np.float32)
    dist = np.empty((len(classes), case.n), dtype=np.float64)
    idx = np.empty((len(classes), case.n), dtype=np.int64)
    for row, (index, ids) in enumerate(zip(indexes, id_maps)):
        d_c, i_c = index.search(query32, 1)
        dist[row] = d_c[:, 0]
        idx[row] = np.where(i_c[:, 0] >= 0, ids[np.maximum(i_c[:, 0], 0)], -1)
    dist[idx < 0] = np.inf
    d_same, i_same, d_other, i_other = combine_per_class(classes, dist, idx, case.y_query)
    squared = case.metric == "l2"
    return Neighbours(case.user_units(d_same, squared), i_same, case.user_units(d_other, squared), i_other)


def faiss_method(case: BenchCase) -> Callable:
    """faiss as a timed method: phases "build" (float32 conversion + per-class indexes) and
    "search" (query conversion, k=1 search of every class index, combination)."""
    def run():
        start = time.perf_counter()
        built = faiss_build(case)
        middle = time.perf_counter()
        result = faiss_search(built, case)
        return result, {"build": middle - start, "search": time.perf_counter() - middle}
    return run


# ---------------------------------------------------------------------------------------- numpy


def masked_nearest(dist, same):
    """Row-wise argmin over the same-class columns and over the other columns (first = lowest index)."""
    rows = np.arange(dist.shape[0])
    in_same = np.where(same, dist, np.inf)
    i_same = in_same.argmin(axis=1)
    in_other = np.where(same, np.inf, dist)
    i_other = in_other.argmin(axis=1)
    d_same, d_other = in_same[rows, i_same], in_other[rows, i_other]
    i_same = np.where(np.isfinite(d_same), i_same, -1)
    i_other = np.where(np.isfinite(d_other), i_other, -1)
    return d_same, i_same, d_other, i_other


def numpy_bruteforce(case: BenchCase, chunk: int = 256) -> Neighbours:
    """float32 matmul trick ||q||^2 + ||t||^2 - 2 q.t per query chunk, then masked argmin.

    Includes the float32 conversion of the training set (l2 only)."""
    train = np.ascontiguousarray(case.x_train, dtype=np.float32)
    train_sq = np.einsum("ij,ij->i", train, train)
    y_train = np.asarray(case.y_train)
    parts = []
    for start in range(0, case.n, chunk):
        q = np.asarray(case.x_query[start:start + chunk], dtype=np.float32)
        d2 = q @ train.T
        d2 *= -2.0
        d2 += train_sq[None, :]
        d2 += np.einsum("ij,ij->i", q, q)[:, None]
        same = y_train[None, :] == np.asarray(case.y_query[start:start + chunk])[:, None]
        parts.append(masked_nearest(d2, same))
    d_same, i_same, d_other, i_other = (np.concatenate(p) for p in zip(*parts))
    return Neighbours(case.user_units(d_same, True), i_same, case.user_units(d_other, True), i_other)


def numpy_method(case: BenchCase) -> Callable:
    """The numpy brute force as a timed method: one phase, "total"."""
    def run():
        start = time.perf_counter()
        result = numpy_bruteforce(case)
        return result, {"total": time.perf_counter() - start}
    return run
