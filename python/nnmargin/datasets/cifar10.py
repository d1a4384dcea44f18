"""CIFAR-10 from the official "python" (pickled) or "binary" batches, extracted or in the .tar.gz."""
from __future__ import annotations

import dataclasses
import io
import pickle
import tarfile
import zlib
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from .._errors import InputError
from ._common import OFFICIAL_MD5, ImagesLabels, _check_split, resolve_data_dir
from ._download import _obtain


@dataclasses.dataclass(frozen=True)
class _CifarFormat:
    batch_dir: str      # directory name inside the tarball / after extraction
    tarball: str
    suffix: str         # batch file name suffix
    parse: Callable[[bytes, str], ImagesLabels]


_CIFAR_URL = ("https://www.cs.toronto.edu/~kriz/",)
_CIFAR_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
_CIFAR_PIXELS = 3 * 32 * 32


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can only rebuild numpy arrays, so a batch file cannot run code."""

    # numpy 1.x pickles name numpy.core, numpy 2.x numpy._core; _codecs.encode is how
    # Python 3 writes bytes in protocol-2 pickles.
    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _hwc(rows: np.ndarray) -> np.ndarray:
    """(N, 3072) rows of 1024 R, 1024 G, 1024 B row-major values -> (N, 32, 32, 3)."""
    return np.ascontiguousarray(rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def _parse_python_batch(blob: bytes, where: str) -> ImagesLabels:
    try:
        # encoding="bytes": the batches are Python 2 pickles whose str keys become bytes.
        batch = _NumpyOnlyUnpickler(io.BytesIO(blob), encoding="bytes").load()
        data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"])
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{where}: not a CIFAR-10 python batch ({exc!r})") from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _CIFAR_PIXELS \
            or labels.shape != (len(data),):
        raise InputError(f"{where}: expected uint8 data (N, 3072) and N labels, "
                         f"got data {data.dtype}{data.shape} and labels {labels.shape}")
    return _hwc(data), labels.astype(np.int64)


def _parse_binary_batch(blob: bytes, where: str) -> ImagesLabels:
    record = 1 + _CIFAR_PIXELS  # 1 label byte, then the pixels
    if len(blob) == 0 or len(blob) % record:
        raise InputError(f"{where}: size {len(blob)} is not a whole number of {record}-byte records")
    records = np.frombuffer(blob, dtype=np.uint8).reshape(-1, record)
    return _hwc(records[:, 1:]), records[:, 0].astype(np.int64)


_CIFAR_FORMATS = {
    "python": _CifarFormat(batch_dir="cifar-10-batches-py", tarball="cifar-10-python.tar.gz",
                           suffix="", parse=_parse_python_batch),
    "binary": _CifarFormat(batch_dir="cifar-10-batches-bin", tarball="cifar-10-binary.tar.gz",
                           suffix=".bin", parse=_parse_binary_batch),
}


def _read_batches(source: Path, fmt: _CifarFormat, names: List[str]) -> Dict[str, Tuple[bytes, str]]:
    """name -> (raw bytes, location for error messages) of each batch, from a dir or tarball."""
    if source.is_dir():
        return {n: ((source / n).read_bytes(), str(source / n)) for n in names}
    wanted = {f"{fmt.batch_dir}/{n}": n for n in names}
    found = {}
    try:
        # One sequential pass: seeking backwards in a .tar.gz means decompressing again.
        with tarfile.open(source, "r:gz") as archive:
            for member in archive:
                if member.name in wanted and member.isfile():
                    found[wanted[member.name]] = (archive.extractfile(member).read(),
                                                  f"{source}:{member.name}")
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise InputError(f"{source}: unreadable tar.gz archive ({exc})") from None
    missing = sorted(set(names) - set(found))
    if missing:
        raise InputError(f"{source}: archive lacks {fmt.batch_dir}/{missing[0]}")
    return {n: found[n] for n in names}  # batch order, not archive order


def _find_cifar_source(folder: Path, fmt: _CifarFormat, names: List[str]) -> Optional[Path]:
    """The extracted batch directory if it holds every batch, else the tarball, else None."""
    batch_dir = folder / fmt.batch_dir
    if all((batch_dir / n).is_file() for n in names):
        return batch_dir
    return folder / fmt.tarball if (folder / fmt.tarball).is_file() else None


def _batch_names(fmt: _CifarFormat, split: str) -> List[str]:
    return [batch + fmt.suffix for batch in _CIFAR_BATCHES[split]]


def load_cifar10(split: str = "train", data_dir=None, download: bool = True,
                 format: str = "auto") -> ImagesLabels:
    """CIFAR-10: images uint8 (N, 32, 32, 3) HWC RGB, labels int64 (N,); N = 50000 / 10000.

    ``format``: "python" (pickled batches), "binary" (label byte + 3072 pixel
    bytes per record) or "auto" (whichever is on disk, python preferred;
    downloads the python version if neither is).  Batches are read from the
    extracted ``cifar-10-batches-*`` directory or directly from the tarball.
    Only load the official files: pickles are restricted to numpy arrays, but
    the format is still Python's pickle.
    """
    _check_split(split)
    if format not in ("auto", "python", "binary"):
        raise InputError(f"format must be 'auto', 'python' or 'binary', got {format!r}")
    folder = resolve_data_dir(data_dir) / "cifar-10"
    formats = [_CIFAR_FORMATS[f] for f in (("python", "binary") if format == "auto" else (format,))]
    on_disk = [(fmt, _find_cifar_source(folder, fmt, _batch_names(fmt, split))) for fmt in formats]
    fmt, source = next(((f, src) for f, src in on_disk if src is not None), (formats[0], None))
    if source is None:  # nothing usable on disk: fetch the preferred format's tarball
        others = ", ".join([f"{f.batch_dir}/" for f in formats] + [f.tarball for f in formats[1:]])
        source = _obtain(folder, fmt.tarball, _CIFAR_URL, OFFICIAL_MD5["cifar10"][fmt.tarball],
                         download, also_accepted=f" (also accepted there: {others})")
    batches = _read_batches(source, fmt, _batch_names(fmt, split))
    parts = [fmt.parse(blob, where) for blob, where in batches.values()]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise InputError(f"{source}: labels outside 0..9")
    return images, labels
