"""Tighter 1NN certificates: cost and effect of the bisector and exact bounds.

    python benchmarks/bench_bounds.py --data-dir ../shared/data --threads 2 --out benchmarks/results

1. Time of ``bound="bisector"`` relative to plain ``certify`` (margin) on full MNIST and on the
   3-vs-5 pair (the goal is <= 2x).
2. ``bound="exact"`` on the first 1000 MNIST test points against the full 60k training set: seconds
   per point (whole command, data loading included), programs (QPs / LPs) solved, and cells the
   screening ruled out (taken from the exact runs of 3).
3. Certified robust accuracy of the l2-metric 1NN on MNIST and Fashion-MNIST (full train / test) at
   a few l2 and linf eps for each bound, produced by the package's own command
   (``nnmargin certify --bound ... --norm ... --out ...``; exact on the first 1000 test points).
Writes bounds_benchmark.json and bounds_benchmark.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import nnmargin

EPS = {"l2": [0.5, 1.0, 1.5, 2.0], "linf": [0.05, 0.1, 0.2, 0.3]}
EXACT_POINTS = 1000


def median_time(fn, repeats=3):
    fn()  # warm-up: layouts prepared, caches filled
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def bisector_cost(data_dir, threads):
    """Seconds of margin vs bisector certify (pivots 1) on full MNIST and on the 3-vs-5 pair."""
    x_tr, y_tr = nnmargin.datasets.load_mnist("train", data_dir=data_dir, download=False)
    x_te, y_te = nnmargin.datasets.load_mnist("test", data_dir=data_dir, download=False)
    pair = nnmargin.datasets.binary_pair("mnist", 3, 5, data_dir=data_dir, download=False)
    rows = []
    for name, (xt, yt, xq, yq) in {"MNIST 10 classes": (x_tr, y_tr, x_te, y_te),
                                   "MNIST 3 vs 5": (pair.x_train, pair.y_train, pair.x_test, pair.y_test)}.items():
        ts = nnmargin.TrainSet(xt, yt)
        row = {"problem": name, "train": len(yt), "queries": len(yq)}
        for norm in ("l2", "linf"):
            margin = median_time(lambda: nnmargin.certify(xq, yq, ts, norm=norm, num_threads=threads))
            bisector = median_time(lambda: nnmargin.certify(xq, yq, ts, bound="bisector", norm=norm, num_threads=threads))
            row[f"margin_s_{norm}"], row[f"bisector_s_{norm}"] = margin, bisector
            row[f"ratio_{norm}"] = bisector / margin
        rows.append(row)
    return rows


def exact_cost(accuracy_rows):
    """Cost of the exact bound from the MNIST runs of the accuracy table (first EXACT_POINTS test
    points against all 60k training points)."""
    rows = []
    for r in accuracy_rows:
        if r["dataset"] == "mnist" and r["bound"] == "exact":
            correct = round(r["clean"] * r["queries"])
            rows.append({"norm": r["norm"], "points": r["queries"], "correct": correct, "seconds": r["seconds"],
                         "seconds_per_point": r["seconds"] / r["queries"],
                         "programs_solved": r["programs_solved"],
                         "programs_per_correct_point": r["programs_solved"] / max(correct, 1),
                         "cells_per_correct_point": r["cells_screened"] / max(correct, 1)})
    return rows


def robust_accuracy_tables(data_dir, threads, workdir: Path):
    """Run `nnmargin certify` for each dataset, norm and bound; collect robust accuracy per eps."""
    rows = []
    for dataset in ("mnist", "fashion-mnist"):
        for norm in ("l2", "linf"):
            for bound in ("margin", "bisector", "exact"):
                out = workdir / f"{dataset}_{norm}_{bound}.json"
                cmd = ["nnmargin", "certify", "--dataset", dataset, "--data-dir", str(data_dir), "--no-download",
                       "--bound", bound, "--norm", norm, "--eps", *map(str, EPS[norm]), "--out", str(out), "--quiet"]
                if threads:
                    cmd += ["--threads", str(threads)]
                if bound == "exact":
                    cmd += ["--limit", str(EXACT_POINTS)]
                start = time.perf_counter()
                subprocess.run(cmd, check=True)
                doc = json.loads(out.read_text())
                rows.append({"dataset": dataset, "norm": norm, "bound": bound, "queries": doc["n_queries"],
                             "clean": doc["accuracy"], "robust": doc["robust_accuracy"],
                             "seconds": time.perf_counter() - start, "command": " ".join(cmd),
                             "programs_solved": doc.get("programs_solved"), "cells_screened": doc.get("cells_screened")})
                out.unlink()
    return rows


def markdown(report) -> str:
    lines = ["# Tighter 1NN certificates", "", f"Machine: {report['machine']}; threads {report['threads']}; "
             f"nnmargin {report['nnmargin']}; {report['date']}.", "", f"Command: `{report['command']}`", "",
             "## Cost of the bisector bound (pivots = 1) relative to plain certify", "",
             "| problem | queries x train | norm | margin s | bisector s | ratio |", "| --- | --- | --- | ---: | ---: | ---: |"]
    for r in report["bisector_cost"]:
        for norm in ("l2", "linf"):
            lines.append(f"| {r['problem']} | {r['queries']} x {r['train']} | {norm} | {r[f'margin_s_{norm}']:.3f} | "
                         f"{r[f'bisector_s_{norm}']:.3f} | {r[f'ratio_{norm}']:.2f}x |")
    lines += ["", f"## Exact radii, first {EXACT_POINTS} MNIST test points vs 60000 training points", "",
              "| norm | s / point | programs solved / correct point | cells screened / correct point |",
              "| --- | ---: | ---: | ---: |"]
    for r in report["exact_cost"]:
        lines.append(f"| {r['norm']} | {r['seconds_per_point']:.3f} | {r['programs_per_correct_point']:.2f} | "
                     f"{r['cells_per_correct_point']:.0f} |")
    lines += ["", "## Certified robust accuracy of the l2-metric 1NN (full train; exact: first 1000 test points)", ""]
    for norm in ("l2", "linf"):
        header = " | ".join(f"eps {e:g}" for e in EPS[norm])
        lines += [f"| dataset | bound ({norm}) | queries | clean | {header} |",
                  "| --- | --- | ---: | ---: |" + " ---: |" * len(EPS[norm])]
        for r in report["robust_accuracy"]:
            if r["norm"] == norm:
                cells = " | ".join(f"{100 * r['robust'][str(float(e))]:.2f}" for e in EPS[norm])
                lines.append(f"| {r['dataset']} | {r['bound']} | {r['queries']} | {100 * r['clean']:.2f} | {cells} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("NNMARGIN_DATA", "../shared/data"))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    report = {"machine": f"{cpu}, {os.cpu_count()} cores, ISAs {nnmargin.cpu_isas()}", "threads": args.threads,
              "nnmargin": nnmargin.__version__, "date": time.strftime("%Y-%m-%d %H:%M"),
              "command": " ".join([sys.executable.split("/")[-1]] + sys.argv), "load_average": os.getloadavg()}
    report["bisector_cost"] = bisector_cost(args.data_dir, args.threads)
    report["robust_accuracy"] = robust_accuracy_tables(args.data_dir, args.threads, out)
    report["exact_cost"] = exact_cost(report["robust_accuracy"])
    report["load_average_after"] = os.getloadavg()
    (out / "bounds_benchmark.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "bounds_benchmark.md").write_text(markdown(report) + "\n")
    print(markdown(report))


if __name__ == "__main__":
    main()
