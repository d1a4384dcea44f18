"""Training: image conversion, config validation, TRADES semantics, repeatability, checkpoints and
early stopping. Everything runs on the CPU on a few hundred MNIST images (well under a minute)."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from nnmargin import datasets, models, train  # noqa: E402
from nnmargin._errors import InputError, InputTypeError  # noqa: E402
from nnmargin.training import loop  # noqa: E402
from nnmargin.training.augment import random_crop_flip  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --------------------------------------------------------------------------- fixtures and helpers

@pytest.fixture(scope="module")
def pair():
    """Digits 3 vs 5 from the embedded MNIST sample (~390 training images), labels 0/1."""
    s = datasets.load_sample()
    return datasets.pair_from_arrays(s.x_train, s.y_train, s.x_test, s.y_test, 3, 5)


class TinyNet(torch.nn.Module):
    """conv-BN-ReLU-linear: fast, and has batch norm so train/eval mode matters.
    Records the mode of each forward call."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, stride=2)
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4 * 13 * 13, 2)
        self.modes = []

    def forward(self, x):
        self.modes.append(self.training)
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


@pytest.fixture
def batch(pair):
    """(net in train mode, x, y), all float64: the KL at the random start is ~1e-7, and float32
    rounding would swamp the comparisons with hand-computed values."""
    x = train.to_tensor_images(pair.x_train[:16]).double()
    y = torch.as_tensor(pair.y_train[:16])
    torch.manual_seed(0)
    net = TinyNet().double()
    net(x)  # one train-mode pass so the BN running statistics are not the identity
    return net.train(), x, y


def kl_batchmean(clean_logits, adv_logits):
    """KLDiv(log_softmax(adv), softmax(clean)), batchmean, written out."""
    p = F.softmax(clean_logits, 1)
    return (p * (F.log_softmax(clean_logits, 1) - F.log_softmax(adv_logits, 1))).sum() / len(p)


def start_points(x, seed, count=1):
    gen = torch.Generator().manual_seed(seed)
    return [x + 0.001 * torch.randn(x.shape, generator=gen, dtype=x.dtype) for _ in range(count)]


def quick(method="standard", **overrides):
    values = dict(epochs=1, batch_size=32, attack_steps=2, lr_milestones=())
    return train.default_config("mnist", method, **{**values, **overrides})


def states_equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def without_seconds(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


# --------------------------------------------------------------------------- to_tensor_images

def test_uint8_grey_images_become_nchw_floats():
    x = np.arange(2 * 28 * 28).reshape(2, 28, 28).astype(np.uint8)
    t = train.to_tensor_images(x)
    assert t.shape == (2, 1, 28, 28) and t.dtype == torch.float32
    assert torch.equal(t[:, 0], torch.from_numpy(x).float() / 255)
    assert torch.equal(train.to_tensor_images(torch.from_numpy(x)), t)


def test_uint8_channels_last_images_are_transposed():
    x = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    t = train.to_tensor_images(x)
    assert t.shape == (3, 3, 32, 32)
    assert t[1, 2, 5, 7] == pytest.approx(x[1, 5, 7, 2] / 255)
    assert float(t.max()) <= 1.0


def test_float_images_in_unit_range_pass_through():
    x = torch.rand(2, 1, 28, 28)
    assert train.to_tensor_images(x) is x or train.to_tensor_images(x).data_ptr() == x.data_ptr()
    t = train.to_tensor_images(x.double().numpy())
    assert t.dtype == torch.float32 and torch.allclose(t, x)
    assert train.to_tensor_images(torch.rand(2, 28, 28)).shape == (2, 1, 28, 28)


@pytest.mark.parametrize("x,error,match", [
    (np.full((2, 28, 28), 1.5, np.float32), InputError, r"\[0, 1\]"),
    (-torch.rand(2, 1, 28, 28) - 0.1, InputError, r"\[0, 1\]"),
    (np.full((2, 28, 28), np.nan, np.float32), InputError, "NaN"),
    (np.zeros((2, 28, 28), np.int32), InputTypeError, "uint8"),
    (np.zeros((28, 28), np.uint8), InputError, "shape"),
    (np.zeros((2, 32, 32, 5), np.uint8), InputError, "C in"),
    (np.zeros((2, 32, 32, 3), np.float32), InputError, "channels-last"),
    (np.zeros((0, 28, 28), np.uint8), InputError, "empty"),
])
def test_bad_images_are_rejected(x, error, match):
    with pytest.raises(error, match=match):
        train.to_tensor_images(x)


def test_bad_labels_are_rejected():
    with pytest.raises(InputError, match="shape"):
        train.to_tensor_labels(np.zeros(3, np.int64), 4)
    with pytest.raises(InputTypeError, match="integers"):
        train.to_tensor_labels(np.zeros(4, np.float32), 4)
    with pytest.raises(InputError, match="non-negative"):
        train.to_tensor_labels(np.array([0, -1]), 2)


# --------------------------------------------------------------------------- configuration

def test_default_configs_per_dataset():
    mnist = train.default_config("mnist", "trades")
    assert (mnist.eps_linf, mnist.step_linf, mnist.attack_steps, mnist.lr) == (0.3, 0.01, 40, 0.01)
    assert mnist.beta == 1.0  # the TRADES MNIST script's value (see the config docs)
    generic = train.TrainConfig()
    assert (generic.method, generic.beta, generic.attack_steps, generic.momentum, generic.lr_decay,
            generic.early_stop_epochs, generic.val_fraction, generic.seed, generic.device) == \
        ("standard", 6.0, 10, 0.9, 0.1, 20, 0.1, 0, "cpu")
    assert dataclasses.replace(generic, beta=1.0, attack_steps=40, step_linf=0.01, step_l2=0.125,
                               method="trades", dataset="mnist") == mnist
    assert train.default_config("fmnist", "trades").eps_linf == 0.1
    cifar = train.default_config("cifar-10", "trades-l2linf", seed=3)
    assert (cifar.lr, cifar.weight_decay, cifar.beta, cifar.attack_steps) == (0.1, 5e-4, 6.0, 10)
    assert cifar.eps_linf == pytest.approx(8 / 255) and cifar.step_linf == pytest.approx(2 / 255)
    assert cifar.dataset == "cifar10" and cifar.seed == 3
    assert cifar.augment and not mnist.augment and cifar.lr_milestones == (74, 89)
    assert [cifar.lr_at(e) for e in (74, 75, 89, 90)] == pytest.approx([0.1, 0.01, 0.01, 0.001])


def test_numpy_scalars_are_stored_as_builtin_numbers():
    config = train.TrainConfig(epochs=np.int64(3), lr=np.float32(0.5), device=torch.device("cpu"))
    assert type(config.epochs) is int and type(config.lr) is float and config.device == "cpu"


def test_lr_schedule_decays_after_milestone_epochs():
    config = train.TrainConfig(lr=1.0, lr_milestones=[6, 8], lr_decay=0.1)
    assert config.lr_milestones == (6, 8)
    assert [config.lr_at(e) for e in (1, 6, 7, 8, 9, 10)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


def test_early_stop_trains_its_own_epoch_count():
    assert train.default_config("mnist", "early-stop").train_epochs == 20
    assert train.default_config("mnist", "standard").train_epochs == 10


@pytest.mark.parametrize("overrides,match", [
    (dict(method="adversarial"), "method"),
    (dict(eps_linf=-0.1), "eps_linf"),
    (dict(step_l2=float("nan")), "step_l2"),
    (dict(epochs=0), "epochs"),
    (dict(lr=0.0), "lr"),
    (dict(val_fraction=1.0), "val_fraction"),
    (dict(momentum=1.0), "momentum"),
    (dict(lr_milestones=(0, 5)), "lr_milestones"),
    (dict(limit=0), "limit"),
    (dict(device="gpu7"), "device"),
    (dict(augment="yes"), "augment"),
])
def test_bad_config_values_raise_value_error_naming_the_field(overrides, match):
    with pytest.raises(InputError, match=match):
        train.TrainConfig(**overrides)
    with pytest.raises(InputError, match=match):
        train.default_config("mnist", overrides.pop("method", "standard"), **overrides)


def test_default_config_rejects_unknown_dataset_and_field():
    with pytest.raises(InputError, match="unknown dataset"):
        train.default_config("svhn", "standard")
    with pytest.raises(InputTypeError, match="epoch_count"):
        train.default_config("mnist", "standard", epoch_count=3)


def test_config_is_revalidated_when_training_starts(pair):
    config = quick()
    config.eps_l2 = -1.0
    with pytest.raises(InputError, match="eps_l2"):
        train.train_model(TinyNet(), pair.x_train[:8], pair.y_train[:8], config)


# --------------------------------------------------------------------------- augmentation

def test_augmentation_without_padding_only_mirrors():
    x = torch.rand(16, 3, 8, 8)
    out = random_crop_flip(x, padding=0, generator=torch.Generator().manual_seed(0))
    same = [torch.equal(o, i) for o, i in zip(out, x)]
    mirrored = [torch.equal(o, i.flip(2)) for o, i in zip(out, x)]
    assert all(a or b for a, b in zip(same, mirrored)) and 0 < sum(mirrored) < 16


def test_augmentation_takes_a_window_of_the_padded_image():
    x = torch.rand(6, 3, 8, 8)
    out = random_crop_flip(x, padding=2, generator=torch.Generator().manual_seed(1))
    padded = F.pad(x, (2, 2, 2, 2))
    for o, p in zip(out, padded):
        windows = [p[:, r:r + 8, c:c + 8] for r in range(5) for c in range(5)]
        assert any(torch.equal(o, w) or torch.equal(o, w.flip(2)) for w in windows)
    again = random_crop_flip(x, padding=2, generator=torch.Generator().manual_seed(1))
    assert torch.equal(out, again)  # seeded: repeatable
    assert not torch.equal(out, x)


# --------------------------------------------------------------------------- TRADES

def test_trades_loss_with_zero_steps_matches_hand_computation(batch):
    net, x, y = batch
    net.modes.clear()
    loss, natural, robust = train.trades_loss(net, x, y, beta=2.0, eps=0.1, step=0.01, steps=0,
                                              generator=torch.Generator().manual_seed(7))
    assert net.training and net.modes[0] is False and all(net.modes[1:])  # attack eval, loss train
    (x_adv,) = start_points(x, 7)  # same seed -> same random start
    logits = net(x)
    expected_kl = kl_batchmean(logits, net(x_adv))
    assert robust.item() == pytest.approx(expected_kl.item(), rel=1e-5, abs=1e-9)
    assert natural.item() == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
    assert loss.item() == pytest.approx(natural.item() + 2.0 * robust.item(), rel=1e-6)
    # The documented library call gives the same value.
    kl_div = F.kl_div(F.log_softmax(net(x_adv), 1), F.softmax(logits, 1), reduction="batchmean")
    assert robust.item() == pytest.approx(kl_div.item(), rel=1e-5, abs=1e-9)


def test_trades_l2linf_averages_the_two_kl_terms(batch):
    net, x, y = batch
    loss, natural, robust = train.trades_l2linf_loss(
        net, x, y, beta=6.0, eps_linf=0.1, step_linf=0.01, eps_l2=1.0, step_l2=0.1, steps=0,
        generator=torch.Generator().manual_seed(3))
    start_linf, start_l2 = start_points(x, 3, count=2)  # l-inf attack draws its start first
    logits = net(x)
    expected = (kl_batchmean(logits, net(start_linf)) + kl_batchmean(logits, net(start_l2))) / 2
    assert robust.item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-9)
    assert loss.item() == pytest.approx(natural.item() + 6.0 * robust.item(), rel=1e-6)


def test_gradient_flows_through_the_clean_branch_of_the_kl_term(batch):
    net, x, y = batch
    x = x.clone().requires_grad_(True)
    _, _, robust = train.trades_loss(net, x, y, beta=6.0, eps=0.3, step=0.05, steps=2,
                                     generator=torch.Generator().manual_seed(0))
    # x_adv is a constant, so any gradient reaching x went through softmax(f(x)).
    (grad_x,) = torch.autograd.grad(robust, x)
    assert grad_x.abs().sum() > 0
    # And the parameter gradient differs from the one with the clean branch detached.
    x_adv = start_points(x.detach(), 0)[0]
    params = list(net.parameters())
    g_full = torch.autograd.grad(kl_batchmean(net(x), net(x_adv)), params)
    p = F.softmax(net(x), 1).detach()
    detached = F.kl_div(F.log_softmax(net(x_adv), 1), p, reduction="batchmean")
    g_detached = torch.autograd.grad(detached, params)
    assert not all(torch.allclose(a, b) for a, b in zip(g_full, g_detached))


@pytest.mark.parametrize("norm,eps,step", [("linf", 0.05, 0.02), ("l2", 0.5, 0.2)])
def test_attack_stays_in_ball_and_unit_box_and_raises_kl(batch, norm, eps, step):
    net, x, _ = batch
    net.modes.clear()
    start = train.trades_attack(net, x, eps=eps, step=step, steps=0, norm=norm,
                                generator=torch.Generator().manual_seed(1))
    x_adv = train.trades_attack(net, x, eps=eps, step=step, steps=6, norm=norm,
                                generator=torch.Generator().manual_seed(1))
    assert net.training and not any(net.modes)  # ran in eval mode, mode restored
    assert all(p.grad is None for p in net.parameters())  # no parameter gradients left behind
    assert not x_adv.requires_grad
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    delta = (x_adv - x).flatten(1)
    size = delta.abs().max(1).values if norm == "linf" else delta.norm(dim=1)
    assert float(size.max()) <= eps * (1 + 1e-5)
    with torch.no_grad():
        net.eval()
        clean = net(x)
        assert kl_batchmean(clean, net(x_adv)) > 10 * kl_batchmean(clean, net(start))
        net.train()


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_one_attack_step_matches_its_definition(batch, norm):
    net, x, _ = batch
    eps, step = (0.05, 0.02) if norm == "linf" else (0.5, 0.2)
    x_adv = train.trades_attack(net, x, eps=eps, step=step, steps=1, norm=norm,
                                generator=torch.Generator().manual_seed(5))
    net.eval()
    x0 = start_points(x, 5)[0].requires_grad_(True)
    kl = F.kl_div(F.log_softmax(net(x0), 1), F.softmax(net(x), 1).detach(), reduction="sum")
    (g,) = torch.autograd.grad(kl, x0)
    net.train()
    with torch.no_grad():
        if norm == "linf":
            expected = torch.min(torch.max(x0 + step * g.sign(), x - eps), x + eps)
        else:
            moved = x0 + step * g / g.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
            delta = moved - x
            delta = delta * (eps / delta.flatten(1).norm(dim=1)).clamp(max=1).view(-1, 1, 1, 1)
            expected = x + delta
    assert torch.allclose(x_adv, expected.clamp(0, 1), atol=1e-6)


@pytest.mark.parametrize("kwargs,match", [
    (dict(eps=-0.1), "eps"),
    (dict(step=float("inf")), "step"),
    (dict(steps=-1), "steps"),
    (dict(norm="l1"), "norm"),
    (dict(beta=-1.0), "beta"),
])
def test_bad_trades_arguments_raise_value_error(batch, kwargs, match):
    net, x, y = batch
    args = dict(beta=6.0, eps=0.1, step=0.01, steps=1, norm="linf")
    with pytest.raises(InputError, match=match):
        train.trades_loss(net, x, y, **{**args, **kwargs})


# --------------------------------------------------------------------------- training

def test_standard_training_reduces_the_loss_on_real_digits(pair):
    torch.manual_seed(0)
    model = models.small_cnn()
    before = F.cross_entropy(model.eval()(train.to_tensor_images(pair.x_train)),
                             torch.as_tensor(pair.y_train)).item()
    result = train.train_model(model, pair.x_train, pair.y_train, quick(epochs=2))
    after = F.cross_entropy(result.model(train.to_tensor_images(pair.x_train)),
                            torch.as_tensor(pair.y_train)).item()
    assert after < 0.5 * before
    assert result.history[1]["loss"] < result.history[0]["loss"]
    assert train.evaluate_accuracy(result.model, pair.x_test, pair.y_test) > 0.8
    assert not result.model.training and result.best_epoch is None
    h = result.history[0]
    assert set(h) == {"epoch", "loss", "natural_loss", "robust_loss", "train_acc", "val_acc", "lr", "seconds"}
    assert h["robust_loss"] is None and h["val_acc"] is None and h["loss"] == h["natural_loss"]


@pytest.mark.parametrize("method", ["trades", "trades-l2linf"])
def test_trades_methods_train_and_report_both_terms(pair, method):
    torch.manual_seed(0)
    config = quick(method, epochs=2, limit=96, beta=6.0)
    result = train.train_model(TinyNet(), pair.x_train, pair.y_train, config)
    for h in result.history:
        assert h["loss"] == pytest.approx(h["natural_loss"] + 6.0 * h["robust_loss"], rel=1e-4)
        assert h["robust_loss"] > 0 and 0 <= h["train_acc"] <= 1
    assert result.history[1]["loss"] < result.history[0]["loss"]


def test_same_seed_gives_identical_runs_and_other_seed_differs(pair):
    def run(seed):
        torch.manual_seed(123)  # same initial weights
        model = models.small_cnn()  # has dropout: its masks must be seeded too
        return train.train_model(model, pair.x_train, pair.y_train,
                                 quick("trades", limit=64, seed=seed, augment=True))

    a, b, c = run(0), run(0), run(1)
    assert states_equal(a.model.state_dict(), b.model.state_dict())
    assert without_seconds(a.history) == without_seconds(b.history)
    assert not states_equal(a.model.state_dict(), c.model.state_dict())


def test_checkpoint_round_trip(pair, tmp_path):
    torch.manual_seed(0)
    config = quick(limit=64, checkpoint_dir=tmp_path / "run")  # a Path is stored as str
    result = train.train_model(models.small_cnn(), pair.x_train, pair.y_train, config)
    loaded = train.load_checkpoint(tmp_path / "run" / "last.pt", "mnist")
    assert states_equal(loaded.model.state_dict(), result.model.state_dict())
    assert loaded.config == config and loaded.history == result.history
    assert not loaded.model.training
    x = train.to_tensor_images(pair.x_test[:8])
    assert torch.equal(loaded.model(x), result.model(x))
    # Explicit save under a new name, loaded through an alias of the dataset name.
    path = train.save_checkpoint(result, tmp_path / "copy" / "model.pt")
    assert states_equal(train.load_checkpoint(path, "MNIST").model.state_dict(), result.model.state_dict())


def test_load_checkpoint_rejects_wrong_dataset_and_foreign_files(pair, tmp_path):
    result = train.TrainResult(models.small_cnn(), train.default_config("mnist", "standard"))
    path = train.save_checkpoint(result, tmp_path / "m.pt")
    with pytest.raises(InputError, match="trained on 'mnist'"):
        train.load_checkpoint(path, "fashion-mnist")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="not an nnmargin"):
        train.load_checkpoint(tmp_path / "other.pt", "mnist")


def test_early_stop_restores_the_best_validation_epoch(pair, tmp_path, monkeypatch):
    scripted = iter([0.5, 0.9, 0.9, 0.7])  # best at epoch 2; the tie at 3 keeps the earlier one
    monkeypatch.setattr(loop, "evaluate_accuracy", lambda *args, **kwargs: next(scripted))
    torch.manual_seed(0)
    config = quick("early-stop", early_stop_epochs=4, limit=96, checkpoint_dir=str(tmp_path))
    result = train.train_model(models.small_cnn(), pair.x_train, pair.y_train, config)
    assert [h["val_acc"] for h in result.history] == [0.5, 0.9, 0.9, 0.7]
    assert result.best_epoch == 2
    best = train.load_checkpoint(tmp_path / "best.pt", "mnist")
    last = train.load_checkpoint(tmp_path / "last.pt", "mnist")
    assert best.best_epoch == 2 and len(best.history) == 2 and len(last.history) == 4
    assert states_equal(result.model.state_dict(), best.model.state_dict())
    assert not states_equal(result.model.state_dict(), last.model.state_dict())


def test_early_stop_validation_accuracy_is_that_of_the_returned_model(pair):
    torch.manual_seed(0)
    config = quick("early-stop", early_stop_epochs=2, limit=200, val_fraction=0.25)
    result = train.train_model(models.small_cnn(), pair.x_train, pair.y_train, config)
    _, val_idx = train.validation_split(200, 0.25, config.seed)
    assert len(val_idx) == 50
    x_val, y_val = pair.x_train[:200][val_idx.numpy()], pair.y_train[:200][val_idx.numpy()]
    best = max(h["val_acc"] for h in result.history)
    assert result.history[result.best_epoch - 1]["val_acc"] == best
    assert train.evaluate_accuracy(result.model, x_val, y_val) == best


def test_labels_beyond_the_model_outputs_are_rejected(pair):
    with pytest.raises(InputError, match="below the model's 2 outputs"):
        train.train_model(TinyNet(), pair.x_train[:8], np.arange(8), quick())


def test_diverging_loss_stops_training(pair):
    class NanNet(TinyNet):
        def forward(self, x):
            return super().forward(x) * float("nan")

    with pytest.raises(FloatingPointError, match="epoch 1, batch 1"):
        train.train_model(NanNet(), pair.x_train[:8], pair.y_train[:8], quick())


def test_evaluate_accuracy_counts_argmax_hits():
    class AlwaysOne(torch.nn.Module):
        def forward(self, x):
            return torch.tensor([0.0, 1.0]).expand(len(x), 2)

    y = np.array([1, 0, 1, 1, 0])
    assert train.evaluate_accuracy(AlwaysOne(), np.zeros((5, 28, 28), np.uint8), y, batch_size=2) == 0.6


def test_progress_prints_one_line_per_epoch(pair, capsys):
    torch.manual_seed(0)
    train.train_model(TinyNet(), pair.x_train, pair.y_train, quick("trades", epochs=2, limit=32),
                      progress=True)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("epoch 2/2") and "rob" in lines[1]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_runs_on_cuda(pair):
    torch.manual_seed(0)
    result = train.train_model(models.small_cnn(), pair.x_train, pair.y_train,
                               quick("trades-l2linf", limit=64, device="cuda"))
    assert next(result.model.parameters()).is_cuda
    assert math.isfinite(result.history[0]["loss"])
