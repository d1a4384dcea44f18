"""Figures and the certificate options of the command line (bound, norm, box, plot)."""
from __future__ import annotations

import json

import numpy as np
import pytest

import nnmargin
from nnmargin import _names
from nnmargin.cli import certify as cli_certify
from nnmargin.cli import main
from nnmargin.cli._certify_output import PANEL_NORMS, robust_accuracy_curves

pytest.importorskip("matplotlib")
from nnmargin import plots  # noqa: E402


def test_robust_accuracy_curve_counts_radius_strictly_above_eps():
    radius = np.array([0.0, 0.5, 1.0, 2.0])
    correct = np.array([True, True, False, True])
    np.testing.assert_allclose(plots.robust_accuracy_curve(radius, correct, [0, 0.5, 1.9, 2]), [0.75, 0.25, 0.25, 0])


def test_figures_are_written(tmp_path):
    rng = np.random.default_rng(0)
    r, c = rng.random(50), rng.random(50) > 0.2
    plots.plot_robust_accuracy({"l2": {"margin": (r / 2, c), "exact": (r, c)}, "linf": {"margin": (r / 9, c)}},
                               tmp_path / "a.png", title="t")
    plots.plot_radius_histogram(r, c, "l2", tmp_path / "h.png")
    orig = rng.random((5, 16))
    adv = np.clip(orig + 0.1 * rng.normal(size=(5, 16)), 0, 1)
    adv[2] = np.nan  # no example for that query: skipped
    plots.plot_adversarial_examples(orig, adv, (4, 4), tmp_path / "x.png")
    for name in ("a.png", "h.png", "x.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000


def test_cli_exact_bound_with_plots_and_json(tmp_path, capsys, monkeypatch):
    calls = []
    real_certify = cli_certify.certify
    monkeypatch.setattr(cli_certify, "certify", lambda *a, **k: calls.append(k) or real_certify(*a, **k))
    monkeypatch.setattr(nnmargin, "certify", lambda *a, **k: pytest.fail("--plot must reuse the run's result"))
    out = tmp_path / "r.json"
    code = main(["certify", "--bound", "exact", "--norm", "linf", "--classes", "3", "5", "--limit", "12",
                 "--box", "--plot", str(tmp_path / "fig"), "--out", str(out), "--eps", "0.05", "0.1"])
    assert code == 0 and len(calls) == 1, "the figures reuse the one certify result"
    text = capsys.readouterr().out
    assert "bound       exact, radii and eps in the linf norm" in text and "exact robust accuracy" in text
    doc = json.loads(out.read_text())
    assert doc["bound"] == "exact" and doc["norm"] == "linf" and len(doc["target_index"]) == 12
    for name in ("robust_accuracy.png", "radius_histogram.png", "adversarial_examples.png"):
        assert (tmp_path / "fig" / name).stat().st_size > 2000
    # the same numbers as the library call
    s = nnmargin.datasets.load_sample()
    keep, keep_t = np.isin(s.y_train, [3, 5]), np.isin(s.y_test, [3, 5])
    cert = real_certify(s.x_test[keep_t][:12], s.y_test[keep_t][:12], (s.x_train[keep], s.y_train[keep]),
                        bound="exact", norm="linf", box=True)
    np.testing.assert_allclose(doc["radius"], cert.radius)


def test_plot_curves_are_the_margin_bound_in_every_norm_plus_the_run_s_bound():
    s = nnmargin.datasets.load_sample()
    cert = nnmargin.certify(s.x_test[:40], s.y_test[:40], (s.x_train, s.y_train), bound="bisector", norm="linf")
    curves = robust_accuracy_curves(cert)
    assert sorted(curves) == sorted(_names.NORMS) == sorted(PANEL_NORMS)
    for norm, lines in curves.items():
        assert sorted(lines) == (["bisector", "margin"] if norm == "linf" else ["margin"])
        direct = nnmargin.certify(s.x_test[:40], s.y_test[:40], (s.x_train, s.y_train), norm=norm)
        np.testing.assert_array_equal(lines["margin"][0], direct.radius)
    np.testing.assert_array_equal(curves["linf"]["bisector"][0], cert.radius)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["certify", "--bound", "bisector", "--metric", "l1"], "--metric l2"),
        (["certify", "--bound", "exact", "--scheduler", "local"], "one machine"),
        (["certify", "--box"], "--box applies to --bound exact"),
    ],
)
def test_cli_rejects_inconsistent_bound_options(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
