"""nnmargin.distributed against the single-machine certify, in one run on one machine.

    python benchmarks/bench_distributed.py --data-dir ../shared/data --out benchmarks/results
    python benchmarks/bench_distributed.py --quick --out /tmp/bench      # small sizes, seconds

For each case: prepare + certify on one machine (all threads), then on a LocalCluster of 1 worker
process (all threads) and of 2 worker processes (threads split between them), the training set in
one shard per worker. Every distributed result is checked identical to the local one, field by
field. Reported: medians of --repeats calls, the overhead of 1 worker against local, and the
speed-up of 2 workers against 1. Writes distributed_benchmark.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import cpu_model, git_revision  # noqa: E402

import nnmargin  # noqa: E402
import nnmargin.distributed as nd  # noqa: E402

FIELDS = ("pred", "idx_same", "idx_other", "dist_same", "dist_other", "radius", "target_index")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default="../shared/data", help="holds mnist/ (official files)")
    p.add_argument("--out", required=True, help="folder for distributed_benchmark.{json,md}")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads in all (default: all cores)")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per configuration (median)")
    p.add_argument("--quick", action="store_true", help="small sizes: checks the script, not the speed")
    return p.parse_args(argv)


def mnist_case(args):
    from nnmargin import datasets

    x, y = datasets.load("mnist", "train", args.data_dir, download=False)
    xt, yt = datasets.load("mnist", "test", args.data_dir, download=False)
    if args.quick:
        x, y, xt, yt = x[:6000], y[:6000], xt[:500], yt[:500]
    return {"name": f"MNIST uint8 l2, {len(xt)} x {len(x)} x 784", "x_train": x, "y_train": y,
            "x_query": xt, "y_query": yt, "bounds": ("margin", "bisector")}


def features_case(args):
    m, n, d = (200_000, 200, 128) if args.quick else (2_000_000, 500, 128)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(10, d)).astype(np.float32) * 2
    y = rng.integers(0, 10, m)
    x = centres[y] + rng.normal(size=(m, d)).astype(np.float32)
    yq = rng.integers(0, 10, n)
    xq = centres[yq] + rng.normal(size=(n, d)).astype(np.float32)
    return {"name": f"features float32 l2, {n} x {m} x {d} (10 Gaussian classes)", "x_train": x, "y_train": y,
            "x_query": xq, "y_query": yq, "bounds": ("margin",)}


def timed(fn, repeats):
    seconds, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result


def run_local(case, bound, threads, repeats):
    start = time.perf_counter()
    train = nnmargin.TrainSet(case["x_train"], case["y_train"])
    train.prepared("l2")
    prepare = time.perf_counter() - start
    call = lambda: nnmargin.certify(case["x_query"], case["y_query"], train, bound=bound, num_threads=threads)  # noqa: E731
    nnmargin.certify(case["x_query"][:10], case["y_query"][:10], train, bound=bound, num_threads=threads)  # warm-up
    seconds, result = timed(call, repeats)
    return prepare, seconds, result


def run_cluster(case, bound, workers, threads, repeats):
    from distributed import Client, LocalCluster

    per_worker = max(1, threads // workers)
    with LocalCluster(n_workers=workers, threads_per_worker=per_worker, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        start = time.perf_counter()
        rows = math.ceil(len(case["y_train"]) / workers)
        train = nd.TrainSet(case["x_train"], case["y_train"], client=client, shard_rows=rows)
        nd.certify(case["x_query"][:10], case["y_query"][:10], train, bound=bound)  # layouts prepared here
        prepare = time.perf_counter() - start
        seconds, result = timed(lambda: nd.certify(case["x_query"], case["y_query"], train, bound=bound), repeats)
        train.close()
    return prepare, seconds, result


def identical(a, b) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in FIELDS if getattr(a, f) is not None)


def main(argv=None) -> int:
    args = parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for make in (mnist_case, features_case):
        case = make(args)
        for bound in case["bounds"]:
            local_prep, local_s, local = run_local(case, bound, args.threads, args.repeats)
            row = {"case": case["name"], "bound": bound, "local_prepare_s": local_prep, "local_s": local_s}
            for workers in (1, 2):
                prep, sec, res = run_cluster(case, bound, workers, args.threads, args.repeats)
                row[f"w{workers}_prepare_s"], row[f"w{workers}_s"] = prep, sec
                row[f"w{workers}_identical"] = identical(local, res)
            row["overhead_1_worker"] = row["w1_s"] / local_s - 1
            row["speedup_2_vs_1"] = row["w1_s"] / row["w2_s"]
            rows.append(row)
            print(f"{case['name']}, {bound}: local {local_s:.3f} s, 1 worker {row['w1_s']:.3f} s "
                  f"({100 * row['overhead_1_worker']:+.1f} %), 2 workers {row['w2_s']:.3f} s; identical: "
                  f"{row['w1_identical'] and row['w2_identical']}", flush=True)
    info = {"command": " ".join(["python"] + sys.argv), "cpu": cpu_model(), "logical_cpus": os.cpu_count(),
            "threads": args.threads, "repeats": args.repeats, "quick": args.quick,
            "nnmargin_git": git_revision(), "load_average_at_start": list(os.getloadavg())}
    (out_dir / "distributed_benchmark.json").write_text(json.dumps({"machine": info, "rows": rows}, indent=1) + "\n")
    lines = ["# nnmargin.distributed vs one machine", "", f"`{info['command']}`", "",
             f"CPU: {info['cpu']}; {info['logical_cpus']} logical CPUs, {args.threads} threads in every "
             f"configuration (2 workers: {max(1, args.threads // 2)} each); medians of {args.repeats} calls.", "",
             "| case | bound | local | 1 worker | overhead | 2 workers | 2 vs 1 | identical |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['bound']} | {r['local_s']:.3f} s | {r['w1_s']:.3f} s | "
                     f"{100 * r['overhead_1_worker']:+.1f} % | {r['w2_s']:.3f} s | {r['speedup_2_vs_1']:.2f}x | "
                     f"{'yes' if r['w1_identical'] and r['w2_identical'] else 'NO'} |")
    lines += ["", "Prepare (s, local / 1 worker / 2 workers): " + "; ".join(
        f"{r['case'].split(',')[0]} {r['bound']}: {r['local_prepare_s']:.2f} / {r['w1_prepare_s']:.2f} / "
        f"{r['w2_prepare_s']:.2f}" for r in rows), ""]
    (out_dir / "distributed_benchmark.md").write_text("\n".join(lines))
    ok = all(r["w1_identical"] and r["w2_identical"] for r in rows)
    print(f"wrote {out_dir}; all identical: {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
