"""Tests for nnmargin.datasets.  No network: downloads go through a patched fetch.

Real MNIST / Fashion-MNIST come from the read-only ``shared/data`` folder beside
the checkout (or ``$NNMARGIN_TEST_DATA``); those tests skip when it is absent.
CIFAR-10 is tested on small files written here in the official formats.
"""
import gzip
import hashlib
import os
import pickle
import struct
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from nnmargin import InputError, datasets
from nnmargin.datasets import DatasetNotFoundError, _download

REAL_DATA = Path(os.environ.get("NNMARGIN_TEST_DATA")
                 or Path(__file__).resolve().parents[1].parent / "shared" / "data")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Fail any test that reaches the network, and ignore the caller's NNMARGIN_DATA."""
    def no_network(url, out, timeout):
        raise AssertionError(f"test tried to download {url}")
    monkeypatch.setattr(_download, "_fetch_url", no_network)
    monkeypatch.delenv("NNMARGIN_DATA", raising=False)


# --------------------------------------------------------------------------- file writers

def idx_bytes(array: np.ndarray) -> bytes:
    """An idx file of unsigned bytes, written from the format description."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx_split(folder: Path, split: str, images, labels, compress=True):
    prefix = "train" if split == "train" else "t10k"
    folder.mkdir(parents=True, exist_ok=True)
    for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
        data = idx_bytes(array)
        name = f"{prefix}-{kind}-ubyte"
        if compress:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)


def small_mnist(n, seed):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, n).astype(np.uint8))


def cifar_rows(images_hwc: np.ndarray) -> np.ndarray:
    """(N, 32, 32, 3) -> (N, 3072) rows as the CIFAR spec lays them out: the 1024
    red values first, then green, then blue, each 32x32 plane row by row."""
    rows = np.empty((len(images_hwc), 3072), dtype=np.uint8)
    for channel in range(3):
        for row in range(32):
            start = channel * 1024 + row * 32
            rows[:, start:start + 32] = images_hwc[:, row, :, channel]
    return rows


BATCH_SIZES = {"data_batch_1": 3, "data_batch_2": 2, "data_batch_3": 4, "data_batch_4": 1,
               "data_batch_5": 2, "test_batch": 5}


def make_cifar_batches(seed=0):
    rng = np.random.default_rng(seed)
    return {name: (rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n))
            for name, n in BATCH_SIZES.items()}


def write_cifar(root: Path, batches, fmt: str, as_tarball: bool) -> Path:
    """Write ``batches`` under root/cifar-10 in the official python or binary format."""
    folder = root / "cifar-10"
    batch_dir_name = "cifar-10-batches-py" if fmt == "python" else "cifar-10-batches-bin"
    batch_dir = folder / batch_dir_name
    batch_dir.mkdir(parents=True)
    for name, (images, labels) in batches.items():
        rows = cifar_rows(images)
        if fmt == "python":
            # Like the official files: a dict with bytes keys, protocol 2, labels a list.
            batch = {b"batch_label": name.encode(), b"labels": [int(v) for v in labels],
                     b"data": rows, b"filenames": [b"img%d.png" % i for i in range(len(rows))]}
            (batch_dir / name).write_bytes(pickle.dumps(batch, protocol=2))
        else:
            records = np.concatenate([labels.astype(np.uint8)[:, None], rows], axis=1)
            (batch_dir / f"{name}.bin").write_bytes(records.tobytes())
    if not as_tarball:
        return batch_dir
    tarball = folder / ("cifar-10-python.tar.gz" if fmt == "python" else "cifar-10-binary.tar.gz")
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(batch_dir, arcname=batch_dir_name, recursive=False)
        # Members in reverse order: the loader must not rely on the archive's order.
        for path in sorted(batch_dir.iterdir(), reverse=True):
            archive.add(path, arcname=f"{batch_dir_name}/{path.name}")
    for path in batch_dir.iterdir():
        path.unlink()
    batch_dir.rmdir()
    return tarball


def expected_cifar(batches, split):
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    return (np.concatenate([batches[n][0] for n in names]),
            np.concatenate([batches[n][1] for n in names]))


# --------------------------------------------------------------------------- real data

REAL_CASES = [  # name, first train label, mean pixel / 255 (published), pair (3, 5) sizes
    ("mnist", 5, 0.1307, (6131 + 5421, 1010 + 892)),
    ("fashion-mnist", 9, 0.2860, (12000, 2000)),
]


def require_real(name):
    if not (REAL_DATA / name / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"official {name} files not found under {REAL_DATA}")


@pytest.mark.parametrize("name, first_label, mean_pixel, pair_sizes", REAL_CASES)
def test_real_idx_datasets(name, first_label, mean_pixel, pair_sizes):
    require_real(name)
    x_train, y_train = datasets.load(name, "train", data_dir=REAL_DATA, download=False)
    x_test, y_test = datasets.load(name, "test", data_dir=REAL_DATA, download=False)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64 and y_test.shape == (10000,)
    assert y_train.min() == 0 and y_train.max() == 9 and set(np.unique(y_test)) == set(range(10))
    assert y_train[0] == first_label
    assert abs(x_train.mean() / 255 - mean_pixel) < 5e-4

    pair = datasets.binary_pair(name, 3, 5, data_dir=REAL_DATA, download=False)
    assert (len(pair.y_train), len(pair.y_test)) == pair_sizes
    assert pair.x_train.shape == (pair_sizes[0], 28, 28) and pair.dataset == name
    np.testing.assert_array_equal(pair.y_train, (y_train[np.isin(y_train, [3, 5])] == 5))


def test_real_mnist_label_counts_and_uncompressed_copy(tmp_path):
    require_real("mnist")
    _, y_test = datasets.load_mnist("test", data_dir=REAL_DATA, download=False)
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    # A decompressed copy of the official files must load identically.
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / "mnist").mkdir(exist_ok=True)
        with gzip.open(REAL_DATA / "mnist" / f"{stem}.gz") as f:
            (tmp_path / "mnist" / stem).write_bytes(f.read())
    x_plain, y_plain = datasets.load_mnist("test", data_dir=tmp_path, download=False)
    x_gz, _ = datasets.load_mnist("test", data_dir=REAL_DATA, download=False)
    np.testing.assert_array_equal(x_plain, x_gz)
    np.testing.assert_array_equal(y_plain, y_test)


# --------------------------------------------------------------------------- idx format

@pytest.mark.parametrize("compress", [True, False])
def test_idx_roundtrip_on_written_files(tmp_path, compress):
    images, labels = small_mnist(7, seed=1)
    write_idx_split(tmp_path / "fashion-mnist", "test", images, labels, compress)
    x, y = datasets.load_fashion_mnist("test", data_dir=tmp_path, download=False)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)
    assert x.dtype == np.uint8 and y.dtype == np.int64 and x.flags.writeable


def test_idx_wrong_magic(tmp_path):
    images, labels = small_mnist(4, seed=2)
    write_idx_split(tmp_path / "mnist", "train", images, labels)
    # Put a labels file (magic 0x00000801) where the images file (0x00000803) belongs.
    folder = tmp_path / "mnist"
    os.replace(folder / "train-labels-idx1-ubyte.gz", folder / "train-images-idx3-ubyte.gz")
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    with pytest.raises(InputError, match=r"train-images-idx3-ubyte\.gz.*magic number 0x00000801"):
        datasets.load_mnist("train", data_dir=tmp_path, download=False)


def test_idx_truncated_payload_and_gzip(tmp_path):
    path = tmp_path / "images-idx3-ubyte"
    path.write_bytes(idx_bytes(np.zeros((5, 28, 28), np.uint8))[:-10])
    with pytest.raises(InputError, match=r"images-idx3-ubyte: header declares shape \(5, 28, 28\)"):
        datasets.read_idx(path, 3)
    path.write_bytes(b"\x00\x00")
    with pytest.raises(InputError, match="too short"):
        datasets.read_idx(path, 3)
    gz_path = tmp_path / "labels-idx1-ubyte.gz"
    gz_path.write_bytes(gzip.compress(idx_bytes(np.arange(1000, dtype=np.uint8)))[:-20])
    with pytest.raises(InputError, match=r"labels-idx1-ubyte\.gz: corrupt or truncated gzip"):
        datasets.read_idx(gz_path, 1)


def test_idx_images_labels_mismatch(tmp_path):
    images, labels = small_mnist(6, seed=3)
    write_idx_split(tmp_path / "mnist", "test", images, labels[:5])
    with pytest.raises(InputError, match="do not form"):
        datasets.load_mnist("test", data_dir=tmp_path, download=False)


# --------------------------------------------------------------------------- CIFAR-10

@pytest.mark.parametrize("fmt", ["python", "binary"])
@pytest.mark.parametrize("as_tarball", [False, True])
@pytest.mark.parametrize("split", ["train", "test"])
def test_cifar10_formats_give_exact_pixels(tmp_path, fmt, as_tarball, split):
    batches = make_cifar_batches(seed=4)
    write_cifar(tmp_path, batches, fmt, as_tarball)
    images, labels = datasets.load_cifar10(split, data_dir=tmp_path, download=False, format=fmt)
    want_images, want_labels = expected_cifar(batches, split)
    assert images.shape == (len(want_labels), 32, 32, 3) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and images.flags.c_contiguous
    np.testing.assert_array_equal(images, want_images)
    np.testing.assert_array_equal(labels, want_labels)
    # and via the by-name entry point (format="auto")
    np.testing.assert_array_equal(datasets.load("cifar-10", split, tmp_path, False)[0], want_images)


def test_cifar10_channel_order(tmp_path):
    batches = {name: (np.zeros((n, 32, 32, 3), np.uint8), np.zeros(n, int))
               for name, n in BATCH_SIZES.items()}
    batches["test_batch"][0][0, 1, 2] = (10, 20, 30)  # pixel at row 1, column 2: R, G, B
    write_cifar(tmp_path, batches, "binary", as_tarball=False)
    raw = (tmp_path / "cifar-10" / "cifar-10-batches-bin" / "test_batch.bin").read_bytes()
    # record 0: label byte, then R plane, G plane, B plane; offset of (1, 2) is 1 * 32 + 2
    assert [raw[1 + plane * 1024 + 34] for plane in range(3)] == [10, 20, 30]
    images, _ = datasets.load_cifar10("test", data_dir=tmp_path, download=False)
    assert images[0, 1, 2].tolist() == [10, 20, 30]


def test_cifar10_auto_prefers_python_then_falls_back_to_binary(tmp_path):
    python_batches, binary_batches = make_cifar_batches(seed=5), make_cifar_batches(seed=6)
    write_cifar(tmp_path, binary_batches, "binary", as_tarball=True)
    images, _ = datasets.load_cifar10("test", data_dir=tmp_path, download=False)
    np.testing.assert_array_equal(images, expected_cifar(binary_batches, "test")[0])
    write_cifar(tmp_path, python_batches, "python", as_tarball=False)
    images, _ = datasets.load_cifar10("test", data_dir=tmp_path, download=False)
    np.testing.assert_array_equal(images, expected_cifar(python_batches, "test")[0])


def test_cifar10_corrupt_files(tmp_path):
    batch_dir = write_cifar(tmp_path, make_cifar_batches(), "binary", as_tarball=False)
    with open(batch_dir / "test_batch.bin", "ab") as f:
        f.write(b"\x01\x02")
    with pytest.raises(InputError, match=r"test_batch\.bin: size .* whole number of 3073-byte"):
        datasets.load_cifar10("test", data_dir=tmp_path, download=False, format="binary")

    batch_dir = write_cifar(tmp_path / "p", make_cifar_batches(), "python", as_tarball=False)
    (batch_dir / "test_batch").write_bytes(pickle.dumps({b"labels": [1]}, protocol=2))
    with pytest.raises(InputError, match="test_batch: not a CIFAR-10 python batch"):
        datasets.load_cifar10("test", data_dir=tmp_path / "p", download=False)

    tarball = write_cifar(tmp_path / "t", make_cifar_batches(), "python", as_tarball=True)
    tarball.write_bytes(tarball.read_bytes()[: tarball.stat().st_size // 2])
    with pytest.raises(InputError, match=r"cifar-10-python\.tar\.gz: unreadable"):
        datasets.load_cifar10("train", data_dir=tmp_path / "t", download=False)


def test_cifar10_tarball_missing_batch(tmp_path):
    batches = make_cifar_batches()
    del batches["data_batch_3"]
    write_cifar(tmp_path, batches, "binary", as_tarball=True)
    assert datasets.load_cifar10("test", data_dir=tmp_path, download=False)[1].shape == (5,)
    with pytest.raises(InputError, match=r"lacks cifar-10-batches-bin/data_batch_3\.bin"):
        datasets.load_cifar10("train", data_dir=tmp_path, download=False)


def python2_pickle_batch(rows: np.ndarray, labels) -> bytes:
    """A batch pickled the way the official files were (Python 2, protocol 2, numpy 1.x).

    Written opcode by opcode because Python 3 cannot emit Python 2 ``str``
    (SHORT_BINSTRING / BINSTRING), which ``encoding="bytes"`` turns into bytes.
    """
    def short_str(s):
        return b"U" + bytes([len(s)]) + s
    return b"".join([
        b"\x80\x02}(", short_str(b"batch_label"), short_str(b"testing batch 1 of 1"),
        short_str(b"data"),  # numpy.core.multiarray._reconstruct(ndarray, (0,), "b") ...
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85", short_str(b"b"), b"\x87R",
        b"(K\x01J" + struct.pack("<i", len(rows)) + b"M" + struct.pack("<H", 3072) + b"\x86",
        b"cnumpy\ndtype\n", short_str(b"u1"), b"K\x00K\x01\x87R",  # ... dtype("u1") ...
        b"(K\x03", short_str(b"|"), b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb",
        b"\x89T" + struct.pack("<I", rows.size) + rows.tobytes() + b"tb",  # ... then its bytes
        short_str(b"labels"), b"](" + b"".join(b"K" + bytes([int(v)]) for v in labels) + b"e",
        b"u.",
    ])


def test_cifar10_python2_pickle_as_in_official_files(tmp_path):
    batches = make_cifar_batches(seed=13)
    batch_dir = write_cifar(tmp_path, batches, "python", as_tarball=False)
    images, labels = batches["test_batch"]
    (batch_dir / "test_batch").write_bytes(python2_pickle_batch(cifar_rows(images), labels))
    x, y = datasets.load_cifar10("test", data_dir=tmp_path, download=False)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)


class _RunsCode:
    def __reduce__(self):
        return (os.getcwd, ())


def test_cifar10_pickle_cannot_run_code(tmp_path):
    batch_dir = write_cifar(tmp_path, make_cifar_batches(), "python", as_tarball=False)
    (batch_dir / "test_batch").write_bytes(pickle.dumps({b"data": _RunsCode()}, protocol=2))
    with pytest.raises(InputError, match="refusing to load"):
        datasets.load_cifar10("test", data_dir=tmp_path, download=False)


# --------------------------------------------------------------------------- missing files, download

def test_missing_files_without_download(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        datasets.load_mnist("test", data_dir=tmp_path, download=False)
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, InputError)
    for expected in ("t10k-images-idx3-ubyte.gz", str(tmp_path / "mnist"), "download=False",
                     "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz",
                     "NNMARGIN_DATA"):
        assert expected in message
    # CIFAR-10: the message names the preferred tarball and the other accepted layouts.
    with pytest.raises(DatasetNotFoundError, match=r"(?s)python\.tar\.gz.*cifar-10-batches-bin"):
        datasets.load_cifar10("train", data_dir=tmp_path, download=False)


class FakeServer:
    """Stands in for datasets._download._fetch_url: serves bytes by URL, records requests."""

    def __init__(self, files, failing=()):
        self.files, self.failing, self.requested = files, set(failing), []

    def __call__(self, url, out, timeout):
        self.requested.append(url)
        assert timeout > 0
        if url in self.failing or url not in self.files:
            raise urllib.error.URLError("simulated network failure")
        out.write(self.files[url])


def _serve_mnist_test_split(monkeypatch, base, images, labels, corrupt=False):
    files = {}
    for stem, array in (("t10k-images-idx3-ubyte", images), ("t10k-labels-idx1-ubyte", labels)):
        data = gzip.compress(idx_bytes(array))
        md5 = hashlib.md5(data).hexdigest()
        monkeypatch.setitem(datasets.OFFICIAL_MD5["mnist"], f"{stem}.gz", md5)
        files[f"{base}{stem}.gz"] = data + (b"tampered" if corrupt else b"")
    return files


def test_download_verifies_md5_and_falls_back_to_mirror(tmp_path, monkeypatch):
    images, labels = small_mnist(5, seed=7)
    mirror = "http://yann.lecun.com/exdb/mnist/"
    server = FakeServer(_serve_mnist_test_split(monkeypatch, mirror, images, labels))
    monkeypatch.setattr(_download, "_fetch_url", server)
    x, y = datasets.load_mnist("test", data_dir=tmp_path)
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)
    first = "https://ossci-datasets.s3.amazonaws.com/mnist/"
    assert server.requested[:2] == [first + "t10k-images-idx3-ubyte.gz",
                                    mirror + "t10k-images-idx3-ubyte.gz"]
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == [
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]  # no temp files left
    server.requested.clear()
    datasets.load_mnist("test", data_dir=tmp_path)  # now on disk: no second download
    assert server.requested == []


def test_download_md5_mismatch_is_rejected(tmp_path, monkeypatch):
    images, labels = small_mnist(5, seed=8)
    mirror = "https://ossci-datasets.s3.amazonaws.com/mnist/"
    server = FakeServer(_serve_mnist_test_split(monkeypatch, mirror, images, labels, corrupt=True))
    monkeypatch.setattr(_download, "_fetch_url", server)
    with pytest.raises(DatasetNotFoundError) as info:
        datasets.load_mnist("test", data_dir=tmp_path)
    message = str(info.value)
    assert "md5 mismatch" in message and mirror + "t10k-images-idx3-ubyte.gz" in message
    assert "simulated network failure" in message  # the second mirror failed too
    assert list((tmp_path / "mnist").iterdir()) == []  # nothing half-written is kept


def test_download_cifar10_tarball(tmp_path, monkeypatch):
    batches = make_cifar_batches(seed=9)
    tarball = write_cifar(tmp_path / "source", batches, "python", as_tarball=True)
    data = tarball.read_bytes()
    monkeypatch.setitem(datasets.OFFICIAL_MD5["cifar10"], "cifar-10-python.tar.gz",
                        hashlib.md5(data).hexdigest())
    url = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    monkeypatch.setattr(_download, "_fetch_url", FakeServer({url: data}))
    images, labels = datasets.load_cifar10("test", data_dir=tmp_path / "root")
    np.testing.assert_array_equal(images, expected_cifar(batches, "test")[0])
    assert (tmp_path / "root" / "cifar-10" / "cifar-10-python.tar.gz").read_bytes() == data


# --------------------------------------------------------------------------- data directory

def test_data_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert datasets.resolve_data_dir() == tmp_path / "home" / ".cache" / "nnmargin"
    images, labels = small_mnist(3, seed=10)
    write_idx_split(tmp_path / "env" / "mnist", "test", images, labels)
    monkeypatch.setenv("NNMARGIN_DATA", str(tmp_path / "env"))
    assert datasets.resolve_data_dir() == tmp_path / "env"
    np.testing.assert_array_equal(datasets.load_mnist("test", download=False)[0], images)
    assert datasets.resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"  # argument wins
    with pytest.raises(DatasetNotFoundError, match=str(tmp_path / "arg" / "mnist")):
        datasets.load_mnist("test", data_dir=str(tmp_path / "arg"), download=False)


# --------------------------------------------------------------------------- sample

def test_load_sample():
    sample = datasets.load_sample()
    assert sample.x_train.shape == (2000, 28, 28) and sample.x_test.shape == (500, 28, 28)
    assert sample.x_train.dtype == np.uint8 and sample.y_train.dtype == np.int64
    assert sample.y_test.dtype == np.int64 and sample.y_test.shape == (500,)
    assert set(np.unique(sample.y_train)) == set(range(10)) == set(np.unique(sample.y_test))
    assert sample.y_train[0] == 5 and sample.name == "mnist-sample"
    assert "MNIST" in sample.description and "2000" in sample.description
    if (REAL_DATA / "mnist" / "t10k-images-idx3-ubyte.gz").is_file():
        x_test, y_test = datasets.load_mnist("test", data_dir=REAL_DATA, download=False)
        np.testing.assert_array_equal(sample.x_test, x_test[:500])
        np.testing.assert_array_equal(sample.y_test, y_test[:500])


# --------------------------------------------------------------------------- names, splits, pairs

def test_names_and_class_names():
    assert datasets.DATASETS == ("mnist", "fashion-mnist", "cifar10")
    assert set(datasets.CLASS_NAMES) == set(datasets.DATASETS)
    assert all(len(names) == 10 for names in datasets.CLASS_NAMES.values())
    assert datasets.CLASS_NAMES["cifar10"][3] == "cat"
    for alias, name in [("fashion_mnist", "fashion-mnist"), ("FMNIST", "fashion-mnist"),
                        ("cifar-10", "cifar10"), ("mnist", "mnist")]:
        assert datasets.canonical_name(alias) == name


def test_validation_errors(tmp_path):
    with pytest.raises(InputError, match="unknown dataset 'svhn'.*mnist, fashion-mnist, cifar10"):
        datasets.load("svhn")
    for loader in (datasets.load_mnist, datasets.load_fashion_mnist, datasets.load_cifar10):
        with pytest.raises(InputError, match="split must be one of"):
            loader("validation", data_dir=tmp_path, download=False)
    with pytest.raises(InputError, match="format must be"):
        datasets.load_cifar10("train", data_dir=tmp_path, format="matlab")
    with pytest.raises(InputError, match="must differ"):
        datasets.binary_pair("mnist", 3, 3, data_dir=tmp_path, download=False)
    for a, b in [(3, 10), (-1, 2), (1.0, 2), (True, 2)]:
        with pytest.raises(InputError, match="integer in 0..9"):
            datasets.binary_pair("mnist", a, b, data_dir=tmp_path, download=False)
    with pytest.raises(InputError, match="limit_train"):
        datasets.binary_pair("mnist", 1, 2, data_dir=tmp_path, download=False, limit_train=-1)


def test_pair_from_arrays():
    x = np.arange(8)[:, None, None] * np.ones((1, 2, 2), np.uint8)
    y = np.array([3, 1, 5, 3, 0, 5, 5, 9])
    pair = datasets.pair_from_arrays(x, y, x[:4], y[:4], 3, 5)
    assert pair.classes == (3, 5) and pair.y_train.dtype == np.int64
    assert pair.y_train.tolist() == [0, 1, 0, 1, 1]
    assert pair.x_train[:, 0, 0].tolist() == [0, 2, 3, 5, 6]  # kept in order
    assert pair.y_test.tolist() == [0, 1, 0]
    original = datasets.pair_from_arrays(x, y, x, y, 5, 3, relabel=False)
    assert original.y_train.tolist() == [3, 5, 3, 5, 5]
    with pytest.raises(InputError, match="labels must have shape"):
        datasets.pair_from_arrays(x, y[:3], x, y, 3, 5)


def test_binary_pair_limits_keep_first_examples(tmp_path):
    for split, n, seed in (("train", 60, 11), ("test", 30, 12)):
        write_idx_split(tmp_path / "mnist", split, *small_mnist(n, seed))
    full = datasets.binary_pair("mnist", 2, 7, data_dir=tmp_path, download=False)
    part = datasets.binary_pair("mnist", 2, 7, data_dir=tmp_path, download=False,
                                limit_train=4, limit_test=2)
    assert len(part.y_train) == 4 and len(part.y_test) == 2 and part.dataset == "mnist"
    np.testing.assert_array_equal(part.x_train, full.x_train[:4])
    np.testing.assert_array_equal(part.y_test, full.y_test[:2])
