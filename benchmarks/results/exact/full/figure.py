"""Figure: exact vs bisector vs margin radii per test point (l2, full MNIST and Fashion-MNIST test sets).

Reads the exact runs' CSVs beside this script (radius = proven lower end, radius_upper = verified
example), recomputes the margin and bisector bounds with nnmargin (seconds), and writes
exact_vs_bounds.png and exact_vs_bounds.json here.

    NNMARGIN_DATA=../shared/data python benchmarks/results/exact/full/figure.py
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import nnmargin  # noqa: E402

HERE = Path(__file__).resolve().parent
DATASETS = ("mnist", "fashion-mnist")
EPS = np.linspace(0, 3.5, 141)


def exact_columns(dataset: str) -> dict:
    with open(HERE / f"{dataset}_l2_exact.csv") as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) if k != "correct" else r[k] == "True" for r in rows])
            for k in ("radius", "radius_upper", "correct")}


def main() -> None:
    data_dir = os.environ.get("NNMARGIN_DATA")
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5))
    summary = {}
    for col, dataset in enumerate(DATASETS):
        x, y = nnmargin.datasets.load(dataset, "train", data_dir, download=False)
        xt, yt = nnmargin.datasets.load(dataset, "test", data_dir, download=False)
        train = nnmargin.TrainSet(x, y)
        margin = nnmargin.certify(xt, yt, train)
        bisector = nnmargin.certify(xt, yt, train, bound="bisector")
        exact = exact_columns(dataset)
        assert np.array_equal(exact["correct"], margin.correct)
        ok = margin.correct
        lower, upper = exact["radius"][ok], exact["radius_upper"][ok]
        order = np.argsort(lower)
        ax = axes[0, col]
        rank = np.arange(ok.sum())
        ax.plot(rank, margin.radius[ok][order], ",", color="tab:gray", alpha=0.5, label="margin bound")
        ax.plot(rank, bisector.radius[ok][order], ",", color="tab:blue", alpha=0.5, label="bisector bound")
        ax.plot(rank, lower[order], "-", color="black", lw=1.2, label="exact radius")
        ax.set(title=f"{dataset}: l2 radius of each correct test point", xlabel="test points, by exact radius",
               ylabel="radius (l2, [0, 1] pixel scale)")
        ax.legend(markerscale=20, loc="upper left")
        ax = axes[1, col]
        for name, r, style in (("margin", margin.radius, ":"), ("bisector", bisector.radius, "--"),
                               ("exact (proven lower end)", exact["radius"], "-")):
            ax.plot(EPS, [(ok & (r > e)).mean() for e in EPS], style, label=name)
        ax.set(title=f"{dataset}: certified robust accuracy (l2)", xlabel="eps (l2)", ylabel="fraction of test set",
               ylim=(0, 1))
        ax.legend()
        ratio_b = bisector.radius[ok] / lower
        ratio_m = margin.radius[ok] / lower
        summary[dataset] = {
            "points": int(ok.sum()),
            "median_bisector_over_exact": float(np.median(ratio_b)),
            "median_margin_over_exact": float(np.median(ratio_m)),
            "bisector_never_above_exact": bool(np.all(bisector.radius[ok] <= upper)),
            "margin_never_above_bisector": bool(np.all(margin.radius[ok] <= bisector.radius[ok])),
            "robust_accuracy": {str(e): {"margin": float((ok & (margin.radius > e)).mean()),
                                         "bisector": float((ok & (bisector.radius > e)).mean()),
                                         "exact": float((ok & (exact["radius"] > e)).mean())}
                                for e in (0.5, 1.0, 1.5, 2.0, 3.0)},
        }
    fig.tight_layout()
    fig.savefig(HERE / "exact_vs_bounds.png", dpi=110)
    (HERE / "exact_vs_bounds.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
