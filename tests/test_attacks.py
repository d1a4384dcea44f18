"""nnmargin.attacks: APGD robust accuracy of torch models (small, CPU-only, a few seconds)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("pyautoattack")

from nnmargin import InputError, attacks, datasets  # noqa: E402


# Tiny models on one torch thread (conftest.py says why); the setting is restored afterwards.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def problem():
    """A small MLP trained (standard training) on digits 3 vs 5 of the embedded MNIST sample, and
    60 test images (uint8) with labels."""
    s = datasets.load_sample()
    pair = datasets.pair_from_arrays(s.x_train, s.y_train, s.x_test, s.y_test, 3, 5)
    x = attacks.images_to_tensor(pair.x_train)
    y = torch.from_numpy(pair.y_train)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 32), torch.nn.ReLU(),
                                    torch.nn.Linear(32, 2))
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(60):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    model.eval()
    return model, pair.x_test[:60], pair.y_test[:60]


@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 1.5)])
def test_apgd_lowers_accuracy_and_stays_in_the_ball(problem, norm, eps):
    model, x, y = problem
    res = attacks.apgd_robust_accuracy(model, x, y, norm=norm, eps=eps, n_iter=10, keep_adv=True)
    assert res.clean_acc > 0.8, "the stand-in model should have learned the pair"
    assert res.robust_acc < res.clean_acc - 0.2
    assert not np.any(res.robust_correct & ~res.clean_correct)
    x_clean = attacks.images_to_tensor(x)
    assert res.x_adv.min() >= 0 and res.x_adv.max() <= 1
    norms = attacks.perturbation_norms(res.x_adv, x_clean, norm)
    assert np.all(norms <= eps * (1 + attacks.BALL_RTOL) + attacks.BALL_ATOL)
    assert res.max_perturbation == pytest.approx(norms.max())
    # robust_correct is what the model says on the returned inputs.
    with torch.no_grad():
        pred = model(res.x_adv).argmax(1).numpy()
    assert np.array_equal(res.robust_correct, res.clean_correct & (pred == y))
    # Points not attacked (clean-wrong) are returned unchanged.
    assert torch.equal(res.x_adv[~torch.from_numpy(res.clean_correct)], x_clean[~torch.from_numpy(res.clean_correct)])


def test_uint8_and_float_input_agree(problem):
    model, x, y = problem
    a = attacks.apgd_robust_accuracy(model, x, y, norm="linf", eps=0.05, n_iter=5)
    b = attacks.apgd_robust_accuracy(model, attacks.images_to_tensor(x), torch.from_numpy(y), norm="linf",
                                     eps=0.05, n_iter=5)
    assert np.array_equal(a.robust_correct, b.robust_correct)


def test_sweep_is_monotone_and_keeps_the_given_order(problem):
    model, x, y = problem
    eps = [0.3, 0.02, 0.1]
    sweep = attacks.apgd_sweep(model, x, y, "linf", eps, n_iter=5)
    assert list(sweep.eps) == eps
    order = np.argsort(eps)
    rows = sweep.robust_correct[order]
    assert not np.any(rows[1:] & ~rows[:-1]), "robust at a larger eps must imply robust at a smaller one"
    assert not np.any(rows[0] & ~sweep.clean_correct)
    assert sweep.robust_acc[order][-1] < sweep.clean_acc
    single = attacks.apgd_robust_accuracy(model, x, y, norm="linf", eps=0.02, n_iter=5)
    assert np.array_equal(single.robust_correct, sweep.robust_correct[1])  # same first attack, same seed


def test_attack_output_outside_the_ball_raises(problem, monkeypatch):
    from pyautoattack import autopgd_base

    model, x, y = problem
    monkeypatch.setattr(autopgd_base.APGDAttack, "perturb",
                        lambda self, xb, yb: (xb + 2 * self.eps).clamp(0, 1))
    with pytest.raises(attacks.AttackError, match="outside the linf ball"):
        attacks.apgd_robust_accuracy(model, x, y, norm="linf", eps=0.1, n_iter=2)
    monkeypatch.setattr(autopgd_base.APGDAttack, "perturb", lambda self, xb, yb: xb - 1e-3)
    with pytest.raises(attacks.AttackError, match=r"leaves \[0, 1\]"):
        attacks.apgd_robust_accuracy(model, x, y, norm="l2", eps=1.0, n_iter=2)


def test_caller_rng_and_model_mode_are_untouched(problem):
    model, x, y = problem
    model.train()
    state = torch.get_rng_state()
    attacks.apgd_robust_accuracy(model, x, y, norm="l2", eps=0.5, n_iter=2)
    assert torch.equal(state, torch.get_rng_state())
    assert model.training
    model.eval()


def test_bad_arguments(problem):
    model, x, y = problem
    with pytest.raises(InputError, match="norm"):
        attacks.apgd_robust_accuracy(model, x, y, norm="l1", eps=1.0)
    with pytest.raises(InputError, match="eps"):
        attacks.apgd_sweep(model, x, y, "l2", [0.5, -1.0])
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        attacks.apgd_robust_accuracy(model, torch.full((2, 1, 28, 28), 2.0), y[:2], eps=0.1)
    with pytest.raises(InputError, match="labels"):
        attacks.apgd_robust_accuracy(model, x, y[:5], eps=0.1)
