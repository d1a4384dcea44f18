"""``nnmargin experiment``: the command-line front end of :func:`nnmargin.experiment.run_experiment`.

    nnmargin experiment --dataset mnist --pairs 3-5,0-1 --methods 1nn,standard,trades \\
        --out runs/mnist --limit 2000 --eval-limit 200 --epochs 10 --attack-iters 20

Running the same command again resumes: finished units are skipped and trained networks are
reloaded from their checkpoints.
"""
from __future__ import annotations

from ..experiment import run_experiment
from ..experiment.config import (BOUNDS, DATASETS, DEFAULT_EPS, DEFAULT_METHODS, METHODS, NETWORK_METHODS,
                                 SPLITS, canonical_dataset, parse_methods, parse_pairs)
from ._common import Command, arg_type, positive_int, require


def _eps_list(text: str):
    return [float(v) for v in text.replace(",", " ").split()]


def _split_list(text: str):
    return [s.strip() for s in text.split(",")]


def add_arguments(parser) -> None:
    """The options of ``nnmargin experiment``."""
    eps_defaults = "; ".join(f"{d}: {' '.join(f'{e:.4g}' for e in DEFAULT_EPS[d]['linf'])} (linf), "
                             f"{' '.join(f'{e:.4g}' for e in DEFAULT_EPS[d]['l2'])} (l2)"
                             for d in ("mnist", "fashion-mnist", "cifar10"))
    parser.add_argument("--dataset", required=True, choices=DATASETS + ("fmnist", "cifar-10"),
                        help="benchmark dataset ('sample' = the MNIST subset embedded in nnmargin)")
    parser.add_argument("--pairs", default="all", type=arg_type(parse_pairs),
                        help="class pairs: 'all' (the 45 pairs) or a list like '3-5,0-1' (default: all)")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS), type=arg_type(parse_methods),
                        help=f"comma list of {', '.join(METHODS)} (default: {','.join(DEFAULT_METHODS)}; "
                             f"the k-NN methods are certified by the relaxation bound)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder: results.sqlite and models/ (re-use it to resume)")
    parser.add_argument("--splits", default=",".join(SPLITS), type=_split_list,
                        help="splits to evaluate (default: train,test)")
    parser.add_argument("--limit", type=positive_int, metavar="N",
                        help="keep the first N train and N test points of each pair (file order)")
    parser.add_argument("--eval-limit", type=positive_int, metavar="N",
                        help="certify / attack only the first N points of each split (default: all kept)")
    parser.add_argument("--epochs", type=positive_int, metavar="E", help="training epochs (TrainConfig.epochs)")
    parser.add_argument("--early-stop-epochs", type=positive_int, metavar="E",
                        help="epochs of the early-stop method (TrainConfig.early_stop_epochs)")
    parser.add_argument("--train-steps", type=positive_int, metavar="K",
                        help="TRADES attack steps during training; the step sizes become 2.5 eps / K")
    parser.add_argument("--lr", type=float, help="training learning rate (TrainConfig.lr)")
    parser.add_argument("--batch-size", type=positive_int, metavar="B", help="training batch size (TrainConfig.batch_size)")
    parser.add_argument("--attack-iters", type=positive_int, default=100, metavar="K",
                        help="APGD iterations per restart (default 100)")
    parser.add_argument("--attack-restarts", type=positive_int, default=1, metavar="R",
                        help="APGD random restarts (default 1)")
    parser.add_argument("--attack-batch-size", type=positive_int, default=500, metavar="B")
    parser.add_argument("--eps-linf", type=arg_type(_eps_list), metavar="'E1 E2 ...'",
                        help="l-inf sweep on the [0, 1] pixel scale; defaults: " + eps_defaults)
    parser.add_argument("--eps-l2", type=arg_type(_eps_list), metavar="'E1 E2 ...'", help="l2 sweep (same units)")
    parser.add_argument("--bound", default="margin", choices=BOUNDS,
                        help="1NN robust radius: 'margin' (fastest, loosest lower bound), 'bisector' (tighter "
                             "lower bound, still fast) or 'exact' (minimal perturbation in the [0, 1] box; needs "
                             "scipy, ~0.05 s per point); default margin")
    parser.add_argument("--device", default="cpu", help="torch device for the networks: cpu or cuda")
    parser.add_argument("--data-dir", metavar="DIR", help="dataset root (default $NNMARGIN_DATA or ~/.cache/nnmargin)")
    parser.add_argument("--seed", type=int, default=0, help="training and attack seed (default 0)")
    parser.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")


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
        from .. import train  # needs torch, which only this option and the networks need

        base = train.default_config("mnist" if dataset == "sample" else dataset, "trades")
        overrides["attack_steps"] = args.train_steps
        # The rule of Madry et al. (2018) the defaults also use: the steps can cross the ball 2.5 times.
        overrides["step_linf"] = 2.5 * base.eps_linf / args.train_steps
        overrides["step_l2"] = 2.5 * base.eps_l2 / args.train_steps
    return overrides


def run(args, argv) -> int:
    """``nnmargin experiment``: run (or resume) the experiment the options describe."""
    dataset = canonical_dataset(args.dataset)
    if any(m in NETWORK_METHODS for m in args.methods):
        require("torch", "pyautoattack")  # before the 1NN units, not after them
    if args.bound == "exact" and "1nn" in args.methods:
        require("scipy")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    run_experiment(dataset, args.pairs, args.methods, args.out, eps_linf=args.eps_linf, eps_l2=args.eps_l2,
                   splits=args.splits, limit=args.limit, eval_limit=args.eval_limit,
                   train_overrides=train_overrides_from_args(args, dataset), attack_iters=args.attack_iters,
                   attack_restarts=args.attack_restarts, attack_batch_size=args.attack_batch_size,
                   bound=args.bound, device=args.device, data_dir=args.data_dir, seed=args.seed,
                   progress=not args.quiet)
    return 0


COMMAND = Command(
    name="experiment",
    help="1NN certificates vs adversarially trained networks on class pairs (needs torch)",
    description="1NN certificates vs adversarially trained networks on class pairs.",
    add_arguments=add_arguments,
    run=run,
    error_prefix="nnmargin experiment",
    interrupted="interrupted; run the same command again to resume",
)
