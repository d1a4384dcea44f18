"""``nnmargin certify``: certified robust accuracy of the 1NN classifier on a dataset.

    nnmargin certify                          # embedded MNIST sample: no files, no network, ~1 s
    nnmargin certify --dataset mnist --classes 3 5 --eps 0.5 1 2 --out result.json
    nnmargin certify --bound exact --norm linf --limit 100 --plot figures/
"""
from __future__ import annotations

import contextlib
import math
import sys
import time

import numpy as np

from .. import cuda_available, datasets
from .._errors import InputError
from .._names import AUTO_USES_CUDA, BOUNDS, DEVICES, MAX_PIVOTS, METRICS, NORMS, PROGRESS_BATCH
from ..certify import certify
from ..knn_attack import attack_knn
from ..trainset import TrainSet
from ._certify_data import add_dataset_arguments, check_dataset_arguments, load_data
from ._certify_output import format_report, write_figures, write_outputs
from ._common import Command, arg_type, check_output_paths, is_terminal, positive_int, require

# Default perturbation sizes, in each metric's norm on the [0, 1] pixel scale. They bracket the
# values robustness papers report for MNIST / CIFAR-10 (see EPS_HELP for the reasoning).
DEFAULT_EPS = {
    "l2": (0.5, 1.0, 2.0),
    "l1": (2.0, 5.0, 10.0),
    "linf": (0.01, 0.03, 0.1, 0.3),
}
# Queries per certify chunk (the progress bar advances per chunk); the exact bound always takes
# small chunks, its radii cost a fraction of a second per query.
CHUNK_SIZE = PROGRESS_BATCH["margin"]
EXACT_CHUNK_SIZE = PROGRESS_BATCH["exact"]

EPS_HELP = (
    "perturbation sizes to certify: a query counts as certified at eps when it is classified "
    "correctly and no perturbation of norm <= eps (in --metric's norm) can change its prediction. "
    "Units: the [0, 1] pixel scale, i.e. uint8 intensity / 255 (eps 0.1 in linf = 25.5 grey "
    "levels per pixel). Defaults per metric: l2: 0.5 1 2 (MNIST l2 results are usually quoted "
    "at 1 to 2, CIFAR-10 at 0.5); l1: 2 5 10 (10 is the usual MNIST l1 budget); linf: 0.01 0.03 "
    "0.1 0.3 (8/255 ~ 0.03 is the CIFAR-10 standard, 0.1 and 0.3 the MNIST ones)"
)
AUTO_HELP = ("'auto' picks CUDA when available" if AUTO_USES_CUDA else
             "'auto' stays on the CPU until the CUDA backend has passed its GPU check (see 'nnmargin info')")

_class_arg = arg_type(int, lambda v: 0 <= v <= 9, "class ids are integers 0..9, got {text!r}")
_eps_arg = arg_type(float, lambda v: bool(np.isfinite(v) and v >= 0), "eps must be a finite number >= 0, got {text!r}")


def add_arguments(p) -> None:
    """The options of ``nnmargin certify``."""
    data = p.add_argument_group("data")
    add_dataset_arguments(data, "the embedded MNIST sample")
    data.add_argument("--classes", nargs=2, type=_class_arg, metavar=("A", "B"),
                      help="certify the binary problem class A vs class B (class ids 0..9) instead of "
                           "all 10 classes")
    data.add_argument("--split", choices=datasets.SPLITS, default="test",
                      help="where the queries come from (default: test). With 'train' the queries "
                           "are the training points themselves, each its own nearest neighbour "
                           "(distance 0) unless --leave-one-out is given")
    data.add_argument("--leave-one-out", action="store_true",
                      help="with --split train: each training point ignores itself when certified")
    data.add_argument("--limit", type=positive_int, metavar="N",
                      help="certify only the first N queries (file order); the training set is kept whole")

    cert = p.add_argument_group("certificate")
    cert.add_argument("--metric", choices=METRICS, default="l2",
                      help="norm of the nearest-neighbour distance and of the perturbation (default: l2)")
    cert.add_argument("--eps", nargs="+", type=_eps_arg, metavar="EPS", help=EPS_HELP)
    cert.add_argument("--bound", choices=BOUNDS, default="margin",
                      help="margin: (d_other - d_same)/2 (any metric); bisector: distance to the nearest "
                           "bisector half-space, tighter (metric l2); exact: the minimal perturbation that "
                           "changes the prediction, by QP/LP per Voronoi cell, with adversarial examples "
                           "(metric l2; seconds per query on full MNIST) (default: margin)")
    cert.add_argument("--norm", choices=NORMS, default=None,
                      help="norm of the perturbation and of eps (default: the metric's)")
    cert.add_argument("--pivots", type=int, choices=range(1, MAX_PIVOTS + 1), default=1,
                      help="same-class pivots of the bisector bound: more is tighter and slower (default: 1)")
    cert.add_argument("--k", type=positive_int, default=1, metavar="K",
                      help="voting neighbours: certify the K-NN classifier (plurality vote; K > 1 is certified "
                           "by the triangle-inequality relaxation, bound margin, CPU) (default: 1)")
    cert.add_argument("--attack", action="store_true",
                      help="also attack the classifier (the k-NN attack, norm l2 or linf) and print the attacked "
                           "robust accuracy beside the certified one: an upper bound beside the lower bound")
    cert.add_argument("--box", action="store_true",
                      help="with --bound exact: perturbed images must stay valid pixels in [0, 1]")

    run_group = p.add_argument_group("execution")
    run_group.add_argument("--threads", type=positive_int, metavar="N", help="CPU threads (default: all cores)")
    run_group.add_argument("--device", choices=DEVICES, default="cpu",
                           help=f"where the search runs; {AUTO_HELP} (default: cpu)")
    run_group.add_argument("--scheduler", metavar="ADDRESS",
                           help="shard the training set over a Dask cluster: a scheduler address "
                                "(tcp://host:8786) or 'local' for a LocalCluster on this machine; results are "
                                "identical to one machine (needs nnmargin[distributed]; bounds margin, bisector)")
    run_group.add_argument("--workers", type=positive_int, metavar="N",
                           help="with --scheduler local: worker processes (default: 2); the training set is "
                                "split into one shard per worker unless --shard-rows is given")
    run_group.add_argument("--shard-rows", type=positive_int, metavar="N",
                           help="with --scheduler: training points per shard (default: an even split over the "
                                "workers)")
    run_group.add_argument("--processes", type=positive_int, default=1, metavar="N",
                           help="worker processes over the query chunks (default: 1); with --bound exact, whose "
                                "programs run one per core, use one per core. Results do not depend on it")
    run_group.add_argument("--checkpoint", metavar="DIR",
                           help="keep every finished chunk of queries in DIR; the same command run again (after an "
                                "interruption) reuses them and computes only the rest. A folder of another run "
                                "(other data or options) is refused")
    run_group.add_argument("--chunk-size", type=positive_int, default=CHUNK_SIZE, metavar="N",
                           help=f"queries per search call; the progress bar advances per chunk (default: "
                                f"{CHUNK_SIZE}; at most {EXACT_CHUNK_SIZE} with --bound exact)")

    out = p.add_argument_group("output")
    out.add_argument("--out", metavar="FILE.json",
                     help="write the summary, run metadata and per-query arrays as JSON")
    out.add_argument("--csv", metavar="FILE.csv",
                     help="write one row per query: label, prediction, distances to the nearest same-class "
                          "and other-class training points, their indices in the training set used (for "
                          "--classes: the pair's training examples in file order), certified radius")
    out.add_argument("--plot", metavar="DIR",
                     help="write PNG figures to DIR: robust accuracy vs eps (the margin bound in each norm "
                          "and this run's bound), histogram of radii, and (with --bound exact) adversarial "
                          "examples")
    out.add_argument("--quiet", action="store_true",
                     help="print nothing on success (no progress bar, no table); use with --out / --csv")


def check(args) -> None:
    """Rules between options, checked before any data is loaded."""
    check_dataset_arguments(args)
    if args.classes is not None and args.classes[0] == args.classes[1]:
        raise InputError(f"--classes needs two different classes, got {args.classes[0]} twice")
    if args.leave_one_out and args.split != "train":
        raise InputError("--leave-one-out needs --split train (test queries are never training points)")
    if args.leave_one_out and args.limit is not None:
        raise InputError("--limit cannot be combined with --leave-one-out: the leave-one-out queries "
                         "are the whole training set")
    if args.bound != "margin" and args.metric != "l2":
        raise InputError(f"--bound {args.bound} certifies the l2-metric 1NN: use --metric l2 "
                         f"(with --norm for the perturbation norm)")
    if args.box and args.bound != "exact":
        raise InputError("--box applies to --bound exact (the other bounds hold with or without it)")
    if args.bound != "margin" and args.device == "cuda":
        raise InputError(f"--bound {args.bound} runs on the CPU in this version: use --device cpu")
    if args.scheduler is None and (args.workers is not None or args.shard_rows is not None):
        raise InputError("--workers and --shard-rows apply with --scheduler")
    if args.scheduler is not None and args.workers is not None and args.scheduler != "local":
        raise InputError("--workers applies to --scheduler local; a remote cluster has its own workers")
    if args.scheduler is not None and (args.processes > 1 or args.checkpoint is not None):
        raise InputError("--processes and --checkpoint run on one machine: drop --scheduler (the cluster's workers "
                         "share the work already)")
    if args.scheduler is not None and args.bound == "exact":
        raise InputError("--bound exact runs on one machine in this version: drop --scheduler, or use "
                         "--bound margin or bisector")
    if args.device == "cuda" and not cuda_available():
        raise InputError("--device cuda: no CUDA device is usable by this nnmargin build "
                         "(see 'nnmargin info'); use --device cpu or auto")
    check_output_paths(args)


def run(args, argv) -> int:
    """``nnmargin certify``: load, certify (in chunks, with progress), report, write outputs."""
    check(args)
    if args.plot is not None:
        require("matplotlib")
    if args.bound == "exact":
        require("scipy")
    eps = list(args.eps) if args.eps else list(DEFAULT_EPS[args.norm or args.metric])
    start = time.perf_counter()
    data = load_data(args)
    with contextlib.ExitStack() as stack:
        began = time.perf_counter()
        trainset = _trainset(args, data, stack)
        prepare_seconds = time.perf_counter() - began
        chunk = min(args.chunk_size, EXACT_CHUNK_SIZE) if args.bound == "exact" else args.chunk_size
        cert = certify(data.x_query, data.y_query, trainset, metric=args.metric, bound=args.bound, norm=args.norm,
                       pivots=args.pivots, leave_one_out=args.leave_one_out, num_threads=args.threads,
                       device=args.device, box=True if args.box else None, batch_size=chunk,
                       progress=not args.quiet and is_terminal(sys.stderr), k=args.k, processes=args.processes,
                       checkpoint=args.checkpoint)
        attack = None
        if args.attack:
            attack = attack_knn(data.x_query, data.y_query, trainset, k=args.k, metric=args.metric,
                                norm=args.norm or args.metric, num_threads=args.threads)
    timings = {"load_s": data.load_seconds, "prepare_s": prepare_seconds, "search_s": cert.seconds,
               "total_s": time.perf_counter() - start}
    written = write_outputs(data, cert, eps, timings, args, argv)
    if args.plot is not None:
        written += write_figures(data, cert, args.plot)
    if not args.quiet:
        print(format_report(data, cert, eps, timings, args, attack))
        for path in written:
            print(f"  wrote       {path}")
    return 0


def _trainset(args, data, stack: contextlib.ExitStack):
    """The training set, prepared here so the table can report it apart from the search: on this
    machine, or sharded over the Dask cluster of --scheduler (closed with ``stack``)."""
    if args.scheduler is None:
        trainset = TrainSet(data.x_train, data.y_train)
        trainset.prepared(args.metric, args.threads or 0)
        return trainset
    require("distributed")
    from distributed import Client, LocalCluster

    from .. import distributed as sharded

    if args.scheduler == "local":
        cluster = stack.enter_context(LocalCluster(n_workers=args.workers or 2, threads_per_worker=args.threads or 1,
                                                   processes=True, host="127.0.0.1", dashboard_address=None))
        client = stack.enter_context(Client(cluster))
    else:
        try:
            client = stack.enter_context(Client(args.scheduler, timeout="30s"))
        except OSError as exc:
            raise InputError(f"--scheduler {args.scheduler}: cannot reach the Dask scheduler ({exc})") from None
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    rows = args.shard_rows or math.ceil(len(data.y_train) / workers)
    return stack.enter_context(sharded.TrainSet(data.x_train, data.y_train, client=client, shard_rows=rows))


COMMAND = Command(
    name="certify",
    help="certified robust accuracy of the 1NN classifier on a dataset",
    description=(
        "Exact robustness certificates for the 1-nearest-neighbour classifier: for each query, "
        "the nearest training point of its own class and of any other class give a radius "
        "(half the margin) within which no perturbation changes the prediction. Without data "
        "options it runs on the MNIST sample embedded in nnmargin (2000 training / 500 test "
        "images), needing no files or network."
    ),
    add_arguments=add_arguments,
    run=run,
)
