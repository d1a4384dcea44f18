"""The small MNIST sample shipped in ``nnmargin/data/`` (no files or network needed)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

# nnmargin/data/, beside this subpackage (see data/README.md and tools/make_sample_dataset.py).
SAMPLE_PATH = Path(__file__).resolve().parent.parent / "data" / "mnist_sample.npz"


@dataclasses.dataclass(frozen=True, eq=False)
class Sample:
    """A small real dataset: images uint8 (N, 28, 28), labels int64 (N,), classes 0..9."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str = "mnist-sample"
    description: str = ("MNIST (LeCun, Cortes & Burges): the first 2000 images of the official "
                        "training split and the first 500 of the official test split, unmodified.")


def load_sample() -> Sample:
    """The MNIST sample shipped with the package (no files or network needed)."""
    with np.load(SAMPLE_PATH, allow_pickle=False) as npz:
        return Sample(npz["x_train"], npz["y_train"].astype(np.int64),
                      npz["x_test"], npz["y_test"].astype(np.int64))
