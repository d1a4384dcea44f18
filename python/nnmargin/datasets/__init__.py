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

import dataclasses
import gzip
import hashlib
import http.client
import io
import os
import pickle
import struct
import sys
import tarfile
import tempfile
import urllib.request
import zlib
from pathlib import Path
from typing import BinaryIO, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

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
DOWNLOAD_TIMEOUT_S = 60.0

ImagesLabels = Tuple[np.ndarray, np.ndarray]


class DatasetNotFoundError(FileNotFoundError):
    """A dataset file is neither on disk nor obtainable (download off, failed or corrupt)."""


def resolve_data_dir(data_dir: Optional[os.PathLike] = None) -> Path:
    """Data root: ``data_dir`` if given, else ``$NNMARGIN_DATA``, else ``~/.cache/nnmargin``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    from_env = os.environ.get(DATA_ENV_VAR)
    if from_env:
        return Path(from_env).expanduser()
    return Path.home() / ".cache" / "nnmargin"


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


# --------------------------------------------------------------------------- download

def _fetch_url(url: str, out: BinaryIO, timeout: float) -> None:
    """Stream ``url`` into ``out``.  The only network access; tests replace it."""
    request = urllib.request.Request(url, headers={"User-Agent": "nnmargin"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        while True:
            chunk = response.read(1 << 20)
            if not chunk:
                return
            out.write(chunk)


def _md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _obtain(folder: Path, filename: str, base_urls: Sequence[str], md5: str,
            download: bool, also_accepted: str = "") -> Path:
    """Download ``filename`` into ``folder`` (md5-checked, atomic) or explain why not."""
    urls = [base + filename for base in base_urls]
    how_to_fix = (f"To fix: download {filename} (md5 {md5}) from {' or '.join(urls)} and place "
                  f"it in {folder}{also_accepted}, or set {DATA_ENV_VAR} (or pass data_dir=) to "
                  f"a directory whose '{folder.name}/' sub-folder holds the files.")
    if not download:
        raise DatasetNotFoundError(
            f"{filename} not found in {folder} and download=False.\n{how_to_fix}")
    failures = []
    for url in urls:
        temp_path = None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            # A temp file in the same folder, renamed only once verified, so an
            # interrupted or corrupt download never looks like a valid file.
            fd, temp_name = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part", dir=folder)
            temp_path = Path(temp_name)
            print(f"nnmargin: downloading {url} -> {folder}", file=sys.stderr)
            with os.fdopen(fd, "wb") as out:
                _fetch_url(url, out, DOWNLOAD_TIMEOUT_S)
            actual_md5 = _md5_of(temp_path)
            if actual_md5 != md5:
                failures.append(f"{url}: md5 mismatch (got {actual_md5}, expected {md5})")
                continue
            os.replace(temp_path, folder / filename)
            return folder / filename
        except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, disk errors
            failures.append(f"{url}: {exc}")
        finally:
            if temp_path is not None and temp_path.exists():
                temp_path.unlink()
    raise DatasetNotFoundError(
        f"{filename} not found in {folder} and could not be downloaded:\n  "
        + "\n  ".join(failures) + "\n" + how_to_fix)


# --------------------------------------------------------------------------- MNIST-like (idx)

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
    array of that shape.  Raises ValueError naming the file if anything is off.
    """
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: corrupt or truncated gzip data ({exc})") from None
    expected_magic = (_IDX_UBYTE << 8) | expected_ndim
    magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if magic != expected_magic:
        found = "too short for a header" if magic is None else f"0x{magic:08x}"
        raise ValueError(f"{path}: not an idx file of {expected_ndim}-d unsigned bytes "
                         f"(magic number {found}, expected 0x{expected_magic:08x})")
    header_len = 4 + 4 * expected_ndim
    if len(raw) < header_len:
        raise ValueError(f"{path}: truncated idx header")
    shape = struct.unpack(f">{expected_ndim}I", raw[4:header_len])
    if len(raw) - header_len != int(np.prod(shape)):
        raise ValueError(f"{path}: header declares shape {shape} ({int(np.prod(shape))} bytes) "
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
        raise ValueError(f"{folder}: {split} images {images.shape} and labels {labels.shape} "
                         "do not form an (N, 28, 28) / (N,) pair")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{folder}: {split} labels outside 0..9")
    return images, labels.astype(np.int64)


def load_mnist(split: str = "train", data_dir=None, download: bool = True) -> ImagesLabels:
    """MNIST digits: images uint8 (N, 28, 28), labels int64 (N,); N = 60000 train / 10000 test."""
    return _load_idx_dataset("mnist", split, data_dir, download, _MNIST_URLS)


def load_fashion_mnist(split: str = "train", data_dir=None, download: bool = True) -> ImagesLabels:
    """Fashion-MNIST: images uint8 (N, 28, 28), labels int64 (N,); N = 60000 train / 10000 test."""
    return _load_idx_dataset("fashion-mnist", split, data_dir, download, _FASHION_URLS)


# --------------------------------------------------------------------------- CIFAR-10

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
        raise ValueError(f"{where}: not a CIFAR-10 python batch ({exc!r})") from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _CIFAR_PIXELS \
            or labels.shape != (len(data),):
        raise ValueError(f"{where}: expected uint8 data (N, 3072) and N labels, "
                         f"got data {data.dtype}{data.shape} and labels {labels.shape}")
    return _hwc(data), labels.astype(np.int64)


def _parse_binary_batch(blob: bytes, where: str) -> ImagesLabels:
    record = 1 + _CIFAR_PIXELS  # 1 label byte, then the pixels
    if len(blob) == 0 or len(blob) % record:
        raise ValueError(f"{where}: size {len(blob)} is not a whole number of {record}-byte records")
    records = np.frombuffer(blob, dtype=np.uint8).reshape(-1, record)
    return _hwc(records[:, 1:]), records[:, 0].astype(np.int64)


_CIFAR_FORMATS = {
    "python": _CifarFormat("cifar-10-batches-py", "cifar-10-python.tar.gz", "", _parse_python_batch),
    "binary": _CifarFormat("cifar-10-batches-bin", "cifar-10-binary.tar.gz", ".bin", _parse_binary_batch),
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
        raise ValueError(f"{source}: unreadable tar.gz archive ({exc})") from None
    missing = sorted(set(names) - set(found))
    if missing:
        raise ValueError(f"{source}: archive lacks {fmt.batch_dir}/{missing[0]}")
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
        raise ValueError(f"format must be 'auto', 'python' or 'binary', got {format!r}")
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
        raise ValueError(f"{source}: labels outside 0..9")
    return images, labels


# --------------------------------------------------------------------------- by name, pairs

_LOADERS = {"mnist": load_mnist, "fashion-mnist": load_fashion_mnist, "cifar10": load_cifar10}


def canonical_name(name: str) -> str:
    """Canonical dataset name ("mnist", "fashion-mnist", "cifar10") for a name or alias."""
    try:
        return _ALIASES[name.lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)} "
                         "(aliases: fashion_mnist, fmnist, cifar-10)") from None


def load(name: str, split: str = "train", data_dir=None, download: bool = True) -> ImagesLabels:
    """Load a dataset by name; see the module docstring for shapes and dtypes."""
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


def _check_class(c) -> int:
    if isinstance(c, (bool, np.bool_)) or not isinstance(c, (int, np.integer)) or not 0 <= c <= 9:
        raise ValueError(f"class must be an integer in 0..9, got {c!r}")
    return int(c)


def pair_from_arrays(x_train, y_train, x_test, y_test, a: int, b: int, relabel: bool = True,
                     dataset: str = "custom") -> BinaryPair:
    """Keep only classes ``a`` and ``b`` of the given splits (see :class:`BinaryPair`)."""
    a, b = _check_class(a), _check_class(b)
    if a == b:
        raise ValueError(f"the two classes must differ, got a = b = {a}")
    selected = []
    for x, y, split in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        x, y = np.asarray(x), np.asarray(y)
        if y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{split}: labels must have shape ({len(x)},) to match the "
                             f"images, got {y.shape}")
        keep = (y == a) | (y == b)
        labels = (y[keep] == b) if relabel else y[keep]
        selected += [x[keep], labels.astype(np.int64)]
    return BinaryPair(*selected, classes=(a, b), dataset=dataset)


def _check_limit(limit, what: str) -> None:
    if limit is not None and (not isinstance(limit, (int, np.integer)) or limit < 0):
        raise ValueError(f"{what} must be None or a non-negative integer, got {limit!r}")


def binary_pair(name: str, a: int, b: int, data_dir=None, download: bool = True,
                relabel: bool = True, limit_train: Optional[int] = None,
                limit_test: Optional[int] = None) -> BinaryPair:
    """The two-class sub-problem ``a`` vs ``b`` of dataset ``name``, train and test splits.

    ``limit_train`` / ``limit_test`` keep the first k examples of the pair (in
    file order, so the result is deterministic).
    """
    name = canonical_name(name)
    _check_class(a), _check_class(b)
    _check_limit(limit_train, "limit_train"), _check_limit(limit_test, "limit_test")
    x_train, y_train = load(name, "train", data_dir, download)
    x_test, y_test = load(name, "test", data_dir, download)
    pair = pair_from_arrays(x_train, y_train, x_test, y_test, a, b, relabel, dataset=name)
    return dataclasses.replace(pair, x_train=pair.x_train[:limit_train],
                               y_train=pair.y_train[:limit_train],
                               x_test=pair.x_test[:limit_test], y_test=pair.y_test[:limit_test])


# --------------------------------------------------------------------------- embedded sample

SAMPLE_PATH = Path(__file__).resolve().parent / "data" / "mnist_sample.npz"


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
