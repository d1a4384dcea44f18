"""MNIST and Fashion-MNIST, read from the official idx files (gzip-compressed or not)."""
from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from .._errors import InputError
from ._common import OFFICIAL_MD5, ImagesLabels, _check_split, resolve_data_dir
from ._download import _obtain

# Tried in order.  Plain http is acceptable because every download is md5-checked.
_MNIST_URLS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
_FASHION_URLS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
_IDX_STEMS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_IDX_UBYTE = 0x08  # idx type code for unsigned bytes, the only one these datasets use


def read_idx(path: os.PathLike, expected_ndim: int) -> np.ndarray:
    """Read an idx file of unsigned bytes (gzip-compressed if the name ends in ``.gz``).

    Header (big-endian): two zero bytes, type code 0x08, ndim, then ndim uint32
    sizes; the payload must hold exactly prod(sizes) bytes.  Returns a uint8
    array of that shape.  Raises InputError naming the file if anything is off.
    """
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: corrupt or truncated gzip data ({exc})") from None
    expected_magic = (_IDX_UBYTE << 8) | expected_ndim
    magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if magic != expected_magic:
        found = "too short for a header" if magic is None else f"0x{magic:08x}"
        raise InputError(f"{path}: not an idx file of {expected_ndim}-d unsigned bytes "
                         f"(magic number {found}, expected 0x{expected_magic:08x})")
    header_len = 4 + 4 * expected_ndim
    if len(raw) < header_len:
        raise InputError(f"{path}: truncated idx header")
    shape = struct.unpack(f">{expected_ndim}I", raw[4:header_len])
    if len(raw) - header_len != int(np.prod(shape)):
        raise InputError(f"{path}: header declares shape {shape} ({int(np.prod(shape))} bytes) "
                         f"but the file holds {len(raw) - header_len} data bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(shape).copy()


def _load_idx_dataset(name: str, split: str, data_dir, download: bool, urls) -> ImagesLabels:
    _check_split(split)
    folder = resolve_data_dir(data_dir) / name
    arrays = []
    for stem, ndim in zip(_IDX_STEMS[split], (3, 1)):
        # Prefer the official .gz; accept an already-decompressed copy too.
        path = next((p for p in (folder / f"{stem}.gz", folder / stem) if p.is_file()), None)
        if path is None:
            gz_name = f"{stem}.gz"
            path = _obtain(folder, gz_name, urls, OFFICIAL_MD5[name][gz_name], download,
                           also_accepted=f" (or its decompressed copy {stem})")
        arrays.append(read_idx(path, ndim))
    images, labels = arrays
    if images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise InputError(f"{folder}: {split} images {images.shape} and labels {labels.shape} "
                         "do not form an (N, 28, 28) / (N,) pair")
    if labels.size and labels.max() > 9:
        raise InputError(f"{folder}: {split} labels outside 0..9")
    return images, labels.astype(np.int64)


def load_mnist(split: str = "train", data_dir=None, download: bool = True) -> ImagesLabels:
    """MNIST digits: images uint8 (N, 28, 28), labels int64 (N,); N = 60000 train / 10000 test."""
    return _load_idx_dataset("mnist", split, data_dir, download, _MNIST_URLS)


def load_fashion_mnist(split: str = "train", data_dir=None, download: bool = True) -> ImagesLabels:
    """Fashion-MNIST: images uint8 (N, 28, 28), labels int64 (N,); N = 60000 train / 10000 test."""
    return _load_idx_dataset("fashion-mnist", split, data_dir, download, _FASHION_URLS)
