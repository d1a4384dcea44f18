"""Seconds per query and gap statistics of bound="exact" on the first N MNIST test points against
the 60000 training points, one thread. Usage:

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
        python benchmarks/results/exact/run.py --data-dir /work/shared/data --n 200 --norms l2 linf --tag after
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

import nnmargin
from nnmargin.datasets import load_mnist


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--norms", nargs="+", default=["l2", "linf"])
    ap.add_argument("--tag", default="after")
    ap.add_argument("--box", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).parent))
    args = ap.parse_args()
    xtr, ytr = load_mnist("train", args.data_dir, download=False)
    xte, yte = load_mnist("test", args.data_dir, download=False)
    train = nnmargin.TrainSet(xtr, ytr)
    nnmargin.certify(xte[:2], yte[:2], train, num_threads=1)  # build the layout outside the timing
    train.float64(1.0)
    rows = []
    for norm in args.norms:
        start = time.perf_counter()
        ex = nnmargin.certify(xte[:args.n], yte[:args.n], train, bound="exact", norm=norm, num_threads=1,
                              box=True if args.box else None)
        seconds = time.perf_counter() - start
        ok = ex.correct
        row = {"norm": norm, "box": args.box, "n": args.n, "seconds": seconds, "s_per_query": seconds / args.n,
               "correct": int(ok.sum()), "programs_solved": ex.info.get("programs_solved"),
               "cells_screened": ex.info.get("cells_screened"),
               "median_radius": float(np.median(ex.radius[ok]))}
        upper = getattr(ex, "radius_upper", None)
        if upper is not None:
            lo, hi = ex.radius[ok], upper[ok]
            gap = (hi - lo) / np.maximum(hi, np.finfo(float).tiny)
            row.update(median_rel_gap=float(np.nanmedian(gap)), max_rel_gap=float(np.nanmax(gap)),
                       not_closed=int(np.sum(~(gap <= 1e-6))), no_upper=int(np.sum(np.isnan(hi))))
        rows.append({**row, "radius": ex.radius.tolist(),
                     "radius_upper": None if upper is None else [None if np.isnan(v) else v for v in upper.tolist()]})
        print({k: v for k, v in row.items()}, flush=True)
    meta = {"command": "OMP_NUM_THREADS=1 python benchmarks/results/exact/run.py " + " ".join(
                f"--{k.replace('_', '-')} {' '.join(v) if isinstance(v, list) else v}" for k, v in vars(args).items()
                if k not in ("out", "box") and v is not None) + (" --box" if args.box else ""),
            "cpu": cpu_model(), "threads": 1, "nnmargin": nnmargin.__version__, "tag": args.tag}
    Path(args.out, f"mnist_first{args.n}_{args.tag}{'_box' if args.box else ''}.json").write_text(
        json.dumps({**meta, "runs": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
