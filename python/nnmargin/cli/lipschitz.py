"""``nnmargin lipschitz``: Sitawarin & Wagner's Table 6 -- the 1NN on the input and on each layer of a
Lipschitz autoencoder, certified in input space (feature l2 radius / L of that layer).

    nnmargin lipschitz --dataset mnist --data-dir ../shared/data --checkpoint runs/lipae.pt \\
        --epochs 5 --out lipschitz.json --markdown lipschitz.md

Trains the autoencoder with their loss (or loads ``--checkpoint`` when the file exists), freezes
the encoder, bounds its Lipschitz constant up to each layer soundly from the weights
(:mod:`nnmargin.lipschitz.bounds`), and certifies the 1NN on each layer's features with
``certify(..., lipschitz=L)`` for each ``--bounds``.

Features are computed in float64 and stored in float32 for the search; the radius is shaded by
what that storage can move a query (``_storage_slack``), so it holds for the 1NN as run.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .. import __version__
from .._errors import InputError
from .._names import BOUNDS, UNIT_ROUNDOFF
from ..certify import certify
from ..lipschitz._constants import ENCODER_LAYERS, NORMALISATIONS
from ..trainset import TrainSet
from ._certify_data import dataset_arg, load_data
from ._common import Command, arg_type, is_terminal, positive_int, require

DEFAULT_EPS = (0.5, 1.0, 1.5, 2.0)
INPUT = "input"
# Sitawarin & Wagner, Table 6 (MNIST, 54k training points): clean accuracy, average certificate and
# the fraction certified at l2 0.5 / 1 / 1.5 / 2. Their script counts that fraction among the
# correctly classified test points (chawins/knn-defense, test_dknn_cert.py: (gap[ind] > 2 eps).mean()
# with ind the correct ones); both readings are reported next to it.
PUBLISHED = {
    "input": (0.9683, 0.9567, (0.8102, 0.4059, 0.0977, 0.0064)),
    "relu1": (0.9701, 0.8576, (0.8000, 0.3574, 0.0663, 0.0034)),
    "relu2": (0.9723, 0.7821, (0.7648, 0.2677, 0.0379, 0.0005)),
    "relu3": (0.9745, 0.4295, (0.3509, 0.0013, 0.0, 0.0)),
    "bottleneck": (0.9752, 0.3909, (0.2668, 0.0001, 0.0, 0.0)),
}
_U32 = 2.0 ** -24
# Allowance for the float64 forward pass of the encoder (a few layers of dot products of <= 3200
# terms: gamma_n ~ 4e-13 relative per layer), with > 100x headroom: 2^-30 ~ 9.3e-10.
_FORWARD64 = 2.0 ** -30

_eps_arg = arg_type(float, lambda v: bool(np.isfinite(v) and v >= 0), "eps must be a finite number >= 0, got {text!r}")
_fraction = arg_type(float, lambda v: 0 < v < 1, "expected a number in (0, 1), got {text!r}")
_nonneg = arg_type(float, lambda v: bool(np.isfinite(v) and v >= 0), "expected a finite number >= 0, got {text!r}")


def add_arguments(p) -> None:
    """The options of ``nnmargin lipschitz``."""
    data = p.add_argument_group("data")
    data.add_argument("--dataset", type=dataset_arg, default="mnist",
                      help="mnist (default), fashion-mnist, cifar10, or 'sample' (the embedded MNIST subset)")
    data.add_argument("--data-dir", metavar="DIR", help="data root holding <DIR>/mnist/ ... (default $NNMARGIN_DATA)")
    data.add_argument("--no-download", action="store_true", help="never download missing dataset files")
    data.add_argument("--val-fraction", type=_fraction, default=0.1,
                      help="held out from the training split for model selection, as the paper (default 0.1: "
                           "54000 of MNIST's 60000 train the model and form the 1NN's training set)")
    data.add_argument("--train-limit", type=positive_int, metavar="N",
                      help="keep the first N of the remaining training points (quick runs)")
    data.add_argument("--limit", type=positive_int, metavar="N", help="certify the first N test points (default all)")

    model = p.add_argument_group("model")
    model.add_argument("--checkpoint", metavar="FILE.pt",
                       help="load the autoencoder from FILE when it exists, else train it and save it there")
    model.add_argument("--retrain", action="store_true", help="train even when --checkpoint exists (and overwrite it)")
    model.add_argument("--epochs", type=positive_int, default=5, help="training epochs (default 5; the paper: 100)")
    model.add_argument("--batch-size", type=positive_int, default=128, help="default 128")
    model.add_argument("--lr", type=_nonneg, default=1e-3, help="Adam learning rate (default 1e-3)")
    model.add_argument("--alpha", type=_nonneg, default=1.0,
                       help="weight of the separation term (default 1, the paper's equation; the authors' code: 100)")
    model.add_argument("--threshold", type=_nonneg, default=4.0,
                       help="T, the cap on the squared bottleneck distance (default 4, the authors' code)")
    model.add_argument("--normalisation", choices=NORMALISATIONS, default="operator",
                       help="training-time weight normalisation: operator (power-iteration estimate of each "
                            "layer's norm) or l2nnn (the paper's Gram bound); certificates use the sound bound "
                            "of the frozen weights either way (default operator)")
    model.add_argument("--widths", type=positive_int, nargs=3, default=(64, 128, 128), metavar="C",
                       help="encoder channels (default 64 128 128, the paper's)")
    model.add_argument("--latent-dim", type=positive_int, default=128, help="bottleneck size (default 128)")
    model.add_argument("--decoder-widths", type=positive_int, nargs=2, default=(128, 64), metavar="C",
                       help="decoder channels (default 128 64, the paper's)")
    model.add_argument("--seed", type=int, default=0, help="weights, batch order and validation split (default 0)")

    cert = p.add_argument_group("certificates")
    cert.add_argument("--bounds", nargs="+", choices=BOUNDS, default=list(BOUNDS),
                      help="bounds to tabulate (default: margin bisector exact)")
    cert.add_argument("--exact-limit", type=positive_int, default=200, metavar="N",
                      help="the exact bound certifies only the first N test points (default 200)")
    cert.add_argument("--layers", nargs="+", choices=(INPUT,) + ENCODER_LAYERS, default=[INPUT, *ENCODER_LAYERS],
                      help="rows of the table (default: input and every encoder layer)")
    cert.add_argument("--eps", nargs="+", type=_eps_arg, default=list(DEFAULT_EPS), metavar="EPS",
                      help="l2 perturbation sizes on the [0, 1] pixel scale (default 0.5 1 1.5 2)")

    run_group = p.add_argument_group("execution")
    run_group.add_argument("--threads", type=positive_int, metavar="N", help="certify threads (default: all cores)")
    run_group.add_argument("--torch-threads", type=positive_int, default=1, metavar="N",
                           help="torch threads for training and features (default 1)")

    out = p.add_argument_group("output")
    out.add_argument("--out", metavar="FILE.json", help="write the table, bounds, settings and timings as JSON")
    out.add_argument("--markdown", metavar="FILE.md", help="write the tables as Markdown")
    out.add_argument("--quiet", action="store_true", help="print nothing on success")


def _check(args) -> None:
    for option in ("out", "markdown", "checkpoint"):  # fail before a long run, not after it
        path = getattr(args, option)
        if path is not None and Path(path).is_dir():
            raise InputError(f"--{option} {path}: is a directory")
        if path is not None and option != "checkpoint" and not Path(path).resolve().parent.is_dir():
            raise InputError(f"--{option} {path}: folder {Path(path).parent} does not exist")
    if args.retrain and args.checkpoint is None:
        raise InputError("--retrain needs --checkpoint")
    if args.lr == 0:
        raise InputError("--lr must be > 0")


def _say(args, text: str) -> None:
    if not args.quiet:
        print(text, flush=True)


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or "unknown"


def _model(args, x_fit, y_fit, x_val, y_val):
    """(trained or loaded AutoencoderResult, 'trained' | 'loaded')."""
    from ..lipschitz import AutoencoderConfig, load_autoencoder, save_autoencoder, train_autoencoder
    if args.checkpoint is not None and Path(args.checkpoint).exists() and not args.retrain:
        result = load_autoencoder(args.checkpoint)
        if tuple(result.config.input_shape) != tuple(_shape(x_fit)):
            raise InputError(f"{args.checkpoint}: trained on images {result.config.input_shape}, not {_shape(x_fit)}")
        return result, "loaded"
    config = AutoencoderConfig(input_shape=_shape(x_fit), widths=tuple(args.widths), latent_dim=args.latent_dim,
                               decoder_widths=tuple(args.decoder_widths), normalisation=args.normalisation,
                               epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, alpha=args.alpha,
                               threshold=args.threshold, seed=args.seed)
    result = train_autoencoder(x_fit, y_fit, config, x_val, y_val, progress=not args.quiet and is_terminal(sys.stderr),
                               log=None if args.quiet else print)
    if args.checkpoint is not None:
        save_autoencoder(result, args.checkpoint)
    return result, "trained"


def _shape(x: np.ndarray) -> tuple:
    """(C, H, W) of uint8 images as loaded: (N, H, W) or (N, H, W, C)."""
    return (1,) + tuple(x.shape[1:]) if x.ndim == 3 else (x.shape[3], x.shape[1], x.shape[2])


def _storage_slack(queries: np.ndarray) -> np.ndarray:
    """(n,) how far in feature l2 the 1NN's stored float32 query may be from the real-number feature
    f(x), plus the same for a perturbed input x': ||rho(v) - v|| <= 2^-24 ||v|| for the float32
    rounding rho, and the float64 forward pass (allowance _FORWARD64). So a perturbed input's stored
    features lie within L ||delta|| + slack of the stored query: the radius shrinks by slack / L."""
    norms = np.linalg.norm(queries.astype(np.float64), axis=1)
    return (2 * _U32 * (1 + _U32) * norms + 2 * _FORWARD64 * (1 + norms)) * (1 + 8 * UNIT_ROUNDOFF)


def _float32_features(features, encoder, images, layer, chunk: int = 5000) -> np.ndarray:
    """float64 features of ``images`` stored as float32, computed in chunks (only one chunk in float64)."""
    out = None
    for b in range(0, len(images), chunk):
        part = features(encoder, images[b:b + chunk], layer)
        if out is None:
            out = np.empty((len(images), part.shape[1]), dtype=np.float32)
        out[b:b + len(part)] = part
    return out


def _row(layer, bound, cert, lipschitz, radius, eps, seconds) -> dict:
    correct = cert.correct
    n_correct = int(correct.sum())
    certified = [int((correct & (radius > e)).sum()) for e in eps]
    return {
        "layer": layer, "bound": bound, "n": len(cert), "lipschitz": lipschitz,
        "clean": float(correct.mean()),
        "certified": {str(e): c / len(cert) for e, c in zip(eps, certified)},
        "certified_of_correct": {str(e): (c / n_correct if n_correct else float("nan")) for e, c in zip(eps, certified)},
        "mean_radius_correct": float(radius[correct].mean()) if n_correct else float("nan"),
        "seconds": seconds,
    }


def _certify_layer(args, layer, encoder, lipschitz, data, eps, rows, timings) -> None:
    from ..lipschitz import features
    began = time.perf_counter()
    if layer == INPUT:
        train, queries, slack = TrainSet(data.x_train, data.y_train), data.x_query, None
    else:
        feature_train = _float32_features(features, encoder, data.x_train, layer)
        queries = _float32_features(features, encoder, data.x_query, layer)
        train, slack = TrainSet(feature_train, data.y_train), _storage_slack(queries)
        del feature_train
    timings[f"features_{layer}_s"] = time.perf_counter() - began
    for bound in args.bounds:
        n = min(len(queries), args.exact_limit) if bound == "exact" else len(queries)
        start = time.perf_counter()
        cert = certify(queries[:n], data.y_query[:n], train, bound=bound, num_threads=args.threads,
                       lipschitz=None if layer == INPUT else lipschitz,
                       batch_size=32 if bound == "exact" else 2000, progress=not args.quiet and is_terminal(sys.stderr))
        radius = cert.radius if slack is None else np.maximum(0.0, cert.radius - slack[:n] / lipschitz * (1 + 8 * UNIT_ROUNDOFF))
        rows.append(_row(layer, bound, cert, lipschitz, radius, eps, time.perf_counter() - start))
        r = rows[-1]
        _say(args, f"  {layer:<10} {bound:<8} n={n:<6} L={lipschitz:.4f}  clean {100 * r['clean']:6.2f} %  "
                   + "  ".join(f"{e:g}: {100 * v:6.2f} %" for e, v in zip(eps, r["certified"].values()))
                   + f"   ({r['seconds']:.1f} s)")


def format_markdown(report: dict) -> str:
    """The tables of a run: one per bound (certified fraction of all test points, and of the correctly
    classified ones, the reading of the paper's script), the published Table 6 next to them."""
    eps = report["eps"]
    head = " | ".join(f"l2 {e:g}" for e in eps)
    head_correct = " | ".join(f"{e:g} (of correct)" for e in eps)
    lines = [f"# Table 6 of Sitawarin & Wagner, reproduced: 1NN on Lipschitz-autoencoder features ({report['dataset']})",
             "", f"Command: `{report['command']}`", "",
             f"{report['n_train']} training points (1NN and autoencoder), {report['n_test']} test points; "
             f"model {report['model_source']} ({report['config']['epochs']} epochs, trained in "
             f"{report['train_seconds']:.0f} s); CPU: {report['cpu']}; torch threads "
             f"{report['torch_threads']}. L: sound upper bound on the l2 Lipschitz constant from the input to the "
             "layer; radius = feature-space radius / L, rounded down (float32 feature storage accounted for).", ""]
    for bound in report["bounds"]:
        rows = [r for r in report["rows"] if r["bound"] == bound]
        if not rows:
            continue
        lines += [f"## {bound} bound (n = {rows[0]['n']} test points)", "",
                  f"| layer | L | clean | {head} | {head_correct} | mean radius | s |",
                  "| --- | ---: | ---: | " + " | ".join("---:" for _ in 2 * eps) + " | ---: | ---: |"]
        for r in rows:
            lines.append(f"| {r['layer']} | {r['lipschitz']:.4f} | {r['clean']:.4f} | "
                         + " | ".join(f"{v:.4f}" for v in r["certified"].values()) + " | "
                         + " | ".join(f"{v:.4f}" for v in r["certified_of_correct"].values())
                         + f" | {r['mean_radius_correct']:.4f} | {r['seconds']:.1f} |")
        lines.append("")
    lines += ["## Published (Sitawarin & Wagner, Table 6; margin bound, L = 1, certified fraction among correct)",
              "", "| layer | clean | avg. cert. | l2 0.5 | l2 1 | l2 1.5 | l2 2 |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for layer, (clean, avg, cert) in PUBLISHED.items():
        lines.append(f"| {layer} | {clean:.4f} | {avg:.4f} | " + " | ".join(f"{v:.4f}" for v in cert) + " |")
    lines += ["", "## Lipschitz bounds of the frozen encoder", "", "| layer | kind | layer bound | up to the layer |",
              "| --- | --- | ---: | ---: |"]
    for b in report["layer_bounds"]:
        lines.append(f"| {b['name']} | {b['kind']} | {b['bound']:.6f} | {b['cumulative']:.6f} |")
    return "\n".join(lines) + "\n"


def run(args, argv) -> int:
    """``nnmargin lipschitz``: train or load, bound, certify every layer with every bound, report."""
    require("torch")
    if "exact" in args.bounds:
        require("scipy")
    _check(args)
    import torch
    from ..lipschitz import freeze, layer_bounds
    from ..training.data import validation_split

    start = time.perf_counter()
    torch.set_num_threads(args.torch_threads)
    eps = list(args.eps)
    loaded = load_data(argparse.Namespace(dataset=args.dataset, classes=None, split="test", limit=args.limit,
                                          data_dir=args.data_dir, no_download=args.no_download))
    fit, val = (i.numpy() for i in validation_split(len(loaded.y_train), args.val_fraction, args.seed))
    if args.train_limit is not None:
        fit = fit[: args.train_limit]
    x_val, y_val = loaded.x_train[val], loaded.y_train[val]
    loaded.x_train, loaded.y_train = loaded.x_train[fit], loaded.y_train[fit]
    timings = {"load_s": time.perf_counter() - start}
    _say(args, f"nnmargin lipschitz: {loaded.description}; {len(fit)} training points, {len(val)} validation, "
               f"{len(loaded.y_query)} test")

    began = time.perf_counter()
    result, source = _model(args, loaded.x_train, loaded.y_train, x_val, y_val)
    timings["train_s" if source == "trained" else "load_model_s"] = time.perf_counter() - began
    encoder = freeze(result.model.encoder)
    bounds = layer_bounds(encoder)
    lipschitz = {b.name: b.cumulative for b in bounds}
    lipschitz[INPUT] = 1.0
    _say(args, "  Lipschitz bounds up to each layer: "
               + ", ".join(f"{b.name} {b.cumulative:.4f}" for b in bounds if b.kind != "reshape"))

    rows = []
    for layer in args.layers:
        _certify_layer(args, layer, encoder, lipschitz[layer], loaded, eps, rows, timings)
    timings["total_s"] = time.perf_counter() - start
    report = {
        "command": "nnmargin " + " ".join(argv), "nnmargin_version": __version__, "dataset": loaded.description,
        "n_train": int(len(loaded.y_train)), "n_val": int(len(val)), "n_test": int(len(loaded.y_query)),
        "model_source": source, "train_seconds": result.seconds, "config": _jsonable(vars(result.config)),
        "history": result.history,
        "best_epoch": result.best_epoch, "eps": eps, "bounds": list(args.bounds), "exact_limit": args.exact_limit,
        "layer_bounds": [dict(name=b.name, kind=b.kind, bound=b.bound, cumulative=b.cumulative) for b in bounds],
        "rows": rows, "published": {k: {"clean": c, "avg_cert": a, "certified_of_correct": dict(zip(map(str, DEFAULT_EPS), v))}
                                    for k, (c, a, v) in PUBLISHED.items()},
        "cpu": _cpu_model(), "torch_threads": args.torch_threads, "certify_threads": args.threads,
        "torch_version": torch.__version__, "python": platform.python_version(), "timings": timings,
    }
    if args.out is not None:
        Path(args.out).write_text(json.dumps(report, indent=1, default=float) + "\n", encoding="utf-8")
    if args.markdown is not None:
        Path(args.markdown).write_text(format_markdown(report), encoding="utf-8")
    _say(args, f"  total {timings['total_s']:.1f} s" + "".join(f"\n  wrote       {p}" for p in (args.out, args.markdown) if p))
    return 0


def _jsonable(config: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}


COMMAND = Command(
    name="lipschitz",
    help="certified 1NN on the features of a Lipschitz autoencoder (Sitawarin & Wagner, Table 6)",
    description=(
        "Trains Sitawarin & Wagner's Lipschitz autoencoder (or loads --checkpoint), bounds the encoder's "
        "l2 Lipschitz constant up to each layer soundly from its weights, and certifies the 1NN on the input "
        "and on each layer's features: a feature-space radius r certifies r / L in input space. One table per "
        "bound (margin, bisector, exact), next to the published Table 6."
    ),
    add_arguments=add_arguments,
    run=run,
)
