"""nnmargin.experiment: pairs/settings parsing, the 1NN bound switch, and a runner that resumes after
being interrupted (by an exception or a SIGKILL) without losing or duplicating results.

Runs use the embedded MNIST sample with tiny settings (100 points per pair, 1 epoch, 3 APGD
iterations), so the whole file takes a few seconds of CPU.
"""
from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("pyautoattack")

import nnmargin  # noqa: E402
from nnmargin import attacks, datasets  # noqa: E402
from nnmargin import InputError  # noqa: E402
from nnmargin.cli import main  # noqa: E402
from nnmargin.experiment import (ResultStore, SettingsMismatch, one_nn_robust_accuracy, parse_methods,  # noqa: E402
                                 parse_pairs, run_experiment)
from nnmargin.experiment.runner import NetworkTrainer  # noqa: E402


# Tiny models on one torch thread (conftest.py says why); the setting is restored afterwards.
pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = dict(limit=100, eval_limit=20, attack_iters=3, train_overrides={"epochs": 1, "attack_steps": 1},
            eps_linf=[0.1, 0.3], eps_l2=[1.0, 2.0], progress=False)
PAIRS = [(0, 1), (3, 5)]
METHODS = ["1nn", "standard", "trades"]
N_UNITS = len(PAIRS) * len(METHODS) * 2 * 2  # x splits x norms


class CountingTrainer(NetworkTrainer):
    """The real trainer, counting how many networks it trains."""

    def __init__(self):
        super().__init__("sample", TINY["train_overrides"], seed=0, device="cpu")
        self.trained = []

    def train(self, method, x, y, progress):
        self.trained.append(method)
        return super().train(method, x, y, progress)


def _rows(out_dir):
    db = sqlite3.connect(str(out_dir / "results.sqlite"))
    try:
        return db.execute("SELECT dataset, pair, method, split, norm, finished_at, n_robust FROM units").fetchall()
    finally:
        db.close()


def test_parse_pairs_and_methods():
    assert parse_pairs("3-5,0-1") == [(3, 5), (0, 1)]
    assert parse_pairs("5-3, 3-5") == [(3, 5)]
    assert len(parse_pairs("all")) == 45
    for bad in ("3-3", "1-10", "3", "a-b", ""):
        with pytest.raises(InputError):
            parse_pairs(bad)
    assert parse_methods("1nn,trades,1nn") == ["1nn", "trades"]
    with pytest.raises(InputError, match="unknown method"):
        parse_methods("1nn,svm")


def test_one_nn_is_fully_robust_on_its_training_points():
    s = datasets.load_sample()
    pair = datasets.pair_from_arrays(s.x_train, s.y_train, s.x_test, s.y_test, 3, 5)
    res = one_nn_robust_accuracy(pair, "train", "l2", [0.5, 1.0])
    assert res.clean_acc == 1.0 and np.all(res.robust_acc == 1.0)
    # Paper's convention: a training point is its own neighbour, so its radius is half the distance
    # to the nearest point of the other class.
    cert = nnmargin.certify(pair.x_train, pair.y_train, (pair.x_train, pair.y_train))
    assert np.allclose(res.radius, cert.dist_other / 2, rtol=1e-12)


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_one_nn_bounds_come_from_certify(norm):
    """Every bound comes from nnmargin.certify in the norm asked for: the margin radius equals the l2
    result converted to that norm, the bisector bound is never below it and tighter somewhere."""
    s = datasets.load_sample()
    pair = datasets.pair_from_arrays(s.x_train, s.y_train, s.x_test, s.y_test, 3, 5)
    eps = [0.01, 0.05] if norm == "linf" else [0.5, 1.0]
    margin = one_nn_robust_accuracy(pair, "test", norm, eps, bound="margin", eval_limit=60)
    bisector = one_nn_robust_accuracy(pair, "test", norm, eps, bound="bisector", eval_limit=60)
    cert_l2 = nnmargin.certify(pair.x_test[:60], pair.y_test[:60], (pair.x_train, pair.y_train))
    np.testing.assert_array_equal(margin.radius, cert_l2.margin_radius(norm))
    assert np.all(bisector.radius >= margin.radius) and np.any(bisector.radius > margin.radius)
    assert np.all(margin.radius[margin.correct] > 0)
    assert margin.kind == bisector.kind == "certified"
    np.testing.assert_array_equal(margin.robust_correct, margin.correct & (margin.radius > np.array(eps)[:, None]))


def test_run_resumes_after_an_exception_without_duplicates(tmp_path, monkeypatch):
    trainer = CountingTrainer()
    real_sweep = attacks.apgd_sweep
    calls = {"n": 0}

    def failing_sweep(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6:  # mid-way through the second network of the first pair
            raise RuntimeError("simulated crash")
        return real_sweep(*args, **kwargs)

    monkeypatch.setattr(attacks, "apgd_sweep", failing_sweep)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_experiment("sample", PAIRS, METHODS, tmp_path, trainer=trainer, **TINY)
    before = _rows(tmp_path)
    assert len(before) == 4 + 4 + 1  # 1nn and standard of pair 0-1, one unit of trades
    assert trainer.trained == ["standard", "trades"]
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["0-1_standard.pt", "0-1_trades.pt"]

    monkeypatch.setattr(attacks, "apgd_sweep", real_sweep)
    summary = run_experiment("sample", PAIRS, METHODS, tmp_path, trainer=trainer, **TINY)
    after = _rows(tmp_path)
    assert summary.units_skipped == len(before) and summary.units_done == N_UNITS - len(before)
    assert len(after) == N_UNITS == len({r[:5] for r in after})
    assert set(before) <= set(after), "finished units must be kept untouched"
    assert trainer.trained == ["standard", "trades", "standard", "trades"], "0-1 networks were reloaded"
    with ResultStore(tmp_path) as store:
        assert {(t["pair"], t["method"]) for t in store.trainings()} == {(f"{a}-{b}", m) for a, b in PAIRS
                                                                        for m in ("standard", "trades")}
        for unit in store.units():
            assert unit["kind"] == ("attack" if unit["method"] != "1nn" else "certified")
            assert all(r <= unit["n_clean"] for r in unit["n_robust"])
            assert unit["robust_acc"] == sorted(unit["robust_acc"], reverse=True)
            if unit["method"] == "1nn" and unit["split"] == "train":
                assert unit["clean_acc"] == 1.0

    # Nothing left: a third run does nothing; other settings are refused; more pairs are fine.
    assert run_experiment("sample", PAIRS, METHODS, tmp_path, trainer=trainer, **TINY).units_done == 0
    with pytest.raises(SettingsMismatch, match="eps_l2"):
        run_experiment("sample", PAIRS, METHODS, tmp_path, **{**TINY, "eps_l2": [1.0]})
    more = run_experiment("sample", [(1, 7)], ["1nn"], tmp_path, **TINY)
    assert more.units_done == 4 and len(_rows(tmp_path)) == N_UNITS + 4


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import torch
    from nnmargin.experiment import run_experiment, store
    torch.set_num_threads(1)
    real_add = store.ResultStore.add_unit
    count = [0]
    def add_then_die(self, **kw):
        real_add(self, **kw)
        count[0] += 1
        if count[0] == int(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)  # a hard kill: no cleanup code runs
    store.ResultStore.add_unit = add_then_die
    run_experiment("sample", {pairs!r}, {methods!r}, sys.argv[1], **{tiny!r})
""")


def test_run_resumes_after_sigkill(tmp_path):
    script = KILL_SCRIPT.format(pairs=PAIRS, methods=METHODS, tiny=TINY)
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path), "6"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    before = _rows(tmp_path)
    assert len(before) == 6
    summary = run_experiment("sample", PAIRS, METHODS, tmp_path, **TINY)
    after = _rows(tmp_path)
    assert summary.units_done == N_UNITS - 6
    assert len(after) == N_UNITS == len({r[:5] for r in after})
    assert set(before) <= set(after)
    assert summary.trained == ["0-1_trades", "3-5_standard", "3-5_trades"]  # 0-1 standard was checkpointed


def test_experiment_command(tmp_path, capsys):
    argv = ["experiment", "--dataset", "sample", "--pairs", "0-1", "--methods", "1nn,standard", "--out",
            str(tmp_path), "--limit", "100", "--eval-limit", "10", "--epochs", "1", "--attack-iters", "2", "--quiet"]
    assert main(argv) == 0
    assert len(_rows(tmp_path)) == 8
    assert main(argv) == 0 and len(_rows(tmp_path)) == 8
    capsys.readouterr()
    assert main(argv[:-1] + ["--eps-l2", "0.7"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nnmargin experiment: error: ") and "other settings" in err and err.count("\n") == 1
    assert main(["experiment", "--dataset", "sample", "--pairs", "4-4", "--out", str(tmp_path)]) == 2


def test_knn_methods_are_certified_units_next_to_the_1nn(tmp_path):
    summary = run_experiment("sample", [(3, 5)], ["1nn", "3nn", "75nn"], tmp_path, **TINY)
    assert summary.units_done == 3 * 2 * 2
    with sqlite3.connect(tmp_path / "results.sqlite") as db:
        rows = db.execute("SELECT method, kind, detail FROM units WHERE method != '1nn'").fetchall()
    assert {r[0] for r in rows} == {"3nn", "75nn"} and {r[1] for r in rows} == {"certified"}
    assert all("relaxation" in r[2] for r in rows)
