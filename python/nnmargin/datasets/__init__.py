"""Benchmark datasets read from their official distribution files.

MNIST and Fashion-MNIST are read from the idx files (gzip-compressed or not),
CIFAR-10 from the "python" (pickled batches) or "binary" version, either
extracted or straight from the official ``.tar.gz``.  Files are looked up under
a data root, chosen as: the ``data_dir`` argument, else the ``NNMARGIN_DATA``
environment variable, else ``~/.cache/nnmargin``.  Each dataset has its own
sub-folder::

    <root>/mnist/          train-images-idx3-ubyte.gz ... t10k-labels-idx1-ubyte.gz
    <root>/fashion-mnist/  (same four file names)
    <root>/cifar-10/       cifar-10-python.tar.gz or cifar-10-batches-py/,
                           cifar-10-binary.tar.gz or cifar-10-batches-bin/

Missing files are downloaded from the official URLs when ``download=True`` and
accepted only if their md5 matches the published checksum.

Every loader returns ``(images, labels)``: images are raw pixel intensities,
``uint8`` in 0..255 (0 = black), shape ``(N, 28, 28)`` for MNIST-like data and
``(N, 32, 32, 3)`` (height, width, RGB channel) for CIFAR-10; labels are
``int64`` class indices in 0..9 with shape ``(N,)``, in file order.
"""
from __future__ import annotations

from ._common import (CLASS_NAMES, DATA_ENV_VAR, DATASETS, OFFICIAL_MD5, SPLITS, DatasetNotFoundError,
                      ImagesLabels, canonical_name, resolve_data_dir)
from ._download import DOWNLOAD_TIMEOUT_S
from .cifar10 import load_cifar10
from .mnist import load_fashion_mnist, load_mnist, read_idx
from .pairs import BinaryPair, binary_pair, load, pair_from_arrays
from .sample import SAMPLE_PATH, Sample, load_sample

__all__ = ["DATASETS", "SPLITS", "CLASS_NAMES", "OFFICIAL_MD5", "DATA_ENV_VAR", "DOWNLOAD_TIMEOUT_S",
           "ImagesLabels", "DatasetNotFoundError", "resolve_data_dir", "canonical_name", "read_idx",
           "load_mnist", "load_fashion_mnist", "load_cifar10", "load", "BinaryPair",
           "pair_from_arrays", "binary_pair", "Sample", "load_sample", "SAMPLE_PATH"]
