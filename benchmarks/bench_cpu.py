#!/usr/bin/env python
"""CPU benchmark: nnmargin against what a user would otherwise run to get, for every query, the
nearest training point of its own class and the nearest of any other class.

Baselines (all on the same machine, in the same process, with the same thread count):

* faiss-cpu: one exact flat index per class (``IndexFlatL2`` / ``IndexFlat(D, METRIC_L1|METRIC_Linf)``),
  a k=1 search of every query in every class index, then the per-query same-class / other-class
  minima (ties: lowest training index). Data are converted to float32 for faiss; that conversion
  and the index building are timed separately from the search and reported both ways.
* numpy: float32 brute force with the matmul trick ||q||^2 + ||t||^2 - 2 q.t in query chunks and a
  masked argmin for the same class and for the other classes (l2 only).

Every result is checked in the same run: nnmargin against an exact float64/integer numpy
reference on a subset of queries (indices equal, distances equal to 1e-12 relative), and against
each baseline on every query the baseline ran (distances within the baseline's float32 rounding;
where a baseline returns a different index, that index must be no closer in exact arithmetic).

Reproduce everything (about 2.5 minutes on 2 cores):

    python benchmarks/bench_cpu.py --threads 2 --out benchmarks/results

Smoke run (seconds): add ``--quick`` (writes ``cpu_benchmark_quick.{json,md}``).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

# numpy, faiss and nnmargin are imported in main(), after the thread-count environment variables
# are set: OpenBLAS and OpenMP read them once, when they load.
np = None
faiss = None
nnmargin = None

EXACT_RTOL = 1e-12  # nnmargin vs the exact reference
FLOAT32_L2_RTOL = 1e-4  # float32 baselines vs nnmargin, l2 distance (float32 matmul-trick rounding)
FLOAT32_SUM_RTOL = 1e-5  # float32 baselines vs nnmargin, l1 / linf distance


# ---------------------------------------------------------------------------------------- setup


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="threads for every method (default 2)")
    parser.add_argument("--out", default="benchmarks/results", help="output folder")
    parser.add_argument("--quick", action="store_true", help="tiny problems: a smoke test in seconds")
    parser.add_argument("--data-dir", default=os.environ.get("NNMARGIN_DATA", "/work/shared/data"),
                        help="data root holding mnist/ (default $NNMARGIN_DATA or /work/shared/data)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats of nnmargin (default 5)")
    parser.add_argument("--slow-repeats", type=int, default=3,
                        help="timed repeats of faiss, numpy and the ISA variants (default 3)")
    parser.add_argument("--check-queries", type=int, default=32,
                        help="queries checked against the exact float64 reference per problem")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def set_thread_env(threads: int) -> None:
    """Pin OpenMP / BLAS thread pools to ``threads`` before the libraries load."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)


def import_libraries(threads: int) -> None:
    """Import numpy, faiss and nnmargin into this module, faiss limited to ``threads``."""
    global np, faiss, nnmargin
    import numpy
    import faiss as faiss_module
    import nnmargin as nnmargin_module

    np, faiss, nnmargin = numpy, faiss_module, nnmargin_module
    faiss.omp_set_num_threads(threads)


@dataclass
class Sizes:
    """Problem sizes of one benchmark run (full or --quick)."""

    cifar: tuple  # (N queries, M train, D)
    cifar_classes: tuple
    mnist_queries: int
    mnist_train: int
    lp: tuple  # l1 / linf problem (N, M, D)
    lp_faiss_queries: int  # faiss l1 / linf run on this subset, scaled up
    float32: tuple
    isa: tuple  # the small problem every ISA variant runs


FULL = Sizes(cifar=(2000, 10000, 3072), cifar_classes=(2, 10), mnist_queries=10000, mnist_train=60000,
             lp=(2000, 10000, 3072), lp_faiss_queries=200,
             float32=(2000, 20000, 512), isa=(512, 4000, 3072))
QUICK = Sizes(cifar=(200, 1000, 3072), cifar_classes=(2, 10), mnist_queries=500, mnist_train=5000,
              lp=(200, 1000, 3072), lp_faiss_queries=20,
              float32=(200, 2000, 512), isa=(32, 256, 3072))


@dataclass
class Problem:
    """One certification problem: training set, queries, metric."""

    name: str
    x_train: object  # (M, D) uint8 or float32
    y_train: object
    x_query: object  # (N, D)
    y_query: object
    metric: str

    @property
    def n(self) -> int:
        return self.x_query.shape[0]

    @property
    def m(self) -> int:
        return self.x_train.shape[0]

    @property
    def d(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_classes(self) -> int:
        return int(np.unique(self.y_train).size)

    def ops(self, n_queries=None) -> float:
        """Nominal operation count 2*N*M*D (one multiply-add, or subtract+abs/max, = 2 ops)."""
        return 2.0 * (self.n if n_queries is None else n_queries) * self.m * self.d

    def subset(self, n_queries: int) -> "Problem":
        return Problem(self.name, self.x_train, self.y_train, self.x_query[:n_queries],
                       self.y_query[:n_queries], self.metric)

    def describe(self) -> dict:
        return {"name": self.name, "metric": self.metric, "dtype": str(self.x_train.dtype), "N": self.n,
                "M": self.m, "D": self.d, "classes": self.n_classes, "nominal_ops": self.ops()}


@dataclass
class Neighbours:
    """Same-class / other-class nearest neighbours in nnmargin's units (uint8: integer distance / 255)."""

    dist_same: object
    idx_same: object
    dist_other: object
    idx_other: object


@dataclass
class Row:
    """One line of the results table."""

    problem: str
    method: str
    seconds: float
    gops: float
    speedup: float | None  # baseline seconds / nnmargin seconds, like for like; None for nnmargin rows
    check: str
    detail: dict = field(default_factory=dict)


def random_uint8_problem(name, n, m, d, n_classes, metric, rng) -> Problem:
    """Uniform random uint8 points with uniform random labels (CIFAR-shaped when d=3072)."""
    return Problem(name, rng.integers(0, 256, (m, d), dtype=np.uint8), rng.integers(0, n_classes, m),
                   rng.integers(0, 256, (n, d), dtype=np.uint8), rng.integers(0, n_classes, n), metric)


def random_float32_problem(name, n, m, d, n_classes, rng) -> Problem:
    """Standard-normal float32 features (embedding-like) with random labels, l2."""
    return Problem(name, rng.standard_normal((m, d), dtype=np.float32), rng.integers(0, n_classes, m),
                   rng.standard_normal((n, d), dtype=np.float32), rng.integers(0, n_classes, n), "l2")


def mnist_problem(data_dir: str, n_queries: int, n_train: int) -> Problem:
    """MNIST test queries against the training set, uint8, flattened to 784 dims, l2."""
    x_train, y_train = nnmargin.datasets.load_mnist(split="train", data_dir=data_dir)
    x_test, y_test = nnmargin.datasets.load_mnist(split="test", data_dir=data_dir)
    return Problem(f"MNIST {n_queries}x{n_train} uint8 l2", x_train[:n_train].reshape(n_train, -1), y_train[:n_train],
                   x_test[:n_queries].reshape(n_queries, -1), y_test[:n_queries], "l2")


# -------------------------------------------------------------------------------------- timing


@dataclass
class Method:
    """A method to time: ``run()`` returns (result, {phase name: seconds})."""

    name: str
    run: Callable
    repeats: int


def interleaved(methods, warmup: int = 1) -> dict:
    """Time ``methods`` in alternation: one untimed warm-up each, then rounds in which every method
    that still has repeats left runs once. On a shared machine, load that comes and goes then
    affects all methods alike instead of whichever happened to run at that moment.

    Returns {name: {"phases": {phase: [seconds per repeat]}, "result": the last result}}."""
    out = {}
    for method in methods:
        result = None
        for _ in range(warmup):
            result, _ = method.run()
        out[method.name] = {"phases": {}, "result": result}
    for round_index in range(max(method.repeats for method in methods)):
        for method in methods:
            if round_index < method.repeats:
                result, phases = method.run()
                out[method.name]["result"] = result
                for phase, seconds in phases.items():
                    out[method.name]["phases"].setdefault(phase, []).append(seconds)
    return out


def median(values) -> float:
    return float(statistics.median(values))


def phase_sum(timing: dict, phases) -> list:
    """Per-repeat sum of the given phases, e.g. build + search."""
    return [sum(values) for values in zip(*(timing["phases"][p] for p in phases))]


# ---------------------------------------------------------------------------------- the methods


def to_user_units(values, problem: Problem, squared: bool):
    """Distances as nnmargin reports them: uint8 data on the [0, 1] scale (integer distance / 255)."""
    values = np.asarray(values, dtype=np.float64)
    if squared:
        values = np.sqrt(np.maximum(values, 0.0))
    return values / 255.0 if problem.x_train.dtype == np.uint8 else values


def nnmargin_search(trainset, problem: Problem, threads: int, isa: str = "auto") -> Neighbours:
    """One certify call on a prepared TrainSet."""
    cert = nnmargin.certify(problem.x_query, problem.y_query, trainset, metric=problem.metric,
                            num_threads=threads, isa=isa)
    return Neighbours(cert.dist_same, cert.idx_same, cert.dist_other, cert.idx_other)


def nnmargin_prepare(problem: Problem):
    """TrainSet construction plus the per-metric kernel layout (what end-to-end use pays once)."""
    trainset = nnmargin.TrainSet(problem.x_train, problem.y_train)
    trainset.prepared(problem.metric)
    return trainset


FAISS_METRICS = {"l1": "METRIC_L1", "linf": "METRIC_Linf"}


def faiss_build(problem: Problem):
    """float32 conversion of the training set and one flat index per class.

    Returns (classes, list of indexes, list of global-index arrays mapping each index's ids back)."""
    train32 = np.ascontiguousarray(problem.x_train, dtype=np.float32)
    classes = np.unique(problem.y_train)
    indexes, id_maps = [], []
    for c in classes:
        members = np.flatnonzero(problem.y_train == c)
        if problem.metric == "l2":
            index = faiss.IndexFlatL2(problem.d)
        else:
            index = faiss.IndexFlat(problem.d, getattr(faiss, FAISS_METRICS[problem.metric]))
        index.add(train32[members])
        indexes.append(index)
        id_maps.append(members)
    return classes, indexes, id_maps


def combine_per_class(classes, dist, idx, y_query):
    """Per-class nearest (C, N) -> same-class and other-class nearest per query.

    Other class: smallest distance over the other classes; among equal distances, lowest index."""
    own = classes[:, None] == np.asarray(y_query)[None, :]
    n = dist.shape[1]
    own_row = np.argmax(own, axis=0)
    has_own = own.any(axis=0)
    cols = np.arange(n)
    dist_same = np.where(has_own, dist[own_row, cols], np.inf)
    idx_same = np.where(has_own, idx[own_row, cols], -1)
    masked = np.where(own, np.inf, dist)
    dist_other = masked.min(axis=0)
    big = np.iinfo(np.int64).max
    idx_other = np.where(masked == dist_other[None, :], idx, big).min(axis=0)
    idx_other = np.where(np.isfinite(dist_other), idx_other, -1)
    return dist_same, idx_same, dist_other, idx_other


def faiss_search(built, problem: Problem) -> Neighbours:
    """float32 conversion of the queries, k=1 search in every class index, combination."""
    classes, indexes, id_maps = built
    query32 = np.ascontiguousarray(problem.x_query, dtype=np.float32)
    dist = np.empty((len(classes), problem.n), dtype=np.float64)
    idx = np.empty((len(classes), problem.n), dtype=np.int64)
    for row, (index, ids) in enumerate(zip(indexes, id_maps)):
        d_c, i_c = index.search(query32, 1)
        dist[row] = d_c[:, 0]
        idx[row] = np.where(i_c[:, 0] >= 0, ids[np.maximum(i_c[:, 0], 0)], -1)
    dist[idx < 0] = np.inf
    d_same, i_same, d_other, i_other = combine_per_class(classes, dist, idx, problem.y_query)
    squared = problem.metric == "l2"
    return Neighbours(to_user_units(d_same, problem, squared), i_same, to_user_units(d_other, problem, squared), i_other)


def numpy_bruteforce(problem: Problem, chunk: int = 256) -> Neighbours:
    """float32 matmul trick ||q||^2 + ||t||^2 - 2 q.t per query chunk, then masked argmin.

    Includes the float32 conversion of the training set (l2 only)."""
    train = np.ascontiguousarray(problem.x_train, dtype=np.float32)
    train_sq = np.einsum("ij,ij->i", train, train)
    y_train = np.asarray(problem.y_train)
    parts = []
    for start in range(0, problem.n, chunk):
        q = np.asarray(problem.x_query[start:start + chunk], dtype=np.float32)
        d2 = q @ train.T
        d2 *= -2.0
        d2 += train_sq[None, :]
        d2 += np.einsum("ij,ij->i", q, q)[:, None]
        same = y_train[None, :] == np.asarray(problem.y_query[start:start + chunk])[:, None]
        parts.append(masked_nearest(d2, same))
    d_same, i_same, d_other, i_other = (np.concatenate(p) for p in zip(*parts))
    return Neighbours(to_user_units(d_same, problem, True), i_same, to_user_units(d_other, problem, True), i_other)


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


def nnmargin_method(problem: Problem, threads: int, isa: str = "auto", trainset=None) -> Callable:
    """nnmargin as a timed method: phases "prepare" (TrainSet + layout; skipped when a prepared
    ``trainset`` is given) and "search" (the certify call)."""
    def run():
        start = time.perf_counter()
        prepared = trainset if trainset is not None else nnmargin_prepare(problem)
        middle = time.perf_counter()
        result = nnmargin_search(prepared, problem, threads, isa)
        phases = {"search": time.perf_counter() - middle}
        if trainset is None:
            phases["prepare"] = middle - start
        return result, phases
    return run


def faiss_method(problem: Problem) -> Callable:
    """faiss as a timed method: phases "build" (float32 conversion + per-class indexes) and
    "search" (query conversion, k=1 search of every class index, combination)."""
    def run():
        start = time.perf_counter()
        built = faiss_build(problem)
        middle = time.perf_counter()
        result = faiss_search(built, problem)
        return result, {"build": middle - start, "search": time.perf_counter() - middle}
    return run


def numpy_method(problem: Problem) -> Callable:
    """The numpy brute force as a timed method: one phase, "total"."""
    def run():
        start = time.perf_counter()
        result = numpy_bruteforce(problem)
        return result, {"total": time.perf_counter() - start}
    return run


# ------------------------------------------------------------------------------ exact reference


def exact_distances(problem: Problem, queries) -> "np.ndarray":
    """(len(queries), M) distances in the metric's raw units (l2 squared) from the given queries.

    uint8 l2: float64 matmul trick, exact because every term is an integer below 2**53. uint8 l1 /
    linf: int32 differences. float32: float64 direct differences (no cancellation)."""
    xq = problem.x_query[queries]
    if problem.x_train.dtype == np.uint8 and problem.metric == "l2":
        t = problem.x_train.astype(np.float64)
        q = xq.astype(np.float64)
        return np.einsum("ij,ij->i", q, q)[:, None] + np.einsum("ij,ij->i", t, t)[None, :] - 2.0 * (q @ t.T)
    wide = np.int32 if problem.x_train.dtype == np.uint8 else np.float64
    train = problem.x_train.astype(wide)
    rows = []
    for x in xq.astype(wide):
        diff = train - x
        if problem.metric == "l2":
            rows.append(np.einsum("ij,ij->i", diff, diff))
        else:
            np.abs(diff, out=diff)
            rows.append(diff.sum(axis=1) if problem.metric == "l1" else diff.max(axis=1))
    return np.asarray(rows, dtype=np.float64)


def exact_reference(problem: Problem, n_queries: int) -> Neighbours:
    """Exact same/other nearest neighbours of the first ``n_queries`` queries (ties: lowest index)."""
    queries = np.arange(min(n_queries, problem.n))
    dist = exact_distances(problem, queries)
    same = np.asarray(problem.y_train)[None, :] == np.asarray(problem.y_query)[queries][:, None]
    d_same, i_same, d_other, i_other = masked_nearest(dist, same)
    squared = problem.metric == "l2"
    return Neighbours(to_user_units(d_same, problem, squared), i_same, to_user_units(d_other, problem, squared), i_other)


def exact_pair_distance(problem: Problem, idx):
    """Exact distance (user units) from query i to training point idx[i], for every query."""
    idx = np.asarray(idx)
    rows = problem.x_train[np.maximum(idx, 0)]
    wide = np.int64 if problem.x_train.dtype == np.uint8 else np.float64
    diff = rows.astype(wide) - problem.x_query[: len(idx)].astype(wide)
    if problem.metric == "l2":
        raw = np.einsum("ij,ij->i", diff, diff)
    elif problem.metric == "l1":
        raw = np.abs(diff).sum(axis=1)
    else:
        raw = np.abs(diff).max(axis=1)
    out = to_user_units(raw, problem, problem.metric == "l2")
    return np.where(idx >= 0, out, np.inf)


def relative_error(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    both_inf = np.isinf(a) & np.isinf(b) & (a == b)
    err = np.abs(a - b) / np.maximum(np.abs(b), np.finfo(np.float64).tiny)
    return np.where(both_inf, 0.0, err)


def check_exact(got: Neighbours, ref: Neighbours) -> dict:
    """nnmargin vs the exact reference: indices equal, distances equal to EXACT_RTOL."""
    n = len(ref.idx_same)
    idx_ok = bool(np.array_equal(got.idx_same[:n], ref.idx_same) and np.array_equal(got.idx_other[:n], ref.idx_other))
    err = max(float(relative_error(got.dist_same[:n], ref.dist_same).max()),
              float(relative_error(got.dist_other[:n], ref.dist_other).max()))
    return {"queries": n, "indices_equal": idx_ok, "max_rel_dist_err": err, "ok": idx_ok and err <= EXACT_RTOL}


def check_against_baseline(problem: Problem, ours: Neighbours, theirs: Neighbours, rtol: float) -> dict:
    """nnmargin vs a float32 baseline on the queries the baseline ran.

    Distances must agree to ``rtol``; where the indices differ, the baseline's pick must be no closer
    than nnmargin's in exact arithmetic (a float32 near-tie, not an nnmargin miss)."""
    n = len(theirs.idx_same)
    sub = problem.subset(n)
    report = {"queries": n}
    ok = True
    for side in ("same", "other"):
        our_d, our_i = getattr(ours, f"dist_{side}")[:n], getattr(ours, f"idx_{side}")[:n]
        their_d, their_i = getattr(theirs, f"dist_{side}"), getattr(theirs, f"idx_{side}")
        err = float(relative_error(their_d, our_d).max())
        differ = np.flatnonzero(our_i != their_i)
        our_exact = exact_pair_distance(sub, our_i)
        their_exact = exact_pair_distance(sub, their_i)
        self_consistent = float(relative_error(our_d, our_exact).max())
        worse = int(np.sum(their_exact[differ] < our_exact[differ] * (1 - EXACT_RTOL)))
        ties = int(np.sum(their_exact[differ] == our_exact[differ]))
        report[side] = {"max_rel_dist_diff": err, "index_mismatches": int(differ.size),
                        "mismatches_exact_ties": ties, "baseline_closer_in_exact_arithmetic": worse,
                        "nnmargin_dist_vs_exact_of_its_index": self_consistent}
        ok &= err <= rtol and worse == 0 and self_consistent <= EXACT_RTOL
    report["ok"] = bool(ok)
    return report


def check_label(check: dict) -> str:
    """Short text for the table's check column."""
    if "indices_equal" in check:
        return ("exact OK" if check["ok"] else "EXACT MISMATCH") + f" ({check['queries']} q)"
    mism = check["same"]["index_mismatches"] + check["other"]["index_mismatches"]
    diff = max(check["same"]["max_rel_dist_diff"], check["other"]["max_rel_dist_diff"])
    text = "OK" if check["ok"] else "MISMATCH"
    return f"{text}: max rel diff {diff:.1e}, {mism} idx diff ({check['queries']} q)"


# ------------------------------------------------------------------------------------ benchmarks


def cpu_snapshot() -> dict:
    """Machine-wide busy and steal CPU seconds (/proc/stat), this process's CPU seconds, wall time."""
    tick = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat", encoding="utf-8") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    own = os.times()
    return {"busy": (user + nice + system + irq + softirq) / tick, "steal": steal / tick,
            "own": own.user + own.system, "wall": time.perf_counter()}


def other_load(start: dict, end: dict) -> dict:
    """CPU used by other processes between two snapshots, in cores (0 = the machine was ours).

    The load average cannot tell this: it counts this benchmark's own threads too."""
    wall = max(end["wall"] - start["wall"], 1e-9)
    others = (end["busy"] - start["busy"]) - (end["own"] - start["own"])
    return {"other_processes_cores": round(max(others, 0.0) / wall, 3),
            "steal_cores": round((end["steal"] - start["steal"]) / wall, 3), "seconds": round(wall, 1)}


class Runner:
    """Runs the benchmarks, collecting table rows and raw measurements."""

    def __init__(self, args, sizes: Sizes):
        self.args = args
        self.sizes = sizes
        self.rows: list[Row] = []
        self.problems: list[dict] = []
        self._section_start = None

    def log(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        speed = ""
        if row.speedup:
            speed = f"  nnmargin x{row.speedup:.2f} (paired x{row.detail['paired_speedup_median']:.2f})"
        self.log(f"  {row.method:<52} {row.seconds:9.4f} s {row.gops:8.1f} GOP/s{speed}  [{row.check}]")

    def register(self, problem: Problem, section: str) -> None:
        """Start a problem's section (and close the previous one's CPU-contention measurement)."""
        self.close_section()
        self.problems.append({"section": section, **problem.describe()})
        self._section_start = cpu_snapshot()
        self.log(f"{section}: {problem.name} (N={problem.n}, M={problem.m}, D={problem.d}, "
                 f"{problem.n_classes} classes, {problem.ops() / 1e9:.1f} GOP nominal)")

    def close_section(self) -> None:
        if self._section_start is not None:
            self.problems[-1]["contention"] = other_load(self._section_start, cpu_snapshot())
            self._section_start = None

    def compare(self, problem: Problem, baseline_queries: int | None = None, with_numpy: bool = True) -> None:
        """Time nnmargin, faiss and (l2) numpy on ``problem``, interleaved; check; add table rows.

        With ``baseline_queries`` the baselines run on the first that many queries only: they are
        compared like for like with nnmargin on the same subset, and scaled up to all N."""
        args = self.args
        sub = problem
        if baseline_queries is not None and baseline_queries < problem.n:
            sub = problem.subset(baseline_queries)
            sub.name = f"{problem.name} [first {sub.n} queries]"
        methods = [Method("nnmargin", nnmargin_method(problem, args.threads), args.repeats)]
        if sub is not problem:
            methods.append(Method("nnmargin_subset", nnmargin_method(sub, args.threads), args.repeats))
        methods.append(Method("faiss", faiss_method(sub), args.slow_repeats))
        if with_numpy:
            methods.append(Method("numpy", numpy_method(sub), args.slow_repeats))
        timings = interleaved(methods)

        ours = self.add_nnmargin_rows(problem, timings["nnmargin"])
        if sub is problem:
            targets = [(problem, timings["nnmargin"], "")]
        else:  # like for like on the subset, then scaled up to all N
            self.add_nnmargin_rows(sub, timings["nnmargin_subset"])
            targets = [(sub, timings["nnmargin_subset"], ""),
                       (problem, timings["nnmargin"], f" vs nnmargin on all {problem.n}")]
        rtol = FLOAT32_L2_RTOL if problem.metric == "l2" else FLOAT32_SUM_RTOL
        for name in ("faiss", "numpy"):
            if name in timings:
                check = check_against_baseline(sub, ours, timings[name]["result"], rtol)
                for target, our_timing, versus in targets:
                    self.add_baseline_rows(name, target, sub.n, timings[name], our_timing, check, versus)

    def add_nnmargin_rows(self, problem: Problem, timing: dict) -> Neighbours:
        """Rows "search" and "end-to-end" for nnmargin, checked against the exact reference."""
        result = timing["result"]
        check = check_exact(result, exact_reference(problem, self.args.check_queries))
        search = median(timing["phases"]["search"])
        e2e = median(phase_sum(timing, ("prepare", "search")))
        detail = {"seconds_all": timing["phases"], "exact_check": check}
        self.add(Row(problem.name, "nnmargin search (prepared TrainSet)", search, problem.ops() / search / 1e9,
                     None, check_label(check), detail))
        self.add(Row(problem.name, "nnmargin end-to-end (TrainSet + prepare + search)", e2e,
                     problem.ops() / e2e / 1e9, None, check_label(check), {}))
        return result

    def add_baseline_rows(self, name: str, target: Problem, timed_queries: int, timing: dict, ours: dict,
                          check: dict, versus: str) -> None:
        """Rows for a baseline measured on ``timed_queries`` queries, its search time scaled to
        ``target``'s query count, with speedups of nnmargin (timing ``ours``) like for like."""
        scale = target.n / timed_queries
        extra = f"; extrapolated from {timed_queries} queries" if scale != 1.0 else ""
        if name == "faiss":
            build = timing["phases"]["build"]
            search = [s * scale for s in timing["phases"]["search"]]
            total = [b + s for b, s in zip(build, search)]
            variants = ((f"faiss search + combine (indexes built{extra}){versus}", search, ours["phases"]["search"]),
                        (f"faiss end-to-end (float32 conv. + build + search{extra}){versus}", total,
                         phase_sum(ours, ("prepare", "search"))))
        else:
            total = [s * scale for s in timing["phases"]["total"]]
            variants = ((f"numpy float32 matmul trick (end-to-end{extra}){versus}", total,
                         phase_sum(ours, ("prepare", "search"))),)
        for method, theirs, mine in variants:
            seconds = median(theirs)
            paired = [t / m for t, m in zip(theirs, mine)]  # same round: same machine load
            detail = {"seconds_all": theirs, "scale": scale, "timed_queries": timed_queries,
                      "paired_speedup_median": median(paired), "check": check}
            self.add(Row(target.name, method, seconds, target.ops() / seconds / 1e9, seconds / median(mine),
                         check_label(check), detail))

    # --- the benchmark sections ---

    def uint8_l2_random(self, rng) -> None:
        n, m, d = self.sizes.cifar
        for n_classes in self.sizes.cifar_classes:
            problem = random_uint8_problem(f"CIFAR-shaped random uint8 l2, {n_classes} classes", n, m, d,
                                           n_classes, "l2", rng)
            self.register(problem, "1. uint8 l2, CIFAR-shaped")
            self.compare(problem)

    def uint8_l2_mnist(self) -> None:
        s = self.sizes
        problem = mnist_problem(self.args.data_dir, s.mnist_queries, s.mnist_train)
        self.register(problem, "2. MNIST uint8 l2")
        self.compare(problem)

    def uint8_l1_linf(self, rng) -> None:
        n, m, d = self.sizes.lp
        base = random_uint8_problem("", n, m, d, 10, "linf", rng)
        for metric in ("linf", "l1"):
            problem = Problem(f"CIFAR-shaped random uint8 {metric}, 10 classes", base.x_train, base.y_train,
                              base.x_query, base.y_query, metric)
            self.register(problem, f"3. uint8 {metric}")
            self.compare(problem, baseline_queries=self.sizes.lp_faiss_queries, with_numpy=False)

    def float32_l2(self, rng) -> None:
        n, m, d = self.sizes.float32
        problem = random_float32_problem(f"float32 features l2 (D={d}), 10 classes", n, m, d, 10, rng)
        self.register(problem, "4. float32 l2")
        self.compare(problem)

    def isa_variants(self, rng) -> None:
        """Every CPU kernel variant on one problem per (dtype, metric), interleaved; results must be
        identical across variants and exact."""
        n, m, d = self.sizes.isa
        uint8_base = random_uint8_problem("", n, m, d, 10, "l2", rng)
        float_base = random_float32_problem("", n, m, 512, 10, rng)
        isas = nnmargin.cpu_isas()
        for base, metric in ((uint8_base, "l2"), (uint8_base, "l1"), (uint8_base, "linf"), (float_base, "l2")):
            problem = Problem(f"ISA variants: {base.x_train.dtype} {metric} (N={n}, M={m}, D={base.d})",
                              base.x_train, base.y_train, base.x_query, base.y_query, metric)
            self.register(problem, "5. ISA dispatch")
            trainset = nnmargin_prepare(problem)
            timings = interleaved([Method(isa, nnmargin_method(problem, self.args.threads, isa, trainset),
                                          self.args.slow_repeats) for isa in isas])
            ref = exact_reference(problem, self.args.check_queries)
            fastest = timings[isas[0]]
            for isa in isas:
                got = timings[isa]["result"]
                check = check_exact(got, ref)
                identical = all(np.array_equal(getattr(got, f), getattr(fastest["result"], f))
                                for f in ("dist_same", "idx_same", "dist_other", "idx_other"))
                label = check_label(check) + (f", identical to {isas[0]}" if identical else f", DIFFERS from {isas[0]}")
                t = median(timings[isa]["phases"]["search"])
                self.add(Row(problem.name, f"nnmargin isa={isa}", t, problem.ops() / t / 1e9, None, label,
                             {"seconds_all": timings[isa]["phases"]["search"], "exact_check": check,
                              f"slowdown_vs_{isas[0]}": t / median(fastest["phases"]["search"]),
                              "identical": identical}))


# -------------------------------------------------------------------------------------- reporting


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        info = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        fields = ("Model name", "CPU family", "Model", "Stepping", "Hypervisor vendor", "L2 cache", "L3 cache")
        return "; ".join(f"{k.strip()}: {info[k].strip()}" for k in fields if k in info)
    except (OSError, subprocess.CalledProcessError):
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "unknown")


def git_revision() -> str:
    try:
        root = Path(__file__).resolve().parent.parent
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True).stdout
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "csrc", "python"], cwd=root,
                               capture_output=True, text=True).stdout
        return rev.strip() + (" (csrc/ or python/ modified)" if dirty.strip() else "")
    except OSError:
        return "unknown"


def core_module_info() -> str:
    """Path and build time of the loaded nnmargin extension (the C++ may be rebuilt between runs)."""
    path = Path(nnmargin._core.__file__)
    built = datetime.datetime.fromtimestamp(path.stat().st_mtime, datetime.timezone.utc)
    return f"{path.name}, built {built.isoformat(timespec='seconds')}"


def machine_info(args) -> dict:
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in [sys.executable.rsplit("/", 1)[-1]] + sys.argv),
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "threads_used": args.threads,
        "load_average_at_start": list(os.getloadavg()),
        "nnmargin_version": nnmargin.__version__,
        "nnmargin_git": git_revision(),
        "nnmargin_core_module": core_module_info(),
        "nnmargin_cpu_isas": nnmargin.cpu_isas(),
        "faiss_version": faiss.__version__,
        "faiss_compile_options": faiss.get_compile_options().strip(),
        "numpy_version": np.__version__,
        "numpy_blas": blas_name(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def blas_name() -> str:
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # show_config's layout varies across numpy versions
        return "unknown"


def format_seconds(s: float) -> str:
    return f"{s:.3f}" if s >= 0.1 else f"{s:.4f}"


def markdown_table(rows) -> str:
    lines = ["| problem | method | seconds | GOP/s | nnmargin speedup | check |", "|---|---|---:|---:|---:|---|"]
    for r in rows:
        speed = f"**{r.speedup:.1f}x**" if r.speedup else ""
        if r.speedup and "paired_speedup_median" in r.detail:
            speed += f" ({r.detail['paired_speedup_median']:.1f}x)"
        lines.append(f"| {r.problem} | {r.method} | {format_seconds(r.seconds)} | {r.gops:.1f} | {speed} | {r.check} |")
    return "\n".join(lines)


def headline(rows) -> list[dict]:
    """Like-for-like nnmargin speedups over faiss: the numbers the README quotes."""
    out = []
    for r in rows:
        if r.method.startswith("faiss") and r.speedup:
            out.append({"problem": r.problem, "comparison": r.method, "speedup": round(r.speedup, 2)})
    return out


def all_checks_ok(rows) -> bool:
    return all("MISMATCH" not in r.check and "DIFFERS" not in r.check for r in rows)


def write_outputs(out_dir: Path, info: dict, runner: Runner, quick: bool) -> None:
    """cpu_benchmark[_quick].json (everything) and .md (header + table) in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = "cpu_benchmark_quick" if quick else "cpu_benchmark"
    all_ok = all_checks_ok(runner.rows)
    payload = {"machine": info, "all_checks_ok": all_ok, "problems": runner.problems,
               "ops_convention": "GOP/s = 2*N*M*D / seconds / 1e9 for every method and metric "
                                 "(one multiply-add, or one subtract + abs/max, counted as 2 ops)",
               "headline": headline(runner.rows), "rows": [r.__dict__ for r in runner.rows]}
    (out_dir / f"{stem}.json").write_text(json.dumps(payload, indent=1, default=float) + "\n", encoding="utf-8")
    md = [f"# nnmargin CPU benchmark{' (quick smoke run)' if quick else ''}", "",
          f"- command: `{info['command']}`", f"- date (UTC): {info['date_utc']}",
          f"- CPU: {info['cpu']}; {info['logical_cpus']} logical CPUs; **{info['threads_used']} threads for every method**",
          f"- load average (1/5/15 min) at start {fmt_load(info['load_average_at_start'])}, "
          f"at end {fmt_load(info['load_average_at_end'])} (the load average counts this benchmark's own threads); "
          f"CPU used by other processes during the run: {fmt_contention(info['contention_during_run'])}, "
          f"worst section {worst_section(runner.problems)}",
          f"- nnmargin {info['nnmargin_version']} (git {info['nnmargin_git']}; {info['nnmargin_core_module']}), "
          f"ISAs {info['nnmargin_cpu_isas']}; "
          f"faiss {info['faiss_version']} ({info['faiss_compile_options']}); numpy {info['numpy_version']} "
          f"({info['numpy_blas']}); Python {info['python']}",
          f"- total benchmark wall time: {info['total_seconds']:.0f} s; all correctness checks: "
          f"**{'passed' if all_ok else 'FAILED'}**", "",
          "Seconds are medians after one warm-up run. GOP/s = 2·N·M·D / seconds for every method and metric. "
          "\"nnmargin speedup\" = baseline seconds / nnmargin seconds, like for like (search vs search, "
          "end-to-end vs end-to-end, same query set); in brackets the median of the per-round ratios (methods "
          "are timed in alternating rounds, so each round's ratio sees one machine load).", "", markdown_table(runner.rows), ""]
    (out_dir / f"{stem}.md").write_text("\n".join(md), encoding="utf-8")


def fmt_contention(c: dict) -> str:
    return f"{c['other_processes_cores']:.2f} cores (hypervisor steal {c['steal_cores']:.2f})"


def worst_section(problems) -> str:
    worst = max(problems, key=lambda p: p["contention"]["other_processes_cores"])
    return f"{fmt_contention(worst['contention'])} ({worst['name']})"


def fmt_load(values) -> str:
    return "/".join(f"{v:.2f}" for v in values)


def main(argv=None) -> int:
    args = parse_args(argv)
    set_thread_env(args.threads)
    import_libraries(args.threads)
    start = time.perf_counter()
    info = machine_info(args)
    if info["load_average_at_start"][0] > 0.5 * (os.cpu_count() or 1):
        print(f"WARNING: load average {fmt_load(info['load_average_at_start'])}: timings may be noisy", flush=True)
    runner = Runner(args, QUICK if args.quick else FULL)
    run_start = cpu_snapshot()
    rng = np.random.default_rng(args.seed)
    runner.uint8_l2_random(rng)
    runner.uint8_l2_mnist()
    runner.uint8_l1_linf(rng)
    runner.float32_l2(rng)
    runner.isa_variants(rng)
    runner.close_section()
    info["contention_during_run"] = other_load(run_start, cpu_snapshot())
    info["load_average_at_end"] = list(os.getloadavg())
    info["total_seconds"] = time.perf_counter() - start
    write_outputs(Path(args.out), info, runner, args.quick)
    print(f"wrote {args.out}; total {info['total_seconds']:.0f} s", flush=True)
    return 0 if all_checks_ok(runner.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
