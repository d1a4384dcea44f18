"""PNG figures of experiment runs (matplotlib, Agg backend: no display needed).

Every figure says what its numbers are: 1NN robust accuracies are certified lower bounds (or
exact), network robust accuracies are upper bounds from an attack (APGD).
"""
from __future__ import annotations

from pathlib import Path
from typing import List

import numpy as np

from .._names import NORM_TEXT

from .config import NORMS, SPLITS
from .tables import Run, bound_mark, head_to_head, mean_over_pairs, method_label, splits_norms

_COLORS = {"1nn": "#d62728", "standard": "#7f7f7f", "early-stop": "#bcbd22", "trades": "#1f77b4",
           "trades-l2linf": "#17becf", "3nn": "#ff7f0e", "7nn": "#e377c2", "75nn": "#8c564b"}
_BOUND_NOTE = "1NN: exact (=) or certified lower bound (≥); networks: APGD attack upper bound (≤)"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def _grid(run: Run, cell=(4.4, 3.6)):
    """A figure with one panel per (split, norm) the run has: rows splits, columns norms."""
    plt = _pyplot()
    panels = splits_norms(run)
    splits = [s for s in SPLITS if any(p[0] == s for p in panels)]
    norms = [n for n in NORMS if any(p[1] == n for p in panels)]
    fig, axes = plt.subplots(len(splits), len(norms), figsize=(cell[0] * len(norms), cell[1] * len(splits)),
                             squeeze=False, constrained_layout=True)
    cells = {(s, n): axes[i][j] for i, s in enumerate(splits) for j, n in enumerate(norms)}
    for key, ax in cells.items():
        if key not in panels:
            ax.set_visible(False)
    return fig, [(key, cells[key]) for key in panels]


def _slug(run: Run) -> str:
    return f"{run.dataset}_{run.path.name}".replace("/", "_")


def clean_accuracy(runs: List[Run], out: Path) -> Path:
    """Bars: mean clean accuracy over pairs, per method, train and test, one panel per run."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(runs), figsize=(5.5 * len(runs), 3.6), squeeze=False, constrained_layout=True)
    for ax, run in zip(axes[0], runs):
        methods = run.methods
        x = np.arange(len(methods))
        lowest = 100.0
        for k, split in enumerate(SPLITS):
            vals = [100 * mean_over_pairs(run, m, split, None)[0] for m in methods]
            ax.bar(x + (k - 0.5) * 0.38, vals, 0.38, label=split, color=("#9ecae1", "#3182bd")[k])
            for i, v in enumerate(vals):
                if not np.isnan(v):
                    ax.text(x[i] + (k - 0.5) * 0.38, v + 0.2, f"{v:.1f}", ha="center", fontsize=6)
                    lowest = min(lowest, v)
        ax.set_xticks(x, methods, rotation=20)
        # Zoom in on the range the bars span (clean accuracies are usually all above 90 %).
        ax.set_ylim(max(0.0, 5 * np.floor((lowest - 5) / 5)), 101)
        ax.set_ylabel("clean accuracy (%)")
        ax.set_title(f"{run.label}: clean accuracy ({len(run.pairs)} pairs)")
        ax.legend(loc="lower right")
    return _save(fig, out)


def robust_bars(run: Run, out: Path) -> Path:
    """Bars per method at the headline eps: panels (train, test) x (l∞, l2)."""
    fig, panels = _grid(run)
    for (split, norm), ax in panels:
        eps = run.headline_eps(norm)
        methods = run.methods
        vals = [100 * mean_over_pairs(run, m, split, norm, eps)[0] for m in methods]
        ax.bar(range(len(methods)), vals, color=[_COLORS.get(m, "k") for m in methods])
        for i, v in enumerate(vals):
            ax.text(i, v + 1, "n/a" if np.isnan(v) else f"{bound_mark(run, methods[i])}{v:.0f}",
                    ha="center", fontsize=8)
        ax.set_xticks(range(len(methods)), methods, rotation=30)
        ax.set_ylim(0, 108)
        ax.set_title(f"{split}, {NORM_TEXT[norm]} eps={eps:.3g}")
        ax.set_ylabel("robust accuracy (%)")
    fig.suptitle(f"{run.label}: robust accuracy, mean of {len(run.pairs)} pairs ({_BOUND_NOTE})", fontsize=9)
    return _save(fig, out)


def robust_curves(run: Run, out: Path) -> Path:
    """Mean robust accuracy vs eps per method: panels (train, test) x (l∞, l2)."""
    fig, panels = _grid(run)
    for (split, norm), ax in panels:
        eps = [0.0] + run.eps(norm)
        for m in run.methods:
            vals = [100 * mean_over_pairs(run, m, split, norm if e else None, e)[0] for e in eps]
            ax.plot(eps, vals, marker="o", ms=3, color=_COLORS.get(m, "k"), label=method_label(run, m),
                    linestyle="--" if m == "1nn" else "-")
        ax.axvline(run.headline_eps(norm), color="#cccccc", lw=0.8, zorder=0)
        ax.set_ylim(-2, 102)
        ax.set_xlabel(f"eps ({NORM_TEXT[norm]}, [0,1] pixel scale)")
        ax.set_ylabel("robust accuracy (%)")
        ax.set_title(f"{split}, {NORM_TEXT[norm]}")
    panels[0][1].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"{run.label}: robust accuracy vs eps, mean of {len(run.pairs)} pairs", fontsize=9)
    return _save(fig, out)


def scatter(run: Run, out: Path) -> Path:
    """Per pair: 1NN certified robust accuracy vs best TRADES variant's attack robust accuracy."""
    fig, panels = _grid(run, cell=(4.2, 4.2))
    for (split, norm), ax in panels:
        eps = run.headline_eps(norm)
        h = head_to_head(run, split, norm, eps)
        ax.plot([0, 100], [0, 100], color="#999999", lw=0.8)
        ax.scatter(100 * np.asarray(h["trades"]), 100 * np.asarray(h["one_nn"]), s=18, color=_COLORS["1nn"])
        for p, a, b in zip(h["pairs"], h["one_nn"], h["trades"]):
            ax.annotate(p, (100 * b, 100 * a), fontsize=6, xytext=(2, 2), textcoords="offset points")
        ax.set_xlim(-3, 103)
        ax.set_ylim(-3, 103)
        ax.set_aspect("equal")
        ax.set_xlabel("best TRADES, APGD: upper bound (%)", fontsize=8)
        ax.set_ylabel(f"{method_label(run, '1nn')} (%)", fontsize=8)
        ax.set_title(f"{split}, {NORM_TEXT[norm]} eps={eps:.3g}\n1NN >= TRADES on {h['wins']}/{h['n']} pairs",
                     fontsize=9)
    fig.suptitle(f"{run.label}: per-pair robust accuracy\n(on or above the diagonal: 1NN provably at least as robust)",
                 fontsize=9)
    return _save(fig, out)


def write_all(runs: List[Run], out_dir: Path) -> List[Path]:
    """Write every figure for ``runs`` into ``out_dir``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [clean_accuracy(runs, out_dir / "clean_accuracy.png")]
    for run in runs:
        slug = _slug(run)
        paths.append(robust_bars(run, out_dir / f"robust_{slug}.png"))
        paths.append(robust_curves(run, out_dir / f"robust_vs_eps_{slug}.png"))
        if "1nn" in run.methods and any(m in run.methods for m in ("trades", "trades-l2linf")):
            paths.append(scatter(run, out_dir / f"scatter_1nn_vs_trades_{slug}.png"))
    return paths


__all__ = ["write_all", "clean_accuracy", "robust_bars", "robust_curves", "scatter", "NORMS"]
