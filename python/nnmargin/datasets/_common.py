"""Shared by the dataset loaders: names, the data root, the md5 table, errors and checks."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from .._errors import InputError

DATASETS = ("mnist", "fashion-mnist", "cifar10")
SPLITS = ("train", "test")
CLASS_NAMES: Dict[str, List[str]] = {
    "mnist": [str(digit) for digit in range(10)],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer",
                "dog", "frog", "horse", "ship", "truck"],
}
_ALIASES = {"mnist": "mnist", "fashion-mnist": "fashion-mnist", "fashion_mnist": "fashion-mnist",
            "fmnist": "fashion-mnist", "cifar10": "cifar10", "cifar-10": "cifar10"}

# md5 of each official file, as published (MNIST / Fashion-MNIST values also in
# shared/data/README.md); downloads are kept only if they match.
OFFICIAL_MD5 = {
    "mnist": {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
              "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
              "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
              "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"},
    "fashion-mnist": {"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                      "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
                      "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
                      "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"},
    "cifar10": {"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a",
                "cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530"},
}
DATA_ENV_VAR = "NNMARGIN_DATA"

ImagesLabels = Tuple[np.ndarray, np.ndarray]


class DatasetNotFoundError(InputError, FileNotFoundError):
    """A dataset file is neither on disk nor obtainable (download off, failed or corrupt): a problem
    the user fixes (an :class:`~nnmargin.InputError`), and a ``FileNotFoundError``."""


def resolve_data_dir(data_dir: Optional[os.PathLike] = None) -> Path:
    """Data root: ``data_dir`` if given, else ``$NNMARGIN_DATA``, else ``~/.cache/nnmargin``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    from_env = os.environ.get(DATA_ENV_VAR)
    if from_env:
        return Path(from_env).expanduser()
    return Path.home() / ".cache" / "nnmargin"


def canonical_name(name: str) -> str:
    """Canonical dataset name ("mnist", "fashion-mnist", "cifar10") for a name or alias."""
    try:
        return _ALIASES[name.lower()]
    except (KeyError, AttributeError):
        raise InputError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)} "
                         "(aliases: fashion_mnist, fmnist, cifar-10)") from None


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise InputError(f"split must be one of {SPLITS}, got {split!r}")
