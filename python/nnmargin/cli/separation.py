"""``nnmargin separation``: r-separation of a dataset (Yang et al. 2020, Table 1 and Figure 2).

    nnmargin separation                                  # embedded MNIST sample, l∞, both splits
    nnmargin separation --dataset mnist --metric linf --out sep.json --plot figures/
    nnmargin separation --dataset fashion-mnist --metric l2 --split train --csv sep.csv
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

from .. import __version__, cpu_isas, datasets, plots
from .._names import METRICS
from ..separation import DEFAULT_EPS, TEST_TRAIN, TRAIN_TRAIN, SeparationResult, separation
from ._certify_data import SAMPLE, add_dataset_arguments, check_dataset_arguments
from ._common import Command, arg_type, check_output_paths, is_terminal, positive_int, require

SPLITS = ("train", "test", "both")
_KINDS = {"train": (TRAIN_TRAIN,), "test": (TEST_TRAIN,), "both": (TRAIN_TRAIN, TEST_TRAIN)}
_TIMING_NAMES = {"load_s": "load", "train_train_s": TRAIN_TRAIN, "test_train_s": TEST_TRAIN, "total_s": "total"}

_eps_arg = arg_type(float, lambda v: bool(np.isfinite(v) and v >= 0), "eps must be a finite number >= 0, got {text!r}")


@dataclasses.dataclass
class _Data:
    description: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def add_arguments(p) -> None:
    """The options of ``nnmargin separation``."""
    data = p.add_argument_group("data")
    add_dataset_arguments(data, "the embedded MNIST sample (2000 train / 500 test images)")
    data.add_argument("--split", choices=SPLITS, default="both",
                      help="train: each training point against the training points of the other classes "
                           "(train-train); test: each test point against the training set (test-train); "
                           "both (default)")

    sep = p.add_argument_group("separation")
    sep.add_argument("--metric", choices=METRICS, default="linf",
                     help="norm of the distances (default: linf, as in Yang et al.)")
    sep.add_argument("--eps", nargs="+", type=_eps_arg, metavar="EPS",
                     help="report the fraction of points farther than 2 * EPS from every other-class "
                          "training point, on the [0, 1] pixel scale. Defaults per metric: "
                          + "; ".join(f"{m}: " + " ".join(f"{e:.4g}" for e in DEFAULT_EPS[m]) for m in METRICS))

    run_group = p.add_argument_group("execution")
    run_group.add_argument("--threads", type=positive_int, metavar="N", help="CPU threads (default: all cores)")

    out = p.add_argument_group("output")
    out.add_argument("--out", metavar="FILE.json",
                     help="write run metadata (command, CPU, threads, wall times) and the statistics of each "
                          "split as JSON (per-point distances go to --csv)")
    out.add_argument("--csv", metavar="FILE.csv",
                     help="write one row per point: split, index, label, distance to the nearest other-class "
                          "training point, its index and its label")
    out.add_argument("--plot", metavar="DIR",
                     help="write DIR/separation_<dataset>_<metric>.png: histograms of the distances (as Yang "
                          "et al.'s Figure 2) with lines at the minimum (2r) and at 2 * eps")
    out.add_argument("--quiet", action="store_true", help="print nothing on success (no progress bar, no table)")


def check(args) -> None:
    """Rules between options, checked before any data is loaded."""
    check_dataset_arguments(args)
    check_output_paths(args)


def load(args) -> _Data:
    """The training set, and the test set when --split needs it (empty otherwise)."""
    if args.dataset == SAMPLE:
        s = datasets.load_sample()
        return _Data(f"{s.name} (embedded in nnmargin)", s.x_train, s.y_train, s.x_test, s.y_test)
    download = not args.no_download
    x_train, y_train = datasets.load(args.dataset, "train", args.data_dir, download)
    x_test, y_test = x_train[:0], y_train[:0]
    if args.split != "train":
        x_test, y_test = datasets.load(args.dataset, "test", args.data_dir, download)
    root = datasets.resolve_data_dir(args.data_dir)
    return _Data(f"{args.dataset} (official files under {root})", x_train, y_train, x_test, y_test)


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo), or 'unknown'."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def format_report(data: _Data, results: Dict[str, SeparationResult], timings: dict, args) -> str:
    """The table printed by ``nnmargin separation``."""
    first = next(iter(results.values()))
    threads = f"{args.threads} threads" if args.threads else f"all {os.cpu_count()} cores"
    eps_heads = [f">2*{e:.3g}" for e in first.eps]
    head = f"  {'':<12}{'points':>7}{'min (2r)':>10}{'1st pct':>9}{'median':>8}{'mean':>8}{'r':>8}"
    lines = [
        f"nnmargin {__version__}: r-separation (distance to the nearest other-class training point)",
        f"  dataset     {data.description}",
        f"  training    {first.n_train} points (train split)",
        f"  metric      {first.metric} (pixels scaled to [0, 1]), {threads}",
        "",
        head + "".join(f"{h:>10}" for h in eps_heads),
    ]
    for kind, r in results.items():
        row = f"  {kind:<12}{len(r):>7}" + "".join(f"{v:>{w}.4f}" for v, w in
                                                   zip((r.min, r.p1, r.median, r.mean, r.radius), (10, 9, 8, 8, 8)))
        lines.append(row + "".join(f"{100 * f:>9.2f}%" for f in r.fraction_beyond.values()))
    lines += ["", "  time        " + ", ".join(f"{_TIMING_NAMES.get(k, k)} {v:.2f} s" for k, v in timings.items())]
    return "\n".join(lines)


def result_document(data: _Data, results: Dict[str, SeparationResult], timings: dict, args, argv) -> dict:
    """The ``--out`` JSON: run metadata, then the statistics of each split."""
    return {
        "nnmargin_version": __version__,
        "argv": list(argv),
        "dataset": args.dataset,
        "dataset_description": data.description,
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "kernel": cpu_isas()[0],
                    "threads": args.threads or os.cpu_count()},
        "timings": timings,
        "results": {kind: r.to_dict(arrays=False) for kind, r in results.items()},
    }


def write_outputs(data: _Data, results: Dict[str, SeparationResult], timings: dict, args, argv) -> List[str]:
    """Write --out / --csv / --plot; returns the paths written."""
    written = []
    if args.out:
        Path(args.out).write_text(json.dumps(result_document(data, results, timings, args, argv), indent=1) + "\n",
                                  encoding="utf-8")
        written.append(args.out)
    if args.csv:
        with open(args.csv, "w", encoding="utf-8", newline="") as f:
            for n, (kind, r) in enumerate(results.items()):
                lines = r.to_csv().splitlines(keepends=True)
                f.write(("split," + lines[0] if n == 0 else "") + "".join(f"{kind},{line}" for line in lines[1:]))
        written.append(args.csv)
    if args.plot:
        folder = Path(args.plot)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"separation_{args.dataset}_{args.metric}.png"
        first = next(iter(results.values()))
        plots.plot_separation_histograms({kind: r.distances for kind, r in results.items()}, args.metric, path,
                                         eps=first.eps, title=f"{data.description.split(' (')[0]}, {args.metric}")
        written.append(str(path))
    return written


def run(args, argv) -> int:
    """``nnmargin separation``: load, measure each split (with progress on a terminal), report, write."""
    check(args)
    if args.plot is not None:
        require("matplotlib")
    start = time.perf_counter()
    data = load(args)
    timings = {"load_s": time.perf_counter() - start}
    progress = not args.quiet and is_terminal(sys.stderr)
    results = {}
    for kind in _KINDS[args.split]:
        began = time.perf_counter()
        queries = None if kind == TRAIN_TRAIN else (data.x_test, data.y_test)
        results[kind] = separation(data.x_train, data.y_train, queries, metric=args.metric, eps=args.eps,
                                   num_threads=args.threads, progress=progress)
        timings[f"{kind.replace('-', '_')}_s"] = time.perf_counter() - began
    timings["total_s"] = time.perf_counter() - start
    written = write_outputs(data, results, timings, args, argv)
    if not args.quiet:
        print(format_report(data, results, timings, args))
        for path in written:
            print(f"  wrote       {path}")
    return 0


COMMAND = Command(
    name="separation",
    help="r-separation: distance of each point to the nearest other-class training point",
    description=(
        "r-separation of a dataset (Yang et al. 2020, 'A Closer Look at Accuracy vs. Robustness'): "
        "for each training point (train-train) and each test point (test-train), the exact distance "
        "to the nearest training point of another class; their min (2r), 1st percentile, median and "
        "mean, the separation radius r = min / 2, and the fraction of points farther than 2 * eps. "
        "Without data options it runs on the MNIST sample embedded in nnmargin."
    ),
    add_arguments=add_arguments,
    run=run,
)
