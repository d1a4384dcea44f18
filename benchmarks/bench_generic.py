"""GOP/s of the portable (isa="generic") uint8 kernels on a CIFAR-shaped random problem.

GOP = 2 * N * M * D as in benchmarks/cases.py. Usage:
  python benchmarks/bench_generic.py [--n 500] [--m 20000] [--d 3072] [--threads 2] [--metric l2] [--isa generic]
"""
import argparse
import time

import numpy as np

import nnmargin


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--m", type=int, default=20000)
    p.add_argument("--d", type=int, default=3072)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--metric", default="l2")
    p.add_argument("--isa", default="generic")
    p.add_argument("--repeat", type=int, default=1)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (a.m, a.d), dtype=np.uint8)
    labels = rng.integers(0, 10, a.m)
    x = rng.integers(0, 256, (a.n, a.d), dtype=np.uint8)
    y = rng.integers(0, 10, a.n)
    index = nnmargin.TrainSet(train, labels)
    nnmargin.certify(x[:8], y[:8], index, metric=a.metric, isa=a.isa, num_threads=a.threads)  # layout built
    best, cpu = float("inf"), float("inf")
    for _ in range(a.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        nnmargin.certify(x, y, index, metric=a.metric, isa=a.isa, num_threads=a.threads)
        best, cpu = min(best, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
    gop = 2.0 * a.n * a.m * a.d / 1e9
    # CPU seconds too: on a shared machine the wall clock also counts other processes' time slices.
    print(f"{a.isa} uint8 {a.metric} {a.n} x {a.m} x {a.d}, {a.threads} threads: {best:.2f} s, {gop / best:.1f} GOP/s "
          f"(CPU {cpu:.2f} s: {gop / cpu:.1f} GOP/s per busy core)")


if __name__ == "__main__":
    main()
