"""``nnmargin certify``: the training set and the queries that --dataset, --classes, --split and --limit select."""
from __future__ import annotations

import argparse
import dataclasses
import time
from typing import Optional, Tuple

import numpy as np

from .. import datasets
from .._errors import InputError

SAMPLE = "sample"


@dataclasses.dataclass
class CertifyData:
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


def dataset_arg(text: str) -> str:
    """argparse type for --dataset: "sample" or a dataset name / alias known to nnmargin.datasets."""
    if text.lower() == SAMPLE:
        return SAMPLE
    try:
        return datasets.canonical_name(text)
    except InputError:
        raise argparse.ArgumentTypeError(
            f"unknown dataset {text!r}; choose from {', '.join((SAMPLE,) + tuple(datasets.DATASETS))}"
        ) from None


def add_dataset_arguments(group, sample_text: str) -> None:
    """--dataset, --data-dir and --no-download, shared by the commands that read a benchmark."""
    group.add_argument("--dataset", type=dataset_arg, default=SAMPLE,
                       metavar="{" + ",".join((SAMPLE,) + tuple(datasets.DATASETS)) + "}",
                       help=f"'sample' (default): {sample_text}; otherwise a benchmark read from its official "
                            f"files under --data-dir (downloaded if missing)")
    group.add_argument("--data-dir", metavar="DIR",
                       help=f"data root holding <DIR>/mnist/, <DIR>/fashion-mnist/, <DIR>/cifar-10/ "
                            f"(default: ${datasets.DATA_ENV_VAR}, else ~/.cache/nnmargin)")
    group.add_argument("--no-download", action="store_true",
                       help="fail instead of downloading missing dataset files")


def check_dataset_arguments(args) -> None:
    """The rule between the dataset options: the embedded sample needs no data folder."""
    if args.dataset == SAMPLE and (args.data_dir is not None or args.no_download):
        raise InputError("--data-dir and --no-download apply to --dataset mnist, fashion-mnist or cifar10, "
                         "not to the embedded sample")


def load_data(args) -> CertifyData:
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
        raise InputError(f"no queries: the {args.split} split of {description} is empty")
    classes = tuple(args.classes) if args.classes is not None else None
    return CertifyData(args.dataset, description, classes, args.split, x_train, y_train, x_query, y_query,
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


def classes_text(data: CertifyData) -> str:
    """"all 10 (0-9)", "3 vs 5" or "3 (cat) vs 5 (dog)"."""
    names = datasets.CLASS_NAMES["mnist" if data.dataset == SAMPLE else data.dataset]
    if data.classes is None:
        return "all 10 (0-9)"
    a, b = data.classes
    if names[a] == str(a):  # digits need no name
        return f"{a} vs {b}"
    return f"{a} ({names[a]}) vs {b} ({names[b]})"
