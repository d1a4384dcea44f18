"""nnmargin.report: markdown and PNG figures from experiment folders (synthetic results, no training)."""
from __future__ import annotations

import numpy as np
import pytest

from nnmargin.experiment import ResultStore, Settings
from nnmargin.experiment.tables import head_to_head, load_run
from nnmargin.cli import main
from nnmargin.report import write_report

PAIRS = ["0-1", "3-5", "4-9"]
METHODS = ["1nn", "standard", "early-stop", "trades", "trades-l2linf"]


def _fake_run(out_dir, dataset="mnist", seed=0):
    """A results folder with made-up but consistent units for every pair, method, split and norm."""
    settings = Settings.make(dataset, limit=500, eval_limit=100, attack_iters=20)
    rng = np.random.default_rng(seed)
    with ResultStore(out_dir) as store:
        store.bind_settings(settings)
        for pair in PAIRS:
            for method in METHODS:
                for split in ("train", "test"):
                    for norm in ("linf", "l2"):
                        eps = settings.eps(norm)
                        n_clean = 100 if (method == "1nn" and split == "train") else int(rng.integers(90, 101))
                        robust = np.sort(rng.integers(0, n_clean + 1, len(eps)))[::-1]
                        store.add_unit(dataset=settings.dataset, pair=pair, method=method, split=split, norm=norm,
                                       kind="certified" if method == "1nn" else "attack", detail="test", n=100,
                                       n_clean=n_clean, eps=eps, n_robust=robust, seconds=0.5,
                                       extra={"radius_min": 0.4} if method == "1nn" else {})
                if method != "1nn":
                    store.add_training(dataset=settings.dataset, pair=pair, method=method, seconds=12.0, n_train=500,
                                       config={"epochs": 3}, history=[{"epoch": 1, "train_acc": 0.55 if
                                                                       (pair, method) == ("4-9", "trades") else 0.99}],
                                       checkpoint=f"models/{pair}_{method}.pt")
    return out_dir


def test_markdown_tables(tmp_path):
    run_dir = _fake_run(tmp_path / "mnist")
    path = write_report([run_dir], tmp_path / "report", figures=False)
    text = path.read_text(encoding="utf-8")
    assert "| method | clean train % | clean test % | pairs |" in text
    assert "### Robust accuracy, test points, l2" in text
    assert "≥" in text and "≤" in text, "bounds must be labelled"
    assert "certified lower bound" in text and "upper bound" in text
    assert "pairs 1NN ≥ best TRADES" in text
    assert "| 4-9 |" in text
    assert "did not learn" in text and "4-9 trades" in text
    run = load_run(run_dir)
    h = head_to_head(run, "test", "l2", run.headline_eps("l2"))
    assert h["n"] == 3 and f"{h['wins']}/3" in text


def test_figures_render(tmp_path):
    pytest.importorskip("matplotlib")
    runs = [_fake_run(tmp_path / "mnist"), _fake_run(tmp_path / "fmnist", "fashion-mnist", seed=1)]
    assert main(["report"] + [str(r) for r in runs] + ["--out", str(tmp_path / "report")]) == 0
    figures = sorted((tmp_path / "report" / "figures").glob("*.png"))
    names = {f.name for f in figures}
    assert "clean_accuracy.png" in names
    assert {"robust_vs_eps_mnist_mnist.png", "scatter_1nn_vs_trades_fashion-mnist_fmnist.png"} <= names
    assert len(figures) == 1 + 3 * len(runs)
    for f in figures:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f.stat().st_size > 5000
    text = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    for f in figures:
        assert f"(figures/{f.name})" in text


def test_report_errors(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "r"), "--no-figures"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nnmargin report: error: ") and "no experiment results" in err and err.count("\n") == 1
