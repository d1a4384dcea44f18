"""``nnmargin report``: markdown tables and PNG figures from experiment folders.

    nnmargin report runs/mnist runs/fmnist --out report/

writes ``report/report.md`` and the figures it links (see :mod:`nnmargin.experiment.figures`); the
command's options are in :mod:`nnmargin.cli.report` (``python -m nnmargin.report`` runs it too).
Numbers are labelled by what they are: the 1NN's robust accuracies are certified lower bounds
("≥", or exact), the networks' are upper bounds found by the APGD attack ("≤"). Accuracies are
means over class pairs, in percent.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from .._names import NORM_TEXT

from ..experiment.config import NORMS, SPLITS, TRADES_METHODS
from ..experiment.figures import write_all as write_figures
from ..experiment.tables import (FAILED_TRAIN_ACC, Run, bound_mark, head_to_head, load_run, mean_over_pairs, method_label,
                                splits_norms)

_BOUND_TEXT = {
    "margin": "half the margin d_other - d_same (l∞ radius = l2 radius / sqrt(D)), a certified lower bound",
    "bisector": "distance to the nearest bisector half-space, a certified lower bound",
    "exact": "minimal adversarial perturbation (QP / LP per Voronoi cell) with images kept in [0, 1], exact",
}


def _pct(value: Optional[float], mark: str = "") -> str:
    """``value`` (a fraction) in percent with one decimal, after ``mark`` ("≥", "=", "≤" or "")."""
    if value is None or np.isnan(value):
        return "–"
    return f"{mark}{100 * value:.1f}"


def _table(header: List[str], rows: List[List[str]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def _settings_lines(run: Run) -> List[str]:
    s = run.settings
    train_s = sum(t["seconds"] for t in run.trainings)
    unit_s = sum(u["seconds"] for u in run.units.values())
    overrides = ", ".join(f"{k}={v}" for k, v in s.train_overrides) or "none (nnmargin.train defaults)"
    return [
        f"- folder `{run.path}`; {len(run.pairs)} pairs ({', '.join(run.pairs)}); methods: {', '.join(run.methods)}",
        f"- points per pair: {s.limit or 'all'} train / {s.limit or 'all'} test kept (first in file order); "
        f"evaluated per split: {s.eval_limit or 'all kept'}",
        f"- eps l∞: {', '.join(f'{e:.4g}' for e in s.eps_linf)}; eps l2: {', '.join(f'{e:.4g}' for e in s.eps_l2)} "
        f"([0, 1] pixel scale); headline eps: l∞ {run.headline_eps('linf'):.4g}, l2 {run.headline_eps('l2'):.4g}",
        f"- networks: training overrides {overrides}; attack APGD-CE, {s.attack_iters} iterations x "
        f"{s.attack_restarts} restart(s), on clean-correct points; seed {s.seed}",
        f"- 1NN: l2 metric, bound `{s.bound}`: {_BOUND_TEXT.get(s.bound, 'see nnmargin.certify')}",
        f"- compute: training {train_s / 60:.1f} min, evaluation {unit_s / 60:.1f} min (sums of stored timings)",
    ]


def _clean_table(run: Run) -> List[str]:
    rows = []
    for m in run.methods:
        (tr, n), (te, _) = (mean_over_pairs(run, m, s, None) for s in SPLITS)
        rows.append([m, _pct(tr), _pct(te), str(n)])
    return _table(["method", "clean train %", "clean test %", "pairs"], rows)


def _robust_table(run: Run, split: str, norm: str) -> List[str]:
    eps = run.eps(norm)
    rows = []
    for m in run.methods:
        vals = [mean_over_pairs(run, m, split, norm, e)[0] for e in eps]
        rows.append([method_label(run, m)] + [_pct(v, bound_mark(run, m)) for v in vals])
    return _table(["method"] + [f"eps {e:.4g}" for e in eps], rows)


def _head_to_head_table(run: Run) -> List[str]:
    rows = []
    for split, norm in splits_norms(run):
        for e in run.eps(norm):
            h = head_to_head(run, split, norm, e)
            if not h["n"]:
                continue
            diff = 100 * float(np.mean(np.subtract(h["one_nn"], h["trades"])))
            star = " (headline)" if e == run.headline_eps(norm) else ""
            linf_only = head_to_head(run, split, norm, e, methods=("trades",))
            rows.append([split, NORM_TEXT[norm], f"{e:.4g}{star}", f"{h['wins']}/{h['n']}",
                         f"{linf_only['wins']}/{linf_only['n']}" if linf_only["n"] else "–",
                         _pct(float(np.mean(h["one_nn"])), bound_mark(run, "1nn")),
                         _pct(float(np.mean(h["trades"])), "≤"),
                         f"{diff:+.1f}"])
    return _table(["split", "norm", "eps", "pairs 1NN ≥ best TRADES", "pairs 1NN ≥ trades (l∞-trained)",
                   "1NN mean", "best TRADES mean", "mean difference (pts)"], rows)


def _per_pair_table(run: Run) -> List[str]:
    cols = [(s, n) for s, n in splits_norms(run) if s == "test"] or splits_norms(run)
    header = ["pair"]
    for s, n in cols:
        header += [f"1NN {s} {NORM_TEXT[n]}", f"best TRADES {s} {NORM_TEXT[n]}"]
    rows = []
    for pair in run.pairs:
        row = [pair]
        for s, n in cols:
            e = run.headline_eps(n)
            value, which = run.best_trades(pair, s, n, e)
            row += [_pct(run.robust(pair, "1nn", s, n, e), bound_mark(run, "1nn")),
                    _pct(value, "≤") + (f" ({which})" if which else "")]
        rows.append(row)
    return _table(header, rows)


def _one_nn_train_lines(run: Run) -> List[str]:
    """The paper's claim that 1NN is robust on its own training points, checked per norm."""
    lines = []
    for norm in NORMS:
        units = [u for k, u in run.units.items() if k[1] == "1nn" and k[2] == "train" and k[3] == norm]
        if not units:
            continue
        clean = min(u["clean_acc"] for u in units)
        full = [e for i, e in enumerate(run.eps(norm)) if all(u["robust_acc"][i] == 1.0 for u in units)]
        radii = [u["extra"].get("radius_min") for u in units if u["extra"].get("radius_min") is not None]
        lines.append(f"- {NORM_TEXT[norm]}: clean accuracy on training points {_pct(clean)} % (lowest pair); "
                     f"certified 100 % robust on every pair at eps {', '.join(f'{e:.4g}' for e in full) or 'none of the sweep'}"
                     f" (smallest certified radius over all pairs' training points: "
                     f"{min(radii) if radii else float('nan'):.4g})")
    return lines


def _training_lines(run: Run) -> List[str]:
    if not run.trainings:
        return []
    rows = []
    for m in [m for m in run.methods if m != "1nn"]:
        ts = [t for t in run.trainings if t["method"] == m]
        if ts:
            accs = [t["history"][-1]["train_acc"] for t in ts if t["history"]]
            rows.append([m, str(len(ts)), f"{np.mean([t['seconds'] for t in ts]):.0f}",
                         _pct(float(np.mean(accs)) if accs else float("nan")), _pct(min(accs) if accs else float("nan"))])
    lines = _table(["method", "models", "mean training s", "mean last-epoch train acc %", "lowest %"], rows)
    failed = run.failed_trainings()
    if failed:
        lines += ["", f"**Warning:** {len(failed)} network(s) ended training below {100 * FAILED_TRAIN_ACC:.0f} % "
                  "training accuracy (did not learn): " + ", ".join(f"{t['pair']} {t['method']}" for t in failed)]
    return lines


def render_markdown(runs: Sequence[Run], figures: Sequence[Path], out_dir: Path) -> str:
    """The text of report.md for ``runs``; ``figures`` are linked relative to ``out_dir``."""
    lines = ["# 1NN certificates vs adversarially trained networks on binary class pairs", "",
             f"Generated {time.strftime('%Y-%m-%d %H:%M')} by `nnmargin report`. Accuracies are means over "
             "class pairs, in %. 1NN robust accuracies are computed, not attacked: **=** exact (minimal "
             "adversarial perturbation of every point) or **≥** a *certified lower bound* (the true value is at "
             "least this). **≤**: network robust accuracy under APGD, an *upper bound* (the true value is at "
             "most this). So a pair where 1NN ≥ TRADES holds in these tables is one where 1NN is provably at "
             "least as robust; the converse is not proven.", ""]
    for run in runs:
        lines += [f"## {run.label}", "", "Settings:", ""] + _settings_lines(run) + ["", "### Clean accuracy", ""]
        lines += _clean_table(run) + [""]
        for split, norm in splits_norms(run):
            lines += [f"### Robust accuracy, {split} points, {NORM_TEXT[norm]}", ""] + _robust_table(run, split, norm) + [""]
        if "1nn" in run.methods and any(m in run.methods for m in TRADES_METHODS):
            lines += ["### 1NN vs the best TRADES variant, per pair", "",
                      "Counts pairs where the 1NN robust accuracy (exact or certified) is at least the highest "
                      "APGD robust accuracy of trades / trades-l2linf on that pair (and of the l∞-trained trades "
                      "alone: the seed paper's 'perturbation differs from training' case for l2).", ""] + _head_to_head_table(run) + [""]
            lines += [f"Per pair at the headline eps (l∞ {run.headline_eps('linf'):.4g}, l2 "
                      f"{run.headline_eps('l2'):.4g}):", ""] + _per_pair_table(run) + [""]
        if "1nn" in run.methods:
            lines += ["### 1NN on its own training points", ""] + _one_nn_train_lines(run) + [""]
        if run.trainings:
            lines += ["### Training", ""] + _training_lines(run) + [""]
    lines += ["## Figures", ""] + [f"![{p.stem}]({p.relative_to(out_dir).as_posix()})" for p in figures] + [""]
    return "\n".join(lines)


def write_report(run_dirs: Sequence, out_dir, figures: bool = True) -> Path:
    """Write ``report.md`` (and the figures unless ``figures=False``) for ``run_dirs`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = [load_run(d) for d in run_dirs]
    paths: List[Path] = []
    if figures:  # matplotlib is imported here, only when figures are drawn
        paths = write_figures(runs, out_dir / "figures")
    path = out_dir / "report.md"
    path.write_text(render_markdown(runs, paths, out_dir), encoding="utf-8")
    return path
