#!/usr/bin/env python3
"""Regenerate python/nnmargin/data/mnist_sample.npz, the MNIST sample shipped with nnmargin.

The sample is the first N_TRAIN images of the official MNIST training split and
the first N_TEST of the official test split, unmodified, read with
nnmargin.datasets from the official idx files after checking their md5 sums.

    python tools/make_sample_dataset.py [--data-dir ../shared/data]

``--data-dir`` is a data root holding ``mnist/`` (default: the ``shared/data``
folder beside the repository checkout).  Nothing is downloaded.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
N_TRAIN, N_TEST = 2000, 500


def _load_datasets_module():
    # Load datasets.py by path: importing the nnmargin package would need the
    # compiled extension, which a fresh checkout does not have.
    path = REPO / "python" / "nnmargin" / "datasets" / "__init__.py"
    spec = importlib.util.spec_from_file_location("nnmargin_datasets", path,
                                                  submodule_search_locations=[str(path.parent)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data",
                        help="data root containing mnist/ with the official .gz files")
    parser.add_argument("--out", type=Path,
                        default=REPO / "python" / "nnmargin" / "data" / "mnist_sample.npz")
    args = parser.parse_args(argv)

    datasets = _load_datasets_module()
    mnist_dir = args.data_dir / "mnist"
    for filename, expected in datasets.OFFICIAL_MD5["mnist"].items():
        actual = datasets._download._md5_of(mnist_dir / filename)
        if actual != expected:
            sys.exit(f"{mnist_dir / filename}: md5 {actual} is not the official {expected}")

    x_train, y_train = datasets.load_mnist("train", data_dir=args.data_dir, download=False)
    x_test, y_test = datasets.load_mnist("test", data_dir=args.data_dir, download=False)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, x_train=x_train[:N_TRAIN], y_train=y_train[:N_TRAIN],
                        x_test=x_test[:N_TEST], y_test=y_test[:N_TEST])
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes): "
          f"train labels per class {np.bincount(y_train[:N_TRAIN], minlength=10).tolist()}, "
          f"test {np.bincount(y_test[:N_TEST], minlength=10).tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
