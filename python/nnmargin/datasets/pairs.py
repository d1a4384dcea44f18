"""Loading a dataset by name, and two-class sub-problems (``BinaryPair``) of it."""
from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

import numpy as np

from .._errors import InputError
from ._common import ImagesLabels, canonical_name
from .cifar10 import load_cifar10
from .mnist import load_fashion_mnist, load_mnist

_LOADERS = {"mnist": load_mnist, "fashion-mnist": load_fashion_mnist, "cifar10": load_cifar10}


def load(name: str, split: str = "train", data_dir=None, download: bool = True) -> ImagesLabels:
    """Load a dataset by name; see the ``nnmargin.datasets`` docstring for shapes and dtypes."""
    return _LOADERS[canonical_name(name)](split, data_dir=data_dir, download=download)


@dataclasses.dataclass(frozen=True, eq=False)
class BinaryPair:
    """Examples of two classes ``a``, ``b`` (images uint8 as loaded, labels int64).

    With ``relabel=True`` labels are 0 for class a and 1 for class b, otherwise
    the original class indices.  Example order is the dataset's file order.
    """
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: Tuple[int, int]
    dataset: str


def _check_classes(a, b) -> Tuple[int, int]:
    for c in (a, b):
        if isinstance(c, (bool, np.bool_)) or not isinstance(c, (int, np.integer)) or not 0 <= c <= 9:
            raise InputError(f"class must be an integer in 0..9, got {c!r}")
    if a == b:
        raise InputError(f"the two classes must differ, got a = b = {a}")
    return int(a), int(b)


def pair_from_arrays(x_train, y_train, x_test, y_test, a: int, b: int, relabel: bool = True,
                     dataset: str = "custom") -> BinaryPair:
    """Keep only classes ``a`` and ``b`` of the given splits (see :class:`BinaryPair`)."""
    a, b = _check_classes(a, b)
    selected = []
    for x, y, split in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        x, y = np.asarray(x), np.asarray(y)
        if y.ndim != 1 or len(x) != len(y):
            raise InputError(f"{split}: labels must have shape ({len(x)},) to match the "
                             f"images, got {y.shape}")
        keep = (y == a) | (y == b)
        labels = (y[keep] == b) if relabel else y[keep]
        selected += [x[keep], labels.astype(np.int64)]
    return BinaryPair(*selected, classes=(a, b), dataset=dataset)


def _check_limit(limit, what: str) -> None:
    if limit is not None and (not isinstance(limit, (int, np.integer)) or limit < 0):
        raise InputError(f"{what} must be None or a non-negative integer, got {limit!r}")


def binary_pair(name: str, a: int, b: int, data_dir=None, download: bool = True,
                relabel: bool = True, limit_train: Optional[int] = None,
                limit_test: Optional[int] = None) -> BinaryPair:
    """The two-class sub-problem ``a`` vs ``b`` of dataset ``name``, train and test splits.

    ``limit_train`` / ``limit_test`` keep the first k examples of the pair (in
    file order, so the result is deterministic).
    """
    name = canonical_name(name)
    _check_classes(a, b)  # before the (slow) loading
    _check_limit(limit_train, "limit_train"), _check_limit(limit_test, "limit_test")
    x_train, y_train = load(name, "train", data_dir, download)
    x_test, y_test = load(name, "test", data_dir, download)
    pair = pair_from_arrays(x_train, y_train, x_test, y_test, a, b, relabel, dataset=name)
    return dataclasses.replace(pair, x_train=pair.x_train[:limit_train],
                               y_train=pair.y_train[:limit_train],
                               x_test=pair.x_test[:limit_test], y_test=pair.y_test[:limit_test])
