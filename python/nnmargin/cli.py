"""The ``nnmargin`` command line: certify a 1-nearest-neighbour classifier on a benchmark dataset.

    nnmargin certify                          # embedded MNIST sample: no files, no network, ~1 s
    nnmargin certify --dataset mnist --classes 3 5 --eps 0.5 1 2 --out result.json
    nnmargin certify --bound exact --norm linf --limit 100 --plot figures/
    nnmargin info                             # version, CPU kernels, CUDA, data directory

``main(argv)`` returns the exit code: 0 on success, 2 for a problem with the input (bad option,
missing dataset file, ...), reported as one ``nnmargin: error: ...`` line on stderr, 130 when
interrupted.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

import nnmargin
from nnmargin import datasets
from nnmargin._progress import ProgressBar

PROG = "nnmargin"
SAMPLE = "sample"
METRICS = ("l2", "l1", "linf")
# Default perturbation sizes, in each metric's norm on the [0, 1] pixel scale. They bracket the
# values robustness papers report for MNIST / CIFAR-10 (see EPS_HELP for the reasoning).
DEFAULT_EPS = {
    "l2": (0.5, 1.0, 2.0),
    "l1": (2.0, 5.0, 10.0),
    "linf": (0.01, 0.03, 0.1, 0.3),
}
# Queries per search call: large enough that each call keeps every core busy, small enough that the
# progress bar moves every few seconds on full MNIST / CIFAR-10.
CHUNK_SIZE = 2000

EPS_HELP = (
    "perturbation sizes to certify: a query counts as certified at eps when it is classified "
    "correctly and no perturbation of norm <= eps (in --metric's norm) can change its prediction. "
    "Units: the [0, 1] pixel scale, i.e. uint8 intensity / 255 (eps 0.1 in linf = 25.5 grey "
    "levels per pixel). Defaults per metric: l2: 0.5 1 2 (MNIST l2 results are usually quoted "
    "at 1 to 2, CIFAR-10 at 0.5); l1: 2 5 10 (10 is the usual MNIST l1 budget); linf: 0.01 0.03 "
    "0.1 0.3 (8/255 ~ 0.03 is the CIFAR-10 standard, 0.1 and 0.3 the MNIST ones)"
)


class CliError(Exception):
    """A problem with the user's input or environment: one line on stderr and exit code 2."""


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors become :class:`CliError` (one line, no usage dump)."""

    def error(self, message):
        raise CliError(f"{message} (see '{self.prog} --help')")


@dataclasses.dataclass
class Problem:
    """What to certify: the training set of the 1NN classifier and the queries."""

    dataset: str                        # "sample", "mnist", "fashion-mnist" or "cifar10"
    description: str
    classes: Optional[Tuple[int, int]]  # None: all 10 classes
    split: str                          # the split the queries come from
    x_train: np.ndarray
    y_train: np.ndarray
    x_query: np.ndarray
    y_query: np.ndarray
    load_seconds: float


# --------------------------------------------------------------------------- argument parsing

def _dataset_arg(text: str) -> str:
    """argparse type for --dataset: "sample" or a dataset name / alias known to nnmargin.datasets."""
    if text.lower() == SAMPLE:
        return SAMPLE
    try:
        return datasets.canonical_name(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"unknown dataset {text!r}; choose from {', '.join((SAMPLE,) + tuple(datasets.DATASETS))}"
        ) from None


def _checked(convert, valid, message: str):
    """An argparse type: ``convert(text)``, rejected with ``message`` (formatted with the text) when
    conversion fails or ``valid(value)`` is false."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(message.format(text=text)) from None
        if not valid(value):
            raise argparse.ArgumentTypeError(message.format(text=text))
        return value
    return parse


_class_arg = _checked(int, lambda v: 0 <= v <= 9, "class ids are integers 0..9, got {text!r}")
_eps_arg = _checked(float, lambda v: bool(np.isfinite(v) and v >= 0), "eps must be a finite number >= 0, got {text!r}")
# counts (--limit, --threads, --chunk-size)
_positive_int_arg = _checked(int, lambda v: v >= 1, "expected a positive integer, got {text!r}")


def _add_certify_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "certify",
        help="certified robust accuracy of the 1NN classifier on a dataset",
        description=(
            "Exact robustness certificates for the 1-nearest-neighbour classifier: for each query, "
            "the nearest training point of its own class and of any other class give a radius "
            "(half the margin) within which no perturbation changes the prediction. Without data "
            "options it runs on the MNIST sample embedded in nnmargin (2000 training / 500 test "
            "images), needing no files or network."
        ),
    )
    data = p.add_argument_group("data")
    data.add_argument("--dataset", type=_dataset_arg, default=SAMPLE, metavar="{sample,mnist,fashion-mnist,cifar10}",
                      help="'sample' (default): the embedded MNIST sample; otherwise a benchmark read "
                           "from its official files under --data-dir (downloaded if missing)")
    data.add_argument("--data-dir", metavar="DIR",
                      help=f"data root holding <DIR>/mnist/, <DIR>/fashion-mnist/, <DIR>/cifar-10/ "
                           f"(default: ${datasets.DATA_ENV_VAR}, else ~/.cache/nnmargin)")
    data.add_argument("--classes", nargs=2, type=_class_arg, metavar=("A", "B"),
                      help="certify the binary problem class A vs class B (class ids 0..9) instead of "
                           "all 10 classes")
    data.add_argument("--split", choices=("test", "train"), default="test",
                      help="where the queries come from (default: test). With 'train' the queries "
                           "are the training points themselves, each its own nearest neighbour "
                           "(distance 0) unless --leave-one-out is given")
    data.add_argument("--leave-one-out", action="store_true",
                      help="with --split train: each training point ignores itself when certified")
    data.add_argument("--limit", type=_positive_int_arg, metavar="N",
                      help="certify only the first N queries (file order); the training set is kept whole")
    data.add_argument("--no-download", action="store_true",
                      help="fail instead of downloading missing dataset files")

    cert = p.add_argument_group("certificate")
    cert.add_argument("--metric", choices=METRICS, default="l2",
                      help="norm of the nearest-neighbour distance and of the perturbation (default: l2)")
    cert.add_argument("--eps", nargs="+", type=_eps_arg, metavar="EPS", help=EPS_HELP)
    cert.add_argument("--bound", choices=("margin", "bisector", "exact"), default="margin",
                      help="margin: (d_other - d_same)/2 (any metric); bisector: distance to the nearest "
                           "bisector half-space, tighter (metric l2); exact: the minimal perturbation that "
                           "changes the prediction, by QP/LP per Voronoi cell, with adversarial examples "
                           "(metric l2; seconds per query on full MNIST) (default: margin)")
    cert.add_argument("--norm", choices=METRICS, default=None,
                      help="norm of the perturbation and of eps (default: the metric's)")
    cert.add_argument("--pivots", type=int, choices=(1, 2, 3), default=1,
                      help="same-class pivots of the bisector bound: more is tighter and slower (default: 1)")
    cert.add_argument("--box", action="store_true",
                      help="with --bound exact: perturbed images must stay valid pixels in [0, 1]")

    run = p.add_argument_group("execution")
    run.add_argument("--threads", type=_positive_int_arg, metavar="N", help="CPU threads (default: all cores)")
    run.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu",
                     help="where the search runs; 'auto' picks CUDA when available (default: cpu)")
    run.add_argument("--chunk-size", type=_positive_int_arg, default=CHUNK_SIZE, metavar="N",
                     help=f"queries per search call; the progress bar advances per chunk (default: {CHUNK_SIZE})")

    out = p.add_argument_group("output")
    out.add_argument("--out", metavar="FILE.json",
                     help="write the summary, run metadata and per-query arrays as JSON")
    out.add_argument("--csv", metavar="FILE.csv",
                     help="write one row per query: label, prediction, distances to the nearest same-class "
                          "and other-class training points, their indices in the training set used (for "
                          "--classes: the pair's training examples in file order), certified radius")
    out.add_argument("--plot", metavar="DIR",
                     help="write PNG figures to DIR: robust accuracy vs eps for the bounds and norms, "
                          "histogram of radii, and (with --bound exact) adversarial examples")
    out.add_argument("--quiet", action="store_true",
                     help="print nothing on success (no progress bar, no table); use with --out / --csv")
    p.set_defaults(handler=run_certify)


def _add_info_parser(subparsers) -> None:
    p = subparsers.add_parser("info", help="version, CPU kernels, CUDA and data directory",
                              description="Show what this nnmargin installation can use.")
    p.add_argument("--data-dir", metavar="DIR", help="show this data root instead of the default one")
    p.set_defaults(handler=run_info)


def build_parser() -> argparse.ArgumentParser:
    """The ``nnmargin`` argument parser with its ``certify`` and ``info`` sub-commands."""
    parser = _Parser(prog=PROG, description="Exact, fast robustness certificates for nearest-neighbour classifiers.")
    parser.add_argument("--version", action="version", version=f"{PROG} {nnmargin.__version__}")
    subparsers = parser.add_subparsers(title="commands", dest="command",
                                       metavar="{certify,info,experiment,report}")
    _add_certify_parser(subparsers)
    _add_info_parser(subparsers)
    for name, (_, _, text) in DELEGATED.items():  # listed here, parsed by their own modules
        subparsers.add_parser(name, help=text, add_help=False)
    return parser


def _check_certify_args(args) -> None:
    """Rules between options, checked before any data is loaded."""
    if args.dataset == SAMPLE and (args.data_dir is not None or args.no_download):
        raise CliError("--data-dir and --no-download apply to --dataset mnist, fashion-mnist or cifar10, "
                       "not to the embedded sample")
    if args.classes is not None and args.classes[0] == args.classes[1]:
        raise CliError(f"--classes needs two different classes, got {args.classes[0]} twice")
    if args.leave_one_out and args.split != "train":
        raise CliError("--leave-one-out needs --split train (test queries are never training points)")
    if args.leave_one_out and args.limit is not None:
        raise CliError("--limit cannot be combined with --leave-one-out: the leave-one-out queries "
                       "are the whole training set")
    if args.bound != "margin" and args.metric != "l2":
        raise CliError(f"--bound {args.bound} certifies the l2-metric 1NN: use --metric l2 "
                       f"(with --norm for the perturbation norm)")
    if args.bound == "exact" and args.leave_one_out:
        raise CliError("--bound exact does not support --leave-one-out yet")
    if args.box and args.bound != "exact":
        raise CliError("--box applies to --bound exact (the other bounds hold with or without it)")
    if args.bound != "margin" and args.device == "cuda":
        raise CliError(f"--bound {args.bound} runs on the CPU in this version: use --device cpu")
    if args.plot is not None and Path(args.plot).exists() and not Path(args.plot).is_dir():
        raise CliError(f"--plot {args.plot}: exists and is not a directory")
    if args.device == "cuda" and not nnmargin.cuda_available():
        raise CliError("--device cuda: no CUDA device is usable by this nnmargin build "
                       "(see 'nnmargin info'); use --device cpu or auto")
    for option in ("out", "csv"):
        _check_writable(getattr(args, option), f"--{option}")


def _check_writable(path: Optional[str], option: str) -> None:
    """Fail early (before a long run) when an output file cannot be created."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise CliError(f"{option} {path}: is a directory")
    if not target.parent.resolve().is_dir():
        raise CliError(f"{option} {path}: folder {target.parent} does not exist")


# --------------------------------------------------------------------------- data

def load_problem(args) -> Problem:
    """The training set and queries selected by --dataset, --classes, --split and --limit."""
    start = time.perf_counter()
    if args.dataset == SAMPLE:
        x_train, y_train, x_test, y_test, description = _load_sample(args.classes)
    else:
        x_train, y_train, x_test, y_test, description = _load_benchmark(args)
    x_query, y_query = (x_train, y_train) if args.split == "train" else (x_test, y_test)
    if args.limit is not None:
        x_query, y_query = x_query[: args.limit], y_query[: args.limit]
    if len(y_query) == 0:
        raise CliError(f"no queries: the {args.split} split of {description} is empty")
    classes = tuple(args.classes) if args.classes is not None else None
    return Problem(args.dataset, description, classes, args.split, x_train, y_train, x_query, y_query,
                   time.perf_counter() - start)


def _load_sample(classes):
    """The embedded MNIST sample, all classes or the pair ``classes`` (original labels kept)."""
    sample = datasets.load_sample()
    description = (f"{sample.name} (embedded in nnmargin: first {len(sample.y_train)} train / "
                   f"{len(sample.y_test)} test images of MNIST)")
    arrays = (sample.x_train, sample.y_train, sample.x_test, sample.y_test)
    if classes is not None:
        pair = datasets.pair_from_arrays(*arrays, *classes, relabel=False, dataset=sample.name)
        arrays = (pair.x_train, pair.y_train, pair.x_test, pair.y_test)
    return (*arrays, description)


def _load_benchmark(args):
    """A benchmark dataset from its official files, all classes or the pair ``args.classes``."""
    download = not args.no_download
    root = datasets.resolve_data_dir(args.data_dir)
    description = f"{args.dataset} (official files under {root})"
    if args.classes is not None:
        pair = datasets.binary_pair(args.dataset, *args.classes, data_dir=args.data_dir,
                                    download=download, relabel=False)
        return pair.x_train, pair.y_train, pair.x_test, pair.y_test, description
    # Only the splits the run needs: queries from the training split need no test files.
    x_train, y_train = datasets.load(args.dataset, "train", args.data_dir, download)
    if args.split == "train":
        return x_train, y_train, x_train[:0], y_train[:0], description
    x_test, y_test = datasets.load(args.dataset, "test", args.data_dir, download)
    return x_train, y_train, x_test, y_test, description


# --------------------------------------------------------------------------- certification

def combine_results(parts: Sequence["nnmargin.CertifyResult"]) -> "nnmargin.CertifyResult":
    """One :class:`~nnmargin.CertifyResult` for consecutive query chunks certified against one training
    set: per-query arrays concatenated, search times and numeric counters added."""
    first = parts[0]
    if len(parts) == 1:
        return first
    arrays = {
        f.name: np.concatenate([getattr(p, f.name) for p in parts])
        for f in dataclasses.fields(first)
        if isinstance(getattr(first, f.name), np.ndarray)
    }
    # counters and timings of the chunks add up (programs solved, seconds, ...)
    info = dict(first.info)
    for key, value in first.info.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "pivots":
            info[key] = sum(p.info.get(key, 0) for p in parts)
    return dataclasses.replace(first, **arrays, seconds=sum(p.seconds for p in parts), info=info)


def certify_problem(problem: Problem, args, progress: ProgressBar):
    """Certify ``problem`` in chunks of ``args.chunk_size`` queries, advancing ``progress``.

    The training data is prepared once (one :class:`~nnmargin.TrainSet`) and reused by every chunk.
    Returns ``(result, prepare_seconds)``.
    """
    start = time.perf_counter()
    trainset = nnmargin.TrainSet(problem.x_train, problem.y_train)
    trainset.prepared(args.metric)
    prepare_seconds = time.perf_counter() - start
    options = dict(metric=args.metric, num_threads=args.threads, device=args.device, bound=args.bound,
                   norm=args.norm, pivots=args.pivots, box=True if args.box else None)
    if args.leave_one_out:
        # Query i must be training point i, so the training set is searched in one call.
        result = nnmargin.certify(problem.x_query, problem.y_query, trainset, leave_one_out=True, **options)
        progress.update(len(result))
        return result, prepare_seconds
    parts = []
    # exact radii take a fraction of a second per query: small chunks keep the progress bar moving
    chunk = min(args.chunk_size, 32) if args.bound == "exact" else args.chunk_size
    for begin in range(0, len(problem.y_query), chunk):
        end = begin + chunk
        parts.append(nnmargin.certify(problem.x_query[begin:end], problem.y_query[begin:end], trainset, **options))
        progress.update(len(parts[-1]))
    return combine_results(parts), prepare_seconds


# --------------------------------------------------------------------------- reporting

def _classes_text(problem: Problem) -> str:
    names = datasets.CLASS_NAMES["mnist" if problem.dataset == SAMPLE else problem.dataset]
    if problem.classes is None:
        return "all 10 (0-9)"
    a, b = problem.classes
    if names[a] == str(a):  # digits need no name
        return f"{a} vs {b}"
    return f"{a} ({names[a]}) vs {b} ({names[b]})"


def _queries_text(problem: Problem, cert, args) -> str:
    text = f"{len(cert)} from the {problem.split} split"
    if args.limit is not None:
        text += f" (first {args.limit})"
    if problem.split == "train":
        text += ", leave-one-out" if cert.leave_one_out else ", each its own neighbour"
    return text


def _accuracy_row(eps_text: str, accuracy: float, n: int) -> str:
    """One table row: eps, accuracy in percent, and as a count of the n queries."""
    count = int(round(accuracy * n))
    return f"  {eps_text:<11}  {100 * accuracy:6.2f} %   {count:>{len(str(n))}} / {n}"


def format_report(problem: Problem, cert, eps: Sequence[float], timings: dict, args) -> str:
    """The human-readable table printed by ``nnmargin certify``."""
    n = len(cert)
    threads = f"{args.threads} threads" if args.threads else f"all {os.cpu_count()} cores"
    device = cert.info.get("device", args.device)
    lines = [
        f"nnmargin {nnmargin.__version__}: exact 1-NN robustness certificates",
        f"  dataset     {problem.description}",
        f"  classes     {_classes_text(problem)}",
        f"  training    {cert.n_train} points (train split)",
        f"  queries     {_queries_text(problem, cert, args)}",
        f"  metric      {cert.metric} (distances in this norm, pixels scaled to [0, 1])",
        f"  bound       {cert.bound}, radii and eps in the {cert.norm} norm",
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
    lines += [
        "",
        "  time        load {load_s:.2f} s, prepare {prepare_s:.2f} s, search {search_s:.2f} s, "
        "total {total_s:.2f} s".format(**timings),
    ]
    return "\n".join(lines)


def result_document(problem: Problem, cert, eps: Sequence[float], timings: dict, argv) -> dict:
    """The ``--out`` JSON: run metadata, then ``cert.to_dict`` (summary and per-query arrays)."""
    meta = {
        "nnmargin_version": nnmargin.__version__,
        "argv": list(argv),
        "dataset": problem.dataset,
        "dataset_description": problem.description,
        "classes": list(problem.classes) if problem.classes is not None else None,
        "split": problem.split,
        "eps": [float(e) for e in eps],
        "timings": timings,
    }
    return {**meta, **cert.to_dict(arrays=True, eps=eps)}


def _write_outputs(problem: Problem, cert, eps, timings, args, argv) -> List[str]:
    """Write --out / --csv; returns the paths written."""
    written = []
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(result_document(problem, cert, eps, timings, argv), f, indent=1)
            f.write("\n")
        written.append(args.out)
    if args.csv:
        cert.to_csv(args.csv)
        written.append(args.csv)
    return written


def write_figures(problem: Problem, cert, args) -> List[str]:
    """--plot: robust accuracy vs eps (margin and bisector in each norm, plus this run's bound),
    histogram of this run's radii, and adversarial examples when the run has them."""
    from nnmargin import plots

    folder = Path(args.plot)
    folder.mkdir(parents=True, exist_ok=True)
    trainset = nnmargin.TrainSet(problem.x_train, problem.y_train)
    curves = {}
    for norm in ("l2", "linf", "l1"):
        lines = {"margin": None, "bisector": None} if args.metric == "l2" else {"margin": None}
        for bound in lines:
            c = nnmargin.certify(problem.x_query, problem.y_query, trainset, metric=args.metric, bound=bound,
                                 norm=norm, num_threads=args.threads)
            lines[bound] = (c.radius, c.correct)
        if norm == cert.norm:
            lines[cert.bound] = (cert.radius, cert.correct)
        curves[norm] = lines
    title = f"{problem.dataset} {_classes_text(problem)}, {len(cert)} {problem.split} queries"
    paths = [folder / "robust_accuracy.png", folder / "radius_histogram.png"]
    plots.plot_robust_accuracy(curves, paths[0], title=title)
    plots.plot_radius_histogram(cert.radius, cert.correct, cert.norm, paths[1], title=f"{cert.bound} radii, {title}")
    if cert.adversarial is not None:
        paths.append(folder / "adversarial_examples.png")
        originals = problem.x_query.reshape(len(cert), -1) / 255.0
        captions = [f"r={r:.3g}" for r in cert.radius]
        plots.plot_adversarial_examples(originals, cert.adversarial, problem.x_query.shape[1:], paths[2],
                                        captions=captions)
    return [str(p) for p in paths]


# --------------------------------------------------------------------------- commands

def run_certify(args, argv) -> int:
    """``nnmargin certify``: load, certify (chunked, with progress), report, write outputs."""
    _check_certify_args(args)
    eps = list(args.eps) if args.eps else list(DEFAULT_EPS[args.norm or args.metric])
    start = time.perf_counter()
    problem = load_problem(args)
    with ProgressBar(len(problem.y_query), label="certify",
                     enabled=False if args.quiet else None) as progress:
        cert, prepare_seconds = certify_problem(problem, args, progress)
    timings = {"load_s": problem.load_seconds, "prepare_s": prepare_seconds, "search_s": cert.seconds,
               "total_s": time.perf_counter() - start}
    written = _write_outputs(problem, cert, eps, timings, args, argv)
    if args.plot is not None:
        written += write_figures(problem, cert, args)
    if not args.quiet:
        print(format_report(problem, cert, eps, timings, args))
        for path in written:
            print(f"  wrote       {path}")
    return 0


def _data_dir_source(data_dir) -> str:
    if data_dir is not None:
        return "--data-dir"
    if os.environ.get(datasets.DATA_ENV_VAR):
        return f"${datasets.DATA_ENV_VAR}"
    return f"default; set ${datasets.DATA_ENV_VAR} or pass --data-dir to change"


def _dataset_folder_status(root: Path, name: str) -> str:
    folder = root / ("cifar-10" if name == "cifar10" else name)
    files = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    if not files:
        return f"{folder}  ({'empty' if folder.is_dir() else 'absent'}: files are downloaded on first use)"
    return f"{folder}  ({len(files)} file(s): {', '.join(files[:4])}{', ...' if len(files) > 4 else ''})"


def run_info(args, argv) -> int:
    """``nnmargin info``: version, kernels, CUDA and where datasets are looked up."""
    from nnmargin import _core

    root = datasets.resolve_data_dir(args.data_dir)
    if nnmargin.cuda_available():
        cuda = f"available ({_core.cuda_device_count()} device(s))"
    else:
        cuda = "not available (" + ("no CUDA device found" if _core.built_with_cuda() else "built without CUDA") + ")"
    lines = [
        f"nnmargin {nnmargin.__version__}  ({Path(nnmargin.__file__).parent})",
        f"  python        {sys.version.split()[0]}, numpy {np.__version__}",
        f"  cpu kernels   {', '.join(nnmargin.cpu_isas())}  (fastest first; {os.cpu_count()} cores)",
        f"  cuda          {cuda}",
        f"  data root     {root}  ({_data_dir_source(args.data_dir)})",
    ]
    lines += [f"    {name:<14}{_dataset_folder_status(root, name)}" for name in datasets.DATASETS]
    lines.append(f"  sample        {datasets.SAMPLE_PATH}  (used by 'nnmargin certify' without --dataset)")
    print("\n".join(lines))
    return 0


def _one_line(exc: BaseException) -> str:
    """An exception's message on a single line."""
    return " ".join(str(exc).split()) or type(exc).__name__


# Sub-commands with their own parsers, imported only when used (they need torch / matplotlib).
DELEGATED = {
    "experiment": ("nnmargin.experiment.command", "experiment_main",
                   "1NN certificates vs adversarially trained networks on class pairs (needs torch)"),
    "report": ("nnmargin.report", "report_main", "tables and figures from experiment folders"),
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``nnmargin`` command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:
        import importlib

        module, function, _ = DELEGATED[argv[0]]
        try:
            entry = getattr(importlib.import_module(module), function)
        except ImportError as exc:
            print(f"{PROG}: error: '{argv[0]}' needs {exc.name or exc} (pip install torch==2.13.0 pyautoattack "
                  f"matplotlib)", file=sys.stderr)
            return 2
        return entry(argv[1:])
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            raise CliError("choose a command: certify, info, experiment or report (see 'nnmargin --help')")
        return args.handler(args, argv)
    except SystemExit as exc:  # --help and --version end the parse
        return exc.code if isinstance(exc.code, int) else 0
    except BrokenPipeError:  # e.g. `nnmargin certify | head`: the reader left, nothing to report
        sys.stdout = open(os.devnull, "w")  # keep the interpreter's final flush from failing again
        return 1
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return 130
    except (CliError, ValueError, RuntimeError, OSError) as exc:  # OSError covers DatasetNotFoundError
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
