"""r-separation (``nnmargin.separation`` and ``nnmargin separation``): the distances against the numpy
reference on random and adversarial inputs, the statistics, the outputs, bad input."""
from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

import nnmargin
from nnmargin import InputError, datasets, reference
from nnmargin._names import DEFAULT_UINT8_SCALE, METRICS
from nnmargin.cli import main
from nnmargin.separation import DEFAULT_EPS


@pytest.fixture(scope="module")
def sample():
    return datasets.load_sample()


def _blobs(rng, dtype, n=60, d=12, classes=4):
    y = rng.integers(0, classes, n)
    if dtype == np.uint8:
        return rng.integers(0, 256, (n, d)).astype(np.uint8), y
    return rng.normal(size=(n, d)).astype(dtype), y


def _unit(x):
    return DEFAULT_UINT8_SCALE if x.dtype == np.uint8 else 1.0


# --------------------------------------------------------------------------- against the reference

@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_train_train_and_test_train_match_the_reference(metric, dtype):
    rng = np.random.default_rng(7)
    x, y = _blobs(rng, dtype)
    xq, yq = _blobs(rng, dtype, n=25)
    tt = nnmargin.separation(x, y, metric=metric)
    qt = nnmargin.separation(x, y, (xq, yq), metric=metric)
    for result, (qx, qy) in ((tt, (x, y)), (qt, (xq, yq))):
        _, _, dist, idx = reference.nearest_same_other(qx, qy, x, y, metric)
        np.testing.assert_allclose(result.distances, dist * _unit(x), rtol=1e-12)
        np.testing.assert_array_equal(result.nearest_index, idx)
        np.testing.assert_array_equal(result.nearest_label, y[idx])
        assert (result.nearest_label != qy).all()
    assert tt.kind == "train-train" and qt.kind == "test-train" and len(qt) == 25


def test_uint8_distances_are_exact_multiples_of_the_scale():
    rng = np.random.default_rng(1)
    x, y = _blobs(rng, np.uint8, n=40)
    sep = nnmargin.separation(x, y, metric="linf", scale=1.0)
    _, _, dist, _ = reference.nearest_same_other(x, y, x, y, "linf")
    np.testing.assert_array_equal(sep.distances, dist)  # integers, bit for bit
    assert sep.scale == 1.0


def test_leave_one_out_does_not_change_the_other_class_distance():
    rng = np.random.default_rng(2)
    x, y = _blobs(rng, np.uint8)
    with_self = nnmargin.certify(x, y, (x, y), metric="linf")
    without = nnmargin.certify(x, y, (x, y), metric="linf", leave_one_out=True)
    np.testing.assert_array_equal(with_self.dist_other, without.dist_other)
    np.testing.assert_array_equal(nnmargin.separation(x, y).distances, without.dist_other)


@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_a_copy_in_another_class_gives_distance_zero(dtype):
    rng = np.random.default_rng(3)
    x, y = _blobs(rng, dtype, n=30, classes=3)
    x = np.concatenate([x, x[4:5]])
    y = np.concatenate([y, [(y[4] + 1) % 3]])  # point 4 again, under another label
    sep = nnmargin.separation(x, y, metric="l2")
    assert sep.distances[4] == 0 and sep.distances[-1] == 0
    assert sep.nearest_index[4] == len(y) - 1 and sep.nearest_index[-1] == 4
    assert sep.min == 0 and sep.radius == 0 and all(f < 1 for f in sep.fraction_beyond.values())
    # copies within one class are not a separation problem
    same = nnmargin.separation(np.concatenate([x[:30], x[:1]]), np.concatenate([y[:30], y[:1]]))
    assert same.min > 0


def test_one_class_only_gives_infinite_distances():
    x = np.arange(20, dtype=np.uint8).reshape(10, 2)
    sep = nnmargin.separation(x, np.zeros(10, dtype=int), metric="l1")
    assert np.isinf(sep.distances).all() and (sep.nearest_index == -1).all() and (sep.nearest_label == -1).all()
    assert sep.statistics() == {"min": np.inf, "p1": np.inf, "median": np.inf, "mean": np.inf, "radius": np.inf}
    assert all(f == 1.0 for f in sep.fraction_beyond.values())
    doc = json.loads(sep.to_json())
    assert doc["min"] is None and doc["radius"] is None and doc["distances"] == [None] * 10
    # a test class absent from the training set: every training point is "other" (x[:3] + 1 is 2 l1
    # steps from its nearest one); a test point of the training class alone has none
    queries = nnmargin.separation(x, np.zeros(10, dtype=int), (x[:3] + 1, [1, 1, 0]), metric="l1")
    np.testing.assert_array_equal(queries.distances, [2 * DEFAULT_UINT8_SCALE, 2 * DEFAULT_UINT8_SCALE, np.inf])


# --------------------------------------------------------------------------- statistics

def test_statistics_on_a_hand_checked_line():
    # class 0 at 0 and 1, class 1 at 3: train-train distances 3, 2, 2
    x, y = np.array([[0.0], [1.0], [3.0]]), np.array([0, 0, 1])
    sep = nnmargin.separation(x, y, metric="l2", eps=[0.5, 1.0, 1.5])
    np.testing.assert_array_equal(sep.distances, [3.0, 2.0, 2.0])
    assert (sep.min, sep.radius, sep.median) == (2.0, 1.0, 2.0)
    assert sep.mean == pytest.approx(7 / 3) and sep.p1 == 2.0
    # farther than 2 eps, strictly: eps 1 -> only the distance 3
    assert sep.fraction_beyond == {0.5: 1.0, 1.0: pytest.approx(1 / 3), 1.5: 0.0}
    assert nnmargin.separation(x, y, (np.array([[2.5]]), [1]), metric="l2").min == 1.5


def test_statistics_match_numpy_on_random_data():
    rng = np.random.default_rng(4)
    x, y = _blobs(rng, np.float64, n=200, d=3)
    sep = nnmargin.separation(x, y, metric="linf")
    d = sep.distances
    assert sep.min == d.min() and sep.radius == d.min() / 2 and sep.mean == pytest.approx(d.mean())
    assert sep.p1 == pytest.approx(np.percentile(d, 1)) and sep.median == pytest.approx(np.median(d))
    assert sep.eps == DEFAULT_EPS["linf"]
    assert sep.fraction_beyond == {e: pytest.approx((d > 2 * e).mean()) for e in DEFAULT_EPS["linf"]}


def test_default_eps_cover_every_metric_and_the_papers_values():
    assert set(DEFAULT_EPS) == set(METRICS)
    assert {0.1, 0.3} <= set(DEFAULT_EPS["linf"]) and DEFAULT_EPS["linf"][0] == pytest.approx(8 / 255)


def test_batches_threads_and_progress_do_not_change_the_result(sample):
    base = nnmargin.separation(sample.x_train[:600], sample.y_train[:600])
    other = nnmargin.separation(sample.x_train[:600], sample.y_train[:600], batch_size=77, num_threads=1,
                                progress=True)
    np.testing.assert_array_equal(base.distances, other.distances)
    np.testing.assert_array_equal(base.nearest_index, other.nearest_index)


def test_outputs_round_trip(tmp_path):
    rng = np.random.default_rng(5)
    x, y = _blobs(rng, np.uint8, n=30)
    sep = nnmargin.separation(x, y)
    sep.to_json(tmp_path / "s.json")
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["min"] == sep.min and doc["p1"] == sep.p1 and doc["n_points"] == 30
    assert doc["fraction_beyond_2eps"] == {repr(e): f for e, f in sep.fraction_beyond.items()}
    np.testing.assert_array_equal(doc["distances"], sep.distances)
    assert "distances" not in sep.to_dict(arrays=False)
    rows = list(csv.DictReader(io.StringIO(sep.to_csv(tmp_path / "s.csv"))))
    assert (tmp_path / "s.csv").read_text() == sep.to_csv()
    np.testing.assert_array_equal([float(r["distance"]) for r in rows], sep.distances)
    np.testing.assert_array_equal([int(r["nearest_index"]) for r in rows], sep.nearest_index)
    text = sep.summary()
    assert "min (2r)" in text and f"{sep.min:.4f}" in text and "farther than 2*0.1" in text


# --------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("kwargs, message", [
    ({"metric": "l3"}, "metric"),
    ({"queries": np.zeros((3, 4))}, "queries must be"),
    ({"queries": (np.zeros((3, 5), np.uint8), [0, 1, 0])}, "5 features"),
    ({"queries": (np.zeros((3, 4), np.uint8), [0, 1])}, "2 labels"),
    ({"queries": (np.zeros((3, 4)), [0, 1, 0])}, "float64 but the training set is uint8"),
    ({"eps": [-0.1]}, "eps"),
    ({"eps": [np.nan]}, "eps"),
    ({"eps": "big"}, "eps"),
    ({"batch_size": 0}, "batch_size"),
    ({"num_threads": 0}, "num_threads"),
    ({"scale": -1.0}, "scale"),
])
def test_bad_input_raises_input_error(kwargs, message):
    x, y = np.arange(24, dtype=np.uint8).reshape(6, 4), np.array([0, 1, 0, 1, 0, 1])
    with pytest.raises(InputError, match=message):
        nnmargin.separation(x, y, **kwargs)


def test_bad_training_data_raises_input_error():
    with pytest.raises(InputError, match="NaN"):
        nnmargin.separation(np.full((3, 2), np.nan), [0, 1, 0])
    with pytest.raises(InputError, match="2 labels"):
        nnmargin.separation(np.zeros((3, 2)), [0, 1])
    with pytest.raises(InputError, match="empty"):
        nnmargin.separation(np.zeros((3, 2)), [0, 1, 0], (np.zeros((0, 2)), []))


# --------------------------------------------------------------------------- command line


def test_cli_on_the_sample_writes_json_csv_and_plot(sample, tmp_path, capsys):
    out, table, figures = tmp_path / "s.json", tmp_path / "s.csv", tmp_path / "figs"
    code = main(["separation", "--dataset", "sample", "--metric", "linf", "--eps", "0.1", "0.3",
                 "--out", str(out), "--csv", str(table), "--plot", str(figures), "--threads", "2"])
    captured = capsys.readouterr()
    assert code == 0 and captured.err == ""
    tt = nnmargin.separation(sample.x_train, sample.y_train, eps=[0.1, 0.3])
    qt = nnmargin.separation(sample.x_train, sample.y_train, (sample.x_test, sample.y_test), eps=[0.1, 0.3])
    assert "train-train" in captured.out and f"{tt.min:.4f}" in captured.out and f"{qt.median:.4f}" in captured.out
    doc = json.loads(out.read_text())
    assert doc["argv"][0] == "separation" and doc["machine"]["threads"] == 2 and "cpu" in doc["machine"]
    for kind, expected in (("train-train", tt), ("test-train", qt)):
        got = doc["results"][kind]
        assert got["n_points"] == len(expected) and got["min"] == expected.min and got["mean"] == expected.mean
        assert got["fraction_beyond_2eps"] == {"0.1": expected.fraction_beyond[0.1],
                                               "0.3": expected.fraction_beyond[0.3]}
    assert set(doc["timings"]) == {"load_s", "train_train_s", "test_train_s", "total_s"}
    rows = list(csv.DictReader(io.StringIO(table.read_text())))
    assert len(rows) == len(tt) + len(qt) and {r["split"] for r in rows} == {"train-train", "test-train"}
    np.testing.assert_array_equal([float(r["distance"]) for r in rows if r["split"] == "test-train"],
                                  qt.distances)
    assert (figures / "separation_sample_linf.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_one_split_and_quiet(sample, tmp_path, capsys):
    out = tmp_path / "s.json"
    code = main(["separation", "--split", "test", "--metric", "l2", "--quiet", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0 and captured.out == "" and captured.err == ""
    doc = json.loads(out.read_text())
    assert list(doc["results"]) == ["test-train"]
    assert doc["results"]["test-train"]["fraction_beyond_2eps"].keys() == {repr(e) for e in DEFAULT_EPS["l2"]}


@pytest.mark.parametrize("argv", [
    ["--threads", "0"],
    ["--eps", "-1"],
    ["--eps", "nan"],
    ["--metric", "l3"],
    ["--split", "val"],
    ["--dataset", "imagenet"],
    ["--data-dir", "."],
    ["--out", "no/such/folder/s.json"],
    ["--csv", "."],
])
def test_cli_bad_input_exits_2(argv, capsys):
    code = main(["separation", *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("nnmargin: error: ") and err.count("\n") == 1


def test_cli_plot_into_a_file_exits_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["separation", "--plot", str(blocker)]) == 2
    assert "not a directory" in capsys.readouterr().err
