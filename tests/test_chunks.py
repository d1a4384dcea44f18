"""certify's chunk loop: worker processes and checkpoints never change a result; an interrupted run
resumes without recomputing finished chunks; a wrong checkpoint or a dying worker is an error, not a
silent mix or a hang."""
from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nnmargin
from nnmargin.cli import main as cli_main

certify_module = importlib.import_module("nnmargin.certify")

ARRAYS = ("labels", "pred", "correct", "dist_same", "idx_same", "dist_other", "idx_other", "radius",
          "radius_upper", "target_index", "adversarial")


@pytest.fixture(scope="module")
def sample():
    s = nnmargin.datasets.load_sample()
    return nnmargin.TrainSet(s.x_train, s.y_train), s.x_test[:40], s.y_test[:40]


def assert_same(a, b):
    for name in ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        if x is None or y is None:
            assert x is None and y is None, name
        else:
            np.testing.assert_array_equal(x, y, err_msg=name)


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_processes_give_the_result_of_one_process(sample, norm):
    train, x, y = sample
    one = nnmargin.certify(x, y, train, bound="exact", norm=norm, batch_size=8)
    two = nnmargin.certify(x, y, train, bound="exact", norm=norm, batch_size=8, processes=2)
    assert_same(one, two)
    assert two.info["programs_solved"] == one.info["programs_solved"]


def test_processes_with_leave_one_out_and_margin(sample):
    train, _, _ = sample
    x, y = train.points[:30], train.labels[:30]
    small = nnmargin.TrainSet(x, y)
    one = nnmargin.certify(x, y, small, bound="exact", leave_one_out=True, batch_size=7)
    two = nnmargin.certify(x, y, small, bound="exact", leave_one_out=True, batch_size=7, processes=3)
    assert_same(one, two)
    assert_same(nnmargin.certify(x, y, small, batch_size=4), nnmargin.certify(x, y, small, batch_size=4, processes=2))


def test_checkpoint_resumes_only_the_missing_chunks(sample, tmp_path, monkeypatch):
    train, x, y = sample
    full = nnmargin.certify(x, y, train, bound="exact", batch_size=8)
    folder = tmp_path / "run"
    first = nnmargin.certify(x, y, train, bound="exact", batch_size=8, checkpoint=folder)
    assert_same(full, first)
    chunks = sorted(folder.glob("chunk_*.pkl"))
    assert len(chunks) == 5 and (folder / "run.json").exists()
    # an interruption: two chunks never finished
    chunks[1].unlink()
    chunks[4].unlink()
    computed = []
    real = certify_module._certify_batch
    monkeypatch.setattr(certify_module, "_certify_batch", lambda req: computed.append(len(req.labels)) or real(req))
    resumed = nnmargin.certify(x, y, train, bound="exact", batch_size=8, checkpoint=folder)
    assert computed == [8, 8]
    assert_same(full, resumed)
    assert len(list(folder.glob("chunk_*.pkl"))) == 5
    assert not list(folder.glob("*.tmp*"))


@pytest.mark.parametrize("change", ["norm", "data", "batch", "box"])
def test_checkpoint_of_another_run_is_refused(sample, tmp_path, change):
    train, x, y = sample
    nnmargin.certify(x, y, train, bound="exact", batch_size=8, checkpoint=tmp_path)
    kwargs = dict(bound="exact", batch_size=8, checkpoint=tmp_path)
    if change == "norm":
        kwargs["norm"] = "linf"
    elif change == "data":
        x = x.copy()
        x[3, 10, 10] ^= 1
    elif change == "batch":
        kwargs["batch_size"] = 10
    else:
        kwargs["box"] = True
    with pytest.raises(nnmargin.InputError, match="belongs to another run"):
        nnmargin.certify(x, y, train, **kwargs)


def test_checkpoint_bad_folder_and_processes(sample, tmp_path):
    train, x, y = sample
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    with pytest.raises(nnmargin.InputError, match="not a folder"):
        nnmargin.certify(x, y, train, checkpoint=not_a_folder)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "run.json").write_text("{not json")
    with pytest.raises(nnmargin.InputError, match="cannot be read"):
        nnmargin.certify(x, y, train, checkpoint=broken)
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(nnmargin.InputError, match="processes"):
            nnmargin.certify(x, y, train, processes=bad)


def test_worker_errors_keep_their_type(sample, tmp_path):
    """An internal failure in a worker reaches the caller as itself (with the worker's traceback),
    never as bad input; a float query that is no training point is rejected before any worker starts."""
    train, x, y = sample
    with pytest.raises(nnmargin.InputError, match="leave_one_out"):
        nnmargin.certify(x, y, train, bound="exact", leave_one_out=True, processes=2)
    script = tmp_path / "fails.py"
    script.write_text(textwrap.dedent("""
        import nnmargin, nnmargin._exact.programs as programs
        def broken(*a, **k):
            raise FloatingPointError("solver exploded")
        programs.least_distance = broken  # also in the workers, which re-import this script
        if __name__ == "__main__":
            s = nnmargin.datasets.load_sample()
            nnmargin.certify(s.x_test[:4], s.y_test[:4], (s.x_train, s.y_train), bound="exact", batch_size=2,
                             processes=2)
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "FloatingPointError: solver exploded" in proc.stderr and "InputError" not in proc.stderr


def test_unguarded_main_script_raises_instead_of_hanging(tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text(textwrap.dedent("""
        import nnmargin
        s = nnmargin.datasets.load_sample()
        nnmargin.certify(s.x_test[:8], s.y_test[:8], (s.x_train, s.y_train), bound="exact", batch_size=2,
                         processes=2)
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "RuntimeError: a worker process of certify(processes=2) exited while starting" in proc.stderr


def test_cli_processes_and_checkpoint(tmp_path, capsys):
    out = [tmp_path / f"{name}.json" for name in ("one", "two", "again")]
    base = ["certify", "--bound", "exact", "--limit", "24", "--chunk-size", "8", "--quiet"]
    assert cli_main(base + ["--out", str(out[0])]) == 0
    assert cli_main(base + ["--processes", "2", "--checkpoint", str(tmp_path / "ck"), "--out", str(out[1])]) == 0
    assert cli_main(base + ["--checkpoint", str(tmp_path / "ck"), "--out", str(out[2])]) == 0
    runs = [json.loads(p.read_text()) for p in out]
    for key in ("radius", "radius_upper", "pred", "target_index"):
        assert runs[0][key] == runs[1][key] == runs[2][key], key
    assert cli_main(["certify", "--processes", "2", "--scheduler", "local"]) == 2
    assert "--processes and --checkpoint run on one machine" in capsys.readouterr().err


def test_processes_without_batch_size_still_split_the_work(sample, monkeypatch):
    """processes=2 with no batch_size must not run as one chunk in one worker (a silent no-op)."""
    train, x, y = sample
    seen = {}
    real = certify_module.run_chunks

    def spy(fn, request, n, step, **kw):
        seen.update(n=n, step=step, processes=kw["processes"])
        return real(fn, request, n, step, **kw)

    monkeypatch.setattr(certify_module, "run_chunks", spy)
    two = nnmargin.certify(x, y, train, bound="exact", processes=2)
    assert seen["processes"] == 2 and seen["step"] < seen["n"]
    assert_same(nnmargin.certify(x, y, train, bound="exact"), two)
