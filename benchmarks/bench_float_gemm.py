"""Quick float l2 timing: nnmargin vs faiss-cpu (one IndexFlatL2 per class), GOP = 2 N M D.

    python benchmarks/bench_float_gemm.py [--threads 2] [--cases d512,d64,far] [--isa auto]
"""
from __future__ import annotations

import argparse
import time

import faiss
import numpy as np

import nnmargin

CASES = {  # name: (n, m, d, far from the origin)
    "d512": (2000, 20000, 512, False),
    "d64": (10000, 100000, 64, False),
    "far": (2000, 20000, 64, True),
    "d64_f64": (2000, 20000, 64, False),
}


def make(n, m, d, far, rng, dtype=np.float32):
    if far:  # clustered far from the origin: 1e3 + 1e-3 * noise, GEMM form cancels hard
        base = rng.standard_normal(d) * 1e3
        t = (base + 1e-3 * rng.standard_normal((m, d))).astype(dtype)
        x = (base + 1e-3 * rng.standard_normal((n, d))).astype(dtype)
    else:
        t, x = rng.standard_normal((m, d)).astype(dtype), rng.standard_normal((n, d)).astype(dtype)
    return x, rng.integers(0, 10, n), t, rng.integers(0, 10, m)


def faiss_run(x, y, t, ty):
    classes = np.unique(ty)
    out = []
    for c in classes:
        idx = faiss.IndexFlatL2(t.shape[1])
        idx.add(np.ascontiguousarray(t[ty == c], dtype=np.float32))
        out.append(idx)
    start = time.perf_counter()
    q = np.ascontiguousarray(x, dtype=np.float32)
    for idx in out:
        idx.search(q, 1)
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cases", default="d512,d64,far")
    ap.add_argument("--isa", default="auto")
    ap.add_argument("--no-faiss", action="store_true")
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()
    faiss.omp_set_num_threads(a.threads)
    for name in a.cases.split(","):
        n, m, d, far = CASES[name]
        rng = np.random.default_rng(0)
        dtype = np.float64 if name.endswith("f64") else np.float32
        x, y, t, ty = make(n, m, d, far, rng, dtype)
        ts = nnmargin.TrainSet(t, ty)
        ts.prepared("l2")
        gop = 2.0 * n * m * d / 1e9
        best = np.inf
        for _ in range(a.repeat):
            s = time.perf_counter()
            nnmargin.certify(x, y, ts, metric="l2", num_threads=a.threads, isa=a.isa)
            best = min(best, time.perf_counter() - s)
        line = f"{name:8s} {n}x{m}x{d}: nnmargin[{a.isa}] {best:7.3f} s {gop / best:7.1f} GOP/s"
        if not a.no_faiss:
            f = min(faiss_run(x, y, t, ty) for _ in range(a.repeat))
            line += f" | faiss {f:7.3f} s {gop / f:7.1f} GOP/s | ratio {f / best:5.2f}x"
        print(line, flush=True)


if __name__ == "__main__":
    main()
