"""``nnmargin experiment``: the command-line front end of :func:`~.runner.run_experiment`.

    nnmargin experiment --dataset mnist --pairs 3-5,0-1 --methods 1nn,standard,trades \\
        --out runs/mnist --limit 2000 --eval-limit 200 --epochs 10 --attack-iters 20

Running the same command again resumes: finished units are skipped and trained networks are
reloaded from their checkpoints. ``experiment_main(argv)`` returns the exit code (0 success,
2 bad input, 130 interrupted).
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from .config import BOUNDS, DATASETS, DEFAULT_EPS, METHODS, SPLITS, parse_methods, parse_pairs


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _checked(parse):
    """An argparse ``type`` that reports ``parse``'s ValueError message as the usage error."""
    def convert(text: str):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    convert.__name__ = parse.__name__
    return convert


def _eps_list(text: str):
    return [float(v) for v in text.replace(",", " ").split()]


def add_experiment_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``nnmargin experiment`` options to ``parser`` (returned for chaining)."""
    eps_defaults = "; ".join(f"{d}: {' '.join(f'{e:.4g}' for e in DEFAULT_EPS[d]['linf'])} (linf), "
                             f"{' '.join(f'{e:.4g}' for e in DEFAULT_EPS[d]['l2'])} (l2)"
                             for d in ("mnist", "fashion-mnist", "cifar10"))
    parser.add_argument("--dataset", required=True, choices=DATASETS + ("fmnist", "cifar-10"),
                        help="benchmark dataset ('sample' = the MNIST subset embedded in nnmargin)")
    parser.add_argument("--pairs", default="all", type=_checked(parse_pairs),
                        help="class pairs: 'all' (the 45 pairs) or a list like '3-5,0-1' (default: all)")
    parser.add_argument("--methods", default=",".join(METHODS), type=_checked(parse_methods),
                        help=f"comma list of {', '.join(METHODS)} (default: all)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder: results.sqlite and models/ (re-use it to resume)")
    parser.add_argument("--splits", default=",".join(SPLITS), type=lambda t: [s.strip() for s in t.split(",")],
                        help="splits to evaluate (default: train,test)")
    parser.add_argument("--limit", type=_positive_int, metavar="N",
                        help="keep the first N train and N test points of each pair (file order)")
    parser.add_argument("--eval-limit", type=_positive_int, metavar="N",
                        help="certify / attack only the first N points of each split (default: all kept)")
    parser.add_argument("--epochs", type=_positive_int, metavar="E", help="training epochs (TrainConfig.epochs)")
    parser.add_argument("--early-stop-epochs", type=_positive_int, metavar="E",
                        help="epochs of the early-stop method (TrainConfig.early_stop_epochs)")
    parser.add_argument("--train-steps", type=_positive_int, metavar="K",
                        help="TRADES attack steps during training; the step sizes become 2.5 eps / K")
    parser.add_argument("--lr", type=float, help="training learning rate (TrainConfig.lr)")
    parser.add_argument("--batch-size", type=_positive_int, metavar="B", help="training batch size (TrainConfig.batch_size)")
    parser.add_argument("--attack-iters", type=_positive_int, default=100, metavar="K",
                        help="APGD iterations per restart (default 100)")
    parser.add_argument("--attack-restarts", type=_positive_int, default=1, metavar="R",
                        help="APGD random restarts (default 1)")
    parser.add_argument("--attack-batch-size", type=_positive_int, default=500, metavar="B")
    parser.add_argument("--eps-linf", type=_checked(_eps_list), metavar="'E1 E2 ...'",
                        help="l-inf sweep on the [0, 1] pixel scale; defaults: " + eps_defaults)
    parser.add_argument("--eps-l2", type=_checked(_eps_list), metavar="'E1 E2 ...'", help="l2 sweep (same units)")
    parser.add_argument("--bound", default="margin", choices=BOUNDS,
                        help="1NN robust radius: 'margin' (fastest, loosest lower bound), 'bisector' (tighter "
                             "lower bound, still fast) or 'exact' (minimal perturbation in the [0, 1] box; needs "
                             "scipy, ~0.05 s per point); default margin")
    parser.add_argument("--device", default="cpu", help="torch device for the networks: cpu or cuda")
    parser.add_argument("--data-dir", metavar="DIR", help="dataset root (default $NNMARGIN_DATA or ~/.cache/nnmargin)")
    parser.add_argument("--seed", type=int, default=0, help="training and attack seed (default 0)")
    parser.add_argument("--threads", type=_positive_int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    return parser


def train_overrides_from_args(args, dataset: str) -> dict:
    """TrainConfig overrides chosen by the options (only those given)."""
    overrides = {}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
        # Keep the learning-rate decay at the same fraction of training (defaults: 6, 8 of 10).
        overrides["lr_milestones"] = tuple(sorted({max(1, round(args.epochs * 0.6)), max(1, round(args.epochs * 0.8))}))
    if args.early_stop_epochs is not None:
        overrides["early_stop_epochs"] = args.early_stop_epochs
    if args.lr is not None:
        overrides["lr"] = args.lr
    if args.batch_size is not None:
        overrides["batch_size"] = args.batch_size
    if args.train_steps is not None:
        from .. import train

        base = train.default_config("mnist" if dataset == "sample" else dataset, "trades")
        overrides["attack_steps"] = args.train_steps
        # The rule of Madry et al. (2018) the defaults also use: the steps can cross the ball 2.5 times.
        overrides["step_linf"] = 2.5 * base.eps_linf / args.train_steps
        overrides["step_l2"] = 2.5 * base.eps_l2 / args.train_steps
    return overrides


def experiment_main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``nnmargin experiment`` with ``argv`` (without the sub-command name); returns the exit code."""
    from .._subcommand import parse_and_run

    return parse_and_run(add_experiment_arguments, run_from_args, "nnmargin experiment",
                         "1NN certificates vs adversarially trained networks on class pairs.", argv)


def run_from_args(args) -> int:
    """Run an experiment from parsed :func:`add_experiment_arguments` options; returns the exit code."""
    from .config import canonical_dataset
    from .runner import run_experiment
    from .store import SettingsMismatch

    try:
        dataset = canonical_dataset(args.dataset)
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        run_experiment(dataset, args.pairs, args.methods, args.out, eps_linf=args.eps_linf, eps_l2=args.eps_l2,
                       splits=args.splits, limit=args.limit, eval_limit=args.eval_limit,
                       train_overrides=train_overrides_from_args(args, dataset), attack_iters=args.attack_iters,
                       attack_restarts=args.attack_restarts, attack_batch_size=args.attack_batch_size,
                       bound=args.bound, device=args.device, data_dir=args.data_dir, seed=args.seed,
                       progress=not args.quiet)
    except KeyboardInterrupt:
        print("\nnnmargin experiment: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except (SettingsMismatch, ValueError, OSError, ImportError) as exc:
        print(f"nnmargin experiment: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    return 0
