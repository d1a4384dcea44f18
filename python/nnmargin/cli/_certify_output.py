"""``nnmargin certify``: what a run prints and writes (the table, --out JSON, --csv, --plot figures)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import List, Sequence

import numpy as np

from .. import __version__, plots
from ..result import CertifyResult
from ._certify_data import CertifyData, classes_text

PANEL_NORMS = ("l2", "linf", "l1")  # the panels of robust_accuracy.png, left to right


def _queries_text(data: CertifyData, cert: CertifyResult, args) -> str:
    text = f"{len(cert)} from the {data.split} split"
    if args.limit is not None:
        text += f" (first {args.limit})"
    if data.split == "train":
        text += ", leave-one-out" if cert.leave_one_out else ", each its own neighbour"
    return text


def _accuracy_row(eps_text: str, accuracy: float, n: int) -> str:
    """One table row: eps, accuracy in percent, and as a count of the n queries."""
    count = int(round(accuracy * n))
    return f"  {eps_text:<11}  {100 * accuracy:6.2f} %   {count:>{len(str(n))}} / {n}"


def format_report(data: CertifyData, cert: CertifyResult, eps: Sequence[float], timings: dict, args,
                  attack=None) -> str:
    """The human-readable table printed by ``nnmargin certify``; with ``attack`` (an AttackResult)
    the attacked robust accuracy (an upper bound) and the gap beside the certified one."""
    n = len(cert)
    threads = f"{args.threads} threads" if args.threads else f"all {os.cpu_count()} cores"
    device = cert.info.get("device", args.device)
    lines = [
        f"nnmargin {__version__}: exact {'1' if cert.k == 1 else cert.k}-NN robustness certificates",
        f"  dataset     {data.description}",
        f"  classes     {classes_text(data)}",
        f"  training    {cert.n_train} points (train split)",
        f"  queries     {_queries_text(data, cert, args)}",
        f"  metric      {cert.metric} (distances in this norm, pixels scaled to [0, 1])",
        f"  bound       {cert.bound if cert.k == 1 else 'triangle-inequality relaxation of the k-NN vote'}, "
        f"radii and eps in the {cert.norm} norm",
        f"  device      {device}" + (f" ({threads})" if device == "cpu" else ""),
        "",
        f"  {'eps (' + cert.norm + ')':<11}  {'exact' if cert.bound == 'exact' else 'certified'} robust accuracy",
        _accuracy_row("0 (clean)", cert.accuracy, n),
    ]
    accuracies = np.atleast_1d(cert.robust_accuracy(np.asarray(eps, dtype=np.float64)))
    lines += [_accuracy_row(f"{e:g}", acc, n) for e, acc in zip(eps, accuracies)]
    radii = cert.radius[cert.correct]
    if radii.size:
        lines.append(f"  median certified radius of the correct queries: {float(np.median(radii)):.4g}")
    if attack is not None:
        lines += ["", f"  {'eps (' + cert.norm + ')':<11}  certified >=  attacked <=  gap"]
        for e in eps:
            lo, hi = float(cert.robust_accuracy(e)), float(np.mean(attack.norm > e)) if n else float("nan")
            lines.append(f"  {e:<11g}  {100 * lo:9.2f} %  {100 * hi:8.2f} %  {100 * (hi - lo):5.2f} %")
        found = attack.norm[cert.correct]
        if found.size:
            lines.append(f"  median attack radius of the correct queries: {float(np.median(found)):.4g}")
    lines += [
        "",
        "  time        load {load_s:.2f} s, prepare {prepare_s:.2f} s, search {search_s:.2f} s, "
        "total {total_s:.2f} s".format(**timings),
    ]
    return "\n".join(lines)


def result_document(data: CertifyData, cert: CertifyResult, eps: Sequence[float], timings: dict, argv) -> dict:
    """The ``--out`` JSON: run metadata, then ``cert.to_dict`` (summary and per-query arrays)."""
    meta = {
        "nnmargin_version": __version__,
        "argv": list(argv),
        "dataset": data.dataset,
        "dataset_description": data.description,
        "classes": list(data.classes) if data.classes is not None else None,
        "split": data.split,
        "eps": [float(e) for e in eps],
        "timings": timings,
    }
    return {**meta, **cert.to_dict(arrays=True, eps=eps)}


def write_outputs(data: CertifyData, cert: CertifyResult, eps, timings, args, argv) -> List[str]:
    """Write --out / --csv; returns the paths written."""
    written = []
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(result_document(data, cert, eps, timings, argv), f, indent=1)
            f.write("\n")
        written.append(args.out)
    if args.csv:
        cert.to_csv(args.csv)
        written.append(args.csv)
    return written


def robust_accuracy_curves(cert: CertifyResult) -> dict:
    """{norm: {bound: (radius, correct)}}: the margin bound in every norm, from the result's own
    distances (no new search), plus the run's own bound in its norm. A k-NN run (k > 1) has only its
    own bound: the 1NN margin is no certificate of the k-NN."""
    curves = {}
    for norm in PANEL_NORMS:
        if cert.k > 1:
            if norm == cert.norm:
                curves[norm] = {f"{cert.k}-NN relaxation": (cert.radius, cert.correct)}
            continue
        curves[norm] = {"margin": (cert.margin_radius(norm), cert.correct)}
        if norm == cert.norm:
            curves[norm][cert.bound] = (cert.radius, cert.correct)
    return curves


def write_figures(data: CertifyData, cert: CertifyResult, folder) -> List[str]:
    """--plot: robust accuracy vs eps (:func:`robust_accuracy_curves`), histogram of this run's
    radii, and adversarial examples when the run has them."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    title = f"{data.dataset} {classes_text(data)}, {len(cert)} {data.split} queries"
    paths = [folder / "robust_accuracy.png", folder / "radius_histogram.png"]
    plots.plot_robust_accuracy(robust_accuracy_curves(cert), paths[0], title=title)
    plots.plot_radius_histogram(cert.radius, cert.correct, cert.norm, paths[1], title=f"{cert.bound} radii, {title}")
    if cert.adversarial is not None:
        paths.append(folder / "adversarial_examples.png")
        originals = data.x_query.reshape(len(cert), -1) / 255.0
        captions = [f"r={r:.3g}" for r in cert.radius]
        plots.plot_adversarial_examples(originals, cert.adversarial, data.x_query.shape[1:], paths[2],
                                        captions=captions)
    return [str(p) for p in paths]
