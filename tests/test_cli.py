"""The ``nnmargin`` command line: default run, outputs, real-data run, errors, ``info``.

Everything runs in-process through ``nnmargin.cli.main`` except the subprocess runs proving the
``python -m nnmargin`` entry points. No network: runs use the embedded sample or the shared data
folder with --no-download.
"""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nnmargin
from nnmargin import InputError, _core, _names, datasets
from nnmargin.cli import COMMANDS, build_parser, main
from nnmargin.cli.certify import DEFAULT_EPS

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ARRAYS = ("labels", "pred", "correct", "dist_same", "idx_same", "dist_other", "idx_other", "radius")


@pytest.fixture(scope="module")
def sample():
    return datasets.load_sample()


def _run(argv, capsys):
    """main(argv) in-process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _assert_matches(document: dict, cert) -> None:
    """The per-query arrays of an --out JSON equal those of a direct nnmargin.certify call."""
    assert document["n_queries"] == len(cert)
    assert document["n_train"] == cert.n_train
    assert document["accuracy"] == pytest.approx(cert.accuracy)
    for name in ARRAYS:
        np.testing.assert_array_equal(np.asarray(document[name]), getattr(cert, name), err_msg=name)


# --------------------------------------------------------------------------- default run

def test_default_run_prints_table_on_sample(sample, capsys):
    code, out, err = _run(["certify"], capsys)
    assert code == 0
    assert err == ""  # no progress bar when stderr is not a terminal
    expected = nnmargin.certify(sample.x_test, sample.y_test, (sample.x_train, sample.y_train))
    assert "mnist-sample" in out and "all 10" in out
    assert f"{len(sample.y_train)} points" in out and f"{len(sample.y_test)} from the test split" in out
    assert f"{100 * expected.accuracy:6.2f} %" in out
    for eps in DEFAULT_EPS["l2"]:
        row = next(line for line in out.splitlines() if line.split()[:1] == [f"{eps:g}"])
        assert f"{100 * expected.robust_accuracy(eps):6.2f} %" in row
    assert "load" in out and "search" in out


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "nnmargin", "certify", "--eps", "1"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "certified robust accuracy" in proc.stdout
    assert proc.stderr == ""


def test_help_and_version(capsys):
    code, out, _ = _run(["certify", "--help"], capsys)
    assert code == 0 and "[0, 1] pixel" in out and "--leave-one-out" in out
    code, out, _ = _run(["--version"], capsys)
    assert code == 0 and nnmargin.__version__ in out


# --------------------------------------------------------------------------- outputs

def test_json_and_csv_match_direct_certify(sample, tmp_path, capsys):
    out_json, out_csv = tmp_path / "r.json", tmp_path / "q.csv"
    # A chunk size that does not divide 500 exercises combining chunk results.
    code, out, err = _run(["certify", "--metric", "l1", "--eps", "2", "5", "--chunk-size", 128,
                           "--out", out_json, "--csv", out_csv, "--quiet"], capsys)
    assert (code, out, err) == (0, "", "")
    expected = nnmargin.certify(sample.x_test, sample.y_test, (sample.x_train, sample.y_train), metric="l1")

    document = json.loads(out_json.read_text())
    _assert_matches(document, expected)
    assert document["metric"] == "l1" and document["dataset"] == "sample" and document["classes"] is None
    assert document["split"] == "test" and document["eps"] == [2.0, 5.0]
    assert document["robust_accuracy"] == pytest.approx(
        {"2.0": expected.robust_accuracy(2.0), "5.0": expected.robust_accuracy(5.0)})
    assert set(document["timings"]) == {"load_s", "prepare_s", "search_s", "total_s"}
    assert document["seconds"] == pytest.approx(document["timings"]["search_s"])

    with open(out_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(expected)
    np.testing.assert_array_equal([float(r["radius"]) for r in rows], expected.radius)
    np.testing.assert_array_equal([int(r["idx_other"]) for r in rows], expected.idx_other)


@pytest.mark.parametrize("metric", sorted(DEFAULT_EPS))
def test_default_eps_per_metric(metric, tmp_path, capsys):
    out_json = tmp_path / "r.json"
    code, out, _ = _run(["certify", "--metric", metric, "--limit", 50, "--out", out_json], capsys)
    assert code == 0 and f"eps ({metric})" in out and "first 50" in out
    document = json.loads(out_json.read_text())
    assert document["eps"] == list(DEFAULT_EPS[metric]) and document["n_queries"] == 50


def test_pair_on_train_split_with_and_without_leave_one_out(sample, tmp_path, capsys):
    pair = datasets.pair_from_arrays(sample.x_train, sample.y_train, sample.x_test, sample.y_test,
                                     3, 5, relabel=False)
    for extra, loo in (([], False), (["--leave-one-out"], True)):
        out_json = tmp_path / f"loo{loo}.json"
        code, out, _ = _run(["certify", "--classes", 3, 5, "--split", "train", *extra, "--out", out_json], capsys)
        assert code == 0 and "3 vs 5" in out
        assert ("leave-one-out" in out) == loo and ("its own neighbour" in out) != loo
        expected = nnmargin.certify(pair.x_train, pair.y_train, (pair.x_train, pair.y_train), leave_one_out=loo)
        document = json.loads(out_json.read_text())
        _assert_matches(document, expected)
        assert document["classes"] == [3, 5] and document["leave_one_out"] == loo
        assert set(document["labels"]) == {3, 5}


@pytest.mark.skipif(not (SHARED_DATA / "mnist").is_dir(), reason=f"no MNIST files in {SHARED_DATA}")
def test_real_mnist_pair(tmp_path, capsys):
    out_json = tmp_path / "mnist35.json"
    code, out, err = _run(["certify", "--dataset", "mnist", "--data-dir", SHARED_DATA, "--no-download",
                           "--classes", 3, 5, "--limit", 300, "--out", out_json], capsys)
    assert code == 0, err
    pair = datasets.binary_pair("mnist", 3, 5, data_dir=SHARED_DATA, download=False, relabel=False)
    expected = nnmargin.certify(pair.x_test[:300], pair.y_test[:300], (pair.x_train, pair.y_train))
    document = json.loads(out_json.read_text())
    _assert_matches(document, expected)
    assert document["n_train"] == 6131 + 5421  # MNIST training images of digits 3 and 5
    assert expected.accuracy > 0.95
    assert "mnist (official files" in out and "3 vs 5" in out


# --------------------------------------------------------------------------- progress bar

class _FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_a_terminal_only(monkeypatch, capsys):
    fake = _FakeTerminal()
    monkeypatch.setattr(sys, "stderr", fake)
    assert main(["certify", "--chunk-size", "100"]) == 0
    frames = fake.getvalue().split("\r")
    # tqdm throttles redraws, so only the first frame is certain; the bar erases itself at the end.
    assert frames[1].startswith("certify") and "0/500" in frames[1]
    assert frames[-1] == "" and frames[-2].strip() == ""
    assert "certified robust accuracy" in capsys.readouterr().out

    fake.seek(0), fake.truncate()
    assert main(["certify", "--quiet"]) == 0
    assert fake.getvalue() == ""
    assert capsys.readouterr().out == ""


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize("argv, message", [
    (["certify", "--dataset", "mnist", "--data-dir", "{tmp}", "--no-download"], "not found in"),
    (["certify", "--classes", "3", "12"], "class ids are integers 0..9"),
    (["certify", "--classes", "4", "4"], "two different classes"),
    (["certify", "--eps", "0.5", "-1"], "eps must be a finite number >= 0"),
    (["certify", "--eps", "inf"], "eps must be a finite number >= 0"),
    (["certify", "--dataset", "svhn"], "unknown dataset 'svhn'"),
    (["certify", "--metric", "l3"], "invalid choice"),
    (["certify", "--leave-one-out"], "needs --split train"),
    (["certify", "--limit", "0"], "positive integer"),
    (["certify", "--out", "{tmp}/missing/r.json"], "does not exist"),
    (["certify", "--data-dir", "{tmp}"], "not to the embedded sample"),
    ([], "choose a command"),
    (["frobnicate"], "invalid choice"),
    (["experiment", "--dataset", "sample", "--pairs", "4-4", "--out", "{tmp}"], "two different classes"),
    (["experiment", "--dataset", "sample", "--out", "{tmp}", "--limit", "0"], "positive integer"),
])
def test_bad_input_exits_2_with_one_line(argv, message, tmp_path, capsys):
    code, out, err = _run([a.replace("{tmp}", str(tmp_path)) for a in argv], capsys)
    assert code == 2
    assert out == ""
    assert err.startswith("nnmargin: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_pivot_choices_come_from_the_vocabulary(capsys):
    code, _, err = _run(["certify", "--pivots", _names.MAX_PIVOTS + 1], capsys)
    assert code == 2 and "invalid choice" in err
    _, help_text, _ = _run(["certify", "--help"], capsys)
    assert "{" + ",".join(str(k) for k in range(1, _names.MAX_PIVOTS + 1)) + "}" in help_text
    for names in (_names.METRICS, _names.BOUNDS, _names.DEVICES):
        assert "{" + ",".join(names) + "}" in help_text


# --------------------------------------------------------------------------- error policy

def test_internal_error_exits_1_with_its_traceback(monkeypatch, capsys):
    def broken_search(*args, **kwargs):
        raise RuntimeError("simulated kernel failure")

    monkeypatch.setattr(_core, "search", broken_search)
    code, out, err = _run(["certify"], capsys)
    assert code == 1 and out == ""
    assert "Traceback (most recent call last)" in err and "RuntimeError: simulated kernel failure" in err
    assert "nnmargin: error:" not in err  # never reported as a problem with the input


def test_input_error_from_the_library_exits_2_with_one_line(monkeypatch, capsys):
    def rejecting_certify(*args, **kwargs):
        raise InputError("the queries are\nnot what was expected")

    monkeypatch.setattr("nnmargin.cli.certify.certify", rejecting_certify)
    code, out, err = _run(["certify"], capsys)
    assert (code, out) == (2, "")
    assert err == "nnmargin: error: the queries are not what was expected\n"


def test_interrupt_exits_130(monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("nnmargin.cli.certify.certify", interrupted)
    code, _, err = _run(["certify"], capsys)
    assert code == 130 and err.strip() == "nnmargin: interrupted"


@pytest.mark.parametrize("argv, package", [
    (["certify", "--plot", "{tmp}/figures"], "matplotlib"),
    (["report", "{tmp}", "--out", "{tmp}/report"], "matplotlib"),
    (["experiment", "--dataset", "sample", "--pairs", "0-1", "--methods", "standard", "--out", "{tmp}/run"],
     "torch"),
])
def test_missing_optional_dependency_is_one_line_with_the_pip_command(argv, package, tmp_path, monkeypatch,
                                                                       capsys):
    monkeypatch.setitem(sys.modules, package, None)  # `import <package>` now fails as if not installed
    code, out, err = _run([a.replace("{tmp}", str(tmp_path)) for a in argv], capsys)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"needs {package}" in err and f"pip install {package}" in err
    assert not (tmp_path / "run").exists(), "nothing may run before the dependency check"


# --------------------------------------------------------------------------- info

def test_info(tmp_path, capsys):
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "train-images-idx3-ubyte.gz").write_bytes(b"")
    code, out, err = _run(["info", "--data-dir", tmp_path], capsys)
    assert code == 0 and err == ""
    assert nnmargin.__version__ in out
    assert ", ".join(nnmargin.cpu_isas()) in out
    cuda = next(line for line in out.splitlines() if line.split()[:1] == ["cuda"])
    if nnmargin.cuda_available():
        assert cuda.split()[1] == "available" and "device(s)" in cuda
    else:
        reason = _core.cuda_status()[1]
        assert cuda.split()[1:3] == ["not", "available"] and reason and reason in cuda
        assert _core.built_with_cuda() or reason == "nnmargin was built without CUDA"
    auto = next(line for line in out.splitlines() if line.split()[:2] == ["device", "auto"])
    assert ("uses the CPU until the CUDA backend has passed its GPU check" in auto) != _names.AUTO_USES_CUDA
    assert str(tmp_path) in out and "--data-dir" in out
    assert "1 file(s)" in out and "absent" in out  # mnist/ has a file, fashion-mnist/ does not exist


# --------------------------------------------------------------------------- one parser for every command

def test_every_command_is_listed_and_parsed_by_the_one_parser(capsys):
    assert [c.name for c in COMMANDS][:4] == ["certify", "info", "experiment", "report"]
    assert "separation" in [c.name for c in COMMANDS]
    top = " ".join(build_parser().format_help().split())
    for command in COMMANDS:
        assert f"{command.name} {' '.join(command.help.split())}" in top
        assert main([command.name, "--help"]) == 0
        assert capsys.readouterr().out.startswith(f"usage: nnmargin {command.name} ")


@pytest.mark.parametrize("module, command", [("nnmargin.experiment", "experiment"), ("nnmargin.report", "report")])
def test_python_dash_m_of_the_experiment_modules(module, command):
    proc = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: nnmargin {command} ")
