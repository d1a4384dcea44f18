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

Every result is checked in the same run: nnmargin against the exact reference ``nnmargin.reference``
on a subset of queries (indices equal, distances equal to 1e-12 relative), and against each
baseline on every query the baseline ran (distances within the baseline's float32 rounding; where
a baseline returns a different index, that index must be no closer in exact arithmetic).

Reproduce everything (a few minutes on 2 cores; see README.md):

    python benchmarks/bench_cpu.py --threads 2 --out benchmarks/results

Smoke run (seconds): add ``--quick`` (writes ``cpu_benchmark_quick.{json,md}``).

This file is the entry point; the pieces are cases.py (the problems), baselines.py (the methods
timed), checks.py (correctness checks), harness.py (timing, machine info, outputs) and suite.py
(the sections: which case is timed with which method).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


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
    parser.add_argument("--isa", default="auto", choices=["auto", *PINNED_ISA],
                        help="run every nnmargin row with this variant and pin faiss (FAISS_SIMD_LEVEL) and its "
                             "OpenBLAS (OPENBLAS_CORETYPE) to the same instruction set: the ratios of a CPU "
                             "that has only that ISA, measured on this one (default auto: the best of each)")
    return parser.parse_args(argv)


# --isa NAME: (faiss SIMD level, OpenBLAS core type) with no instruction above the variant's. The
# core types are OpenBLAS's names of the first CPUs with that ISA (Haswell: AVX2, SkylakeX: AVX-512).
# --isa avx512_vnni is also the strongest faiss on AMD Zen 4 / 5: faiss-cpu's OpenBLAS (0.3.15) does
# not know those cores and runs its AVX2 (Haswell) sgemm there unless told otherwise.
PINNED_ISA = {"avx2": ("AVX2", "Haswell"), "avx512": ("AVX512", "SkylakeX"), "avx512_vnni": ("AVX512", "SkylakeX")}


def pin_isa(isa: str) -> None:
    """Before faiss and OpenBLAS load: keep them to the instruction set of nnmargin's variant ``isa``."""
    if isa != "auto":
        os.environ["FAISS_SIMD_LEVEL"], os.environ["OPENBLAS_CORETYPE"] = PINNED_ISA[isa]


def set_thread_env(threads: int) -> None:
    """Pin OpenMP / BLAS thread pools to ``threads`` before the libraries load."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)


def main(argv=None) -> int:
    args = parse_args(argv)
    set_thread_env(args.threads)
    pin_isa(args.isa)
    # numpy, faiss and nnmargin load with these modules, so only now, after the thread-count
    # environment variables are set: OpenBLAS and OpenMP read them once, when they load.
    import baselines
    import harness
    from cases import FULL, QUICK
    from suite import Runner

    baselines.use_threads(args.threads)
    start = time.perf_counter()
    info = harness.machine_info(args.threads, args.isa)
    if info["load_average_at_start"][0] > 0.5 * (os.cpu_count() or 1):
        print(f"WARNING: load average {harness.fmt_load(info['load_average_at_start'])}: timings may be noisy",
              flush=True)
    runner = Runner(args, QUICK if args.quick else FULL)
    run_start = harness.cpu_snapshot()
    runner.run_all()
    info["contention_during_run"] = harness.other_load(run_start, harness.cpu_snapshot())
    info["load_average_at_end"] = list(os.getloadavg())
    info["total_seconds"] = time.perf_counter() - start
    info["peaks"] = runner.peaks
    harness.write_outputs(Path(args.out), info, runner.rows, runner.problems, args.quick)
    print(f"wrote {args.out}; total {info['total_seconds']:.0f} s", flush=True)
    return 0 if harness.all_checks_ok(runner.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
