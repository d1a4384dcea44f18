"""Feature-space certificates: certify(..., lipschitz=L) and the sound Lipschitz bounds of nnmargin.lipschitz.

The bound tests search for pairs that break the bound: random pairs, and pairs optimised by gradient
ascent on ||f(x) - f(x')|| / ||x - x'||. The search is checked to be strong enough to catch a bound
that is too small (a planted bug), so a passing test means something."""
from __future__ import annotations

import math

import numpy as np
import pytest

import nnmargin
from nnmargin import InputError

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from nnmargin import lipschitz as lip  # noqa: E402
from nnmargin.lipschitz import bounds as lip_bounds  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --------------------------------------------------------------------------- certify(..., lipschitz=L)

@pytest.fixture(scope="module")
def clusters():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 6)) * 3
    y_train = np.repeat(np.arange(3), 40)
    x_train = centres[y_train] + rng.normal(size=(120, 6))
    y_test = np.repeat(np.arange(3), 10)
    x_test = centres[y_test] + rng.normal(size=(30, 6))
    return x_train, y_train, x_test, y_test


@pytest.mark.parametrize("bound", ["margin", "bisector", "exact"])
@pytest.mark.parametrize("L", [1.0, 0.37, 3.0])
def test_lipschitz_radius_is_the_feature_radius_over_L_rounded_down(clusters, bound, L):
    x_train, y_train, x_test, y_test = clusters
    plain = nnmargin.certify(x_test, y_test, (x_train, y_train), bound=bound)
    feat = nnmargin.certify(x_test, y_test, (x_train, y_train), bound=bound, lipschitz=L)
    assert (plain.radius > 0).sum() >= 10  # the comparison is not vacuous
    assert np.all(feat.radius <= plain.radius / L)
    assert np.all(feat.radius >= (plain.radius / L) * (1 - 4 * 2.0**-53))
    assert np.array_equal(feat.correct, plain.correct) and np.array_equal(feat.dist_other, plain.dist_other)
    assert feat.norm == "l2" and feat.info["lipschitz"] == L and feat.adversarial is None
    assert getattr(feat, "radius_upper", None) is None  # a feature-space upper end says nothing about inputs
    assert np.all(feat.robust_accuracy([0.1, 0.5]) <= plain.robust_accuracy([0.1 * L, 0.5 * L]) + 1e-12)


@pytest.mark.parametrize("bound", ["margin", "bisector"])
def test_lipschitz_uses_the_feature_l2_radius_whatever_the_input_norm(clusters, bound):
    """norm names the input norm of L; the feature radius stays the l2 one (not converted to linf)."""
    x_train, y_train, x_test, y_test = clusters
    l2 = nnmargin.certify(x_test, y_test, (x_train, y_train), bound=bound, norm="l2")
    linf = nnmargin.certify(x_test, y_test, (x_train, y_train), bound=bound, norm="linf", lipschitz=2.0)
    assert linf.norm == "linf"
    assert np.all(linf.radius <= l2.radius / 2.0) and np.all(linf.radius >= l2.radius / 2.0 * (1 - 1e-15))


@pytest.mark.parametrize("value, error", [(0, InputError), (-1.0, InputError), (math.inf, InputError),
                                          (math.nan, InputError), ("2", TypeError), (True, TypeError),
                                          ([1.0], TypeError)])
def test_bad_lipschitz_values(clusters, value, error):
    x_train, y_train, x_test, y_test = clusters
    with pytest.raises(error, match="lipschitz"):
        nnmargin.certify(x_test, y_test, (x_train, y_train), lipschitz=value)


def test_lipschitz_needs_l2_features_and_no_box(clusters):
    x_train, y_train, x_test, y_test = clusters
    with pytest.raises(InputError, match="metric='l2'"):
        nnmargin.certify(x_test, y_test, (x_train, y_train), metric="linf", lipschitz=1.0)
    with pytest.raises(InputError, match="box"):
        nnmargin.certify(x_test, y_test, (x_train, y_train), bound="exact", box=(-10, 10), lipschitz=1.0)


# --------------------------------------------------------------------------- exact norms to compare with

def _dense_matrix(module: nn.Module, shape) -> np.ndarray:
    """The matrix of a linear module (bias removed) on inputs of ``shape``, in float64."""
    module = module.double()
    n = int(np.prod(shape))
    basis = torch.eye(n, dtype=torch.float64).reshape((n,) + tuple(shape))
    with torch.no_grad():
        zero = module(torch.zeros((1,) + tuple(shape), dtype=torch.float64))
        return (module(basis) - zero).reshape(n, -1).numpy()


CONVS = [  # (in, out, kernel, stride, padding, dilation, groups, H, W)
    (1, 4, 3, 1, 1, 1, 1, 8, 8), (2, 4, 3, 2, 1, 1, 1, 9, 9), (4, 4, 3, 1, 0, 2, 2, 10, 10),
    (1, 8, 8, 2, 3, 1, 1, 28, 28), (3, 4, 5, 3, 2, 1, 1, 12, 11), (2, 2, 4, 2, 0, 1, 1, 7, 7),
    (2, 3, (3, 1), (1, 2), (1, 0), 1, 1, 6, 9), (3, 5, 6, 2, 3, 1, 1, 14, 14),
]


@pytest.mark.parametrize("spec", CONVS, ids=[str(c) for c in CONVS])
def test_conv_bounds_are_above_the_exact_norm_and_close_to_it(spec):
    cin, cout, k, s, p, d, g, h, w = spec
    torch.manual_seed(1)
    conv = nn.Conv2d(cin, cout, k, stride=s, padding=p, dilation=d, groups=g)
    exact = np.linalg.norm(_dense_matrix(conv, (cin, h, w)), 2)
    circular = lip.conv2d_norm_bound(conv.weight.detach().numpy(), (h, w), conv.stride, conv.padding, conv.dilation,
                                     g, dense_limit=0)
    assert exact <= circular <= 1.4 * exact
    if (d, g) == (1, 1):
        assert circular <= 1.2 * exact   # the circular embedding is tight up to border effects
    bound = lip.lipschitz_bound(nn.Sequential(conv), input_shape=(cin, h, w))  # small: the explicit matrix
    assert exact <= bound <= exact * (1 + 1e-6)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("padding", [0, 2, "same", "valid"])
@pytest.mark.parametrize("stride, dilation, groups", [(1, 1, 1), (2, 1, 1), (1, 2, 2), (3, 1, 2)])
def test_conv_matrix_is_the_convolution(padding, stride, dilation, groups):
    if padding == "same" and stride != 1:
        pytest.skip("torch allows padding='same' with stride 1 only")
    torch.manual_seed(11)
    conv = nn.Conv2d(4, 6, (3, 4), stride=stride, padding=padding, dilation=dilation, groups=groups)
    kernel = lip_bounds._dilated(conv.weight.detach().double().numpy(), conv.dilation)
    ours = lip.conv2d_matrix(kernel, (9, 10), conv.stride, lip_bounds._conv_padding(conv), groups)
    np.testing.assert_array_equal(ours, _dense_matrix(conv, (4, 9, 10)).T)


def test_conv_bound_is_exact_for_a_circulant_case():
    """A 1x1 convolution is the channel matrix at every pixel: its norm is that matrix's norm."""
    torch.manual_seed(2)
    conv = nn.Conv2d(5, 3, 1)
    bound = lip.lipschitz_bound(nn.Sequential(conv), input_shape=(5, 4, 4))
    sigma = np.linalg.norm(conv.weight.detach().double().numpy()[:, :, 0, 0], 2)
    assert sigma <= bound <= sigma * (1 + 1e-9)


def test_dense_bound():
    rng = np.random.default_rng(3)
    w = rng.normal(size=(30, 50))
    sigma = np.linalg.norm(w, 2)
    assert sigma <= lip.dense_norm_bound(w) <= sigma * (1 + 1e-8)
    assert lip.dense_norm_bound(np.zeros((0, 3))) == 0.0


@pytest.mark.parametrize("pool, shape", [(nn.AvgPool2d(2), (2, 6, 6)), (nn.AvgPool2d(3, 1), (1, 7, 7)),
                                         (nn.AvgPool2d(3, 2, padding=1), (1, 8, 8))])
def test_avgpool_bound_is_above_its_exact_norm(pool, shape):
    exact = np.linalg.norm(_dense_matrix(pool, shape), 2)
    assert exact <= lip.lipschitz_bound(nn.Sequential(pool), input_shape=shape) <= 1.5 * exact + 1e-12


# --------------------------------------------------------------------------- searching for violations

def _ratio(f, x, x2):
    num = (f(x) - f(x2)).flatten(1).norm(dim=1)
    return num / (x - x2).flatten(1).norm(dim=1)


def worst_ratio(f, shape, pairs: int = 64, steps: int = 150, seed: int = 0) -> float:
    """The largest ||f(x) - f(x')|| / ||x - x'|| found: random pairs (near and far), then each
    pair moved by Adam ascent on the ratio (float64)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand((pairs,) + tuple(shape), generator=gen, dtype=torch.float64)
    scale = torch.logspace(-3, 0, pairs, dtype=torch.float64).reshape((-1,) + (1,) * len(shape))
    x2 = x + scale * torch.randn(x.shape, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        best = float(_ratio(f, x, x2).max())
    x, x2 = x.clone().requires_grad_(True), x2.clone().requires_grad_(True)
    opt = torch.optim.Adam([x, x2], lr=0.01)
    for _ in range(steps):
        r = _ratio(f, x, x2)
        best = max(best, float(r.detach().max()))
        opt.zero_grad()
        (-r.sum()).backward()
        opt.step()
    with torch.no_grad():
        return max(best, float(_ratio(f, x, x2).max()))


def _tiny_encoder(seed=0, shape=(1, 28, 28)):
    torch.manual_seed(seed)
    enc = lip.freeze(lip.lipschitz_encoder(shape, widths=(4, 6, 6), latent_dim=5))
    for m in enc.modules():  # train-like weights: not the normalised ones alone
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            with torch.no_grad():
                m.weight.mul_(1 + torch.rand(()) * 2)
    return enc.double()


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_encoder_bounds_are_never_exceeded(shape):
    enc = _tiny_encoder(shape=shape)
    bounds = {b.name: b.cumulative for b in lip.layer_bounds(enc)}
    layers = dict(enc.named_children())
    for layer in lip.ENCODER_LAYERS:
        prefix = nn.Sequential(*[m for name, m in layers.items()][: list(layers).index(layer) + 1])
        found = worst_ratio(prefix, shape, pairs=16, steps=60)
        assert 0 < found <= bounds[layer], layer


def test_single_conv_ascent_reaches_the_bound():
    """On a linear layer the ascent finds (nearly) the operator norm: the search is strong."""
    torch.manual_seed(4)
    conv = nn.Sequential(nn.Conv2d(2, 4, 4, stride=2, padding=1)).double()
    bound = lip.lipschitz_bound(conv, input_shape=(2, 10, 10))
    found = worst_ratio(conv, (2, 10, 10), pairs=8, steps=300)
    assert 0.9 * bound <= found <= bound


def test_planted_bug_a_too_small_conv_bound_is_caught(monkeypatch):
    """A bound that is 15 % too small (planted) is exceeded by the pairs the ascent finds."""
    torch.manual_seed(4)
    conv = nn.Sequential(nn.Conv2d(2, 4, 4, stride=2, padding=1)).double()
    real = lip_bounds.conv2d_norm_bound
    monkeypatch.setattr(lip_bounds, "conv2d_norm_bound", lambda *a, **k: 0.85 * real(*a, **k))
    planted = lip.lipschitz_bound(conv, input_shape=(2, 10, 10))
    assert worst_ratio(conv, (2, 10, 10), pairs=8, steps=300) > planted


def test_planted_bug_the_reshaped_kernel_norm_is_not_a_conv_bound():
    """||W reshaped to (out, in*k*k)||_2 -- a common mistake -- is exceeded; the real bound is not."""
    torch.manual_seed(5)
    conv = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1)).double()
    wrong = np.linalg.norm(conv[0].weight.detach().numpy().reshape(2, -1), 2)
    found = worst_ratio(conv, (1, 8, 8), pairs=8, steps=300)
    assert found > wrong
    assert found <= lip.lipschitz_bound(conv, input_shape=(1, 8, 8))


@pytest.mark.parametrize("layer, shape", [(nn.MaxPool2d(2), (2, 6, 6)), (nn.MaxPool2d(3, 1), (1, 6, 6)),
                                          (nn.LeakyReLU(-1.5), (7,)), (nn.Sigmoid(), (5,)), (nn.Tanh(), (5,))])
def test_pooling_and_activation_bounds_are_never_exceeded(layer, shape):
    bound = lip.lipschitz_bound(nn.Sequential(layer), input_shape=shape)
    assert worst_ratio(nn.Sequential(layer), shape, pairs=16, steps=100) <= bound


def test_overlapping_maxpool_needs_more_than_one():
    """MaxPool2d(3, stride 1) moves one pixel into 9 windows: a ratio above 1 is reachable."""
    x = torch.zeros(1, 1, 5, 5, dtype=torch.float64)
    x2 = x.clone()
    x2[0, 0, 2, 2] = 1.0
    pool = nn.MaxPool2d(3, 1)
    ratio = float(_ratio(pool, x2, x))
    assert ratio == pytest.approx(3.0) and ratio <= lip.lipschitz_bound(nn.Sequential(pool), input_shape=(1, 5, 5))


# --------------------------------------------------------------------------- layer_bounds API

def test_layer_bounds_names_shapes_and_products():
    enc = _tiny_encoder()
    bounds = lip.layer_bounds(enc)
    assert [b.name for b in bounds] == ["conv1", "relu1", "conv2", "relu2", "conv3", "relu3", "flatten", "bottleneck"]
    assert bounds[1].output_shape == (4, 14, 14) and bounds[-1].output_shape == (5,)
    running = 1.0
    for b in bounds:
        running *= b.bound
        assert b.cumulative >= running * (1 - 1e-12)
        assert b.cumulative <= running * (1 + 1e-12)
    assert lip.lipschitz_bound(enc) == bounds[-1].cumulative
    assert lip.lipschitz_bound(enc, up_to="relu2") == bounds[3].cumulative


def test_top_level_names():
    assert nnmargin.features is lip.features and nnmargin.lipschitz_bound is lip.lipschitz_bound
    assert set(lip.__all__) <= set(dir(lip))


def test_nested_sequential_names():
    model = nn.Sequential(nn.Sequential(nn.Linear(3, 4), nn.ReLU()), nn.Linear(4, 2))
    assert [b.name for b in lip.layer_bounds(model, input_shape=(3,))] == ["0.0", "0.1", "1"]


@pytest.mark.parametrize("model, shape, message", [
    (nn.Sequential(nn.BatchNorm1d(3)), (3,), "not supported"),
    (nn.Sequential(nn.GELU()), (3,), "not supported"),
    (nn.Linear(3, 2), (3,), "nn.Sequential"),
    (nn.Sequential(nn.Conv2d(1, 1, 3)), None, "input_shape"),
    (nn.Sequential(nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect")), (1, 5, 5), "padding_mode"),
    (nn.Sequential(nn.AvgPool2d(2, ceil_mode=True)), (1, 5, 5), "AvgPool2d"),
    (nn.Sequential(nn.Linear(3, 2)), (4,), "does not accept"),
])
def test_unsupported_models_raise_input_error(model, shape, message):
    with pytest.raises(InputError, match=message):
        lip.layer_bounds(model, input_shape=shape)


def test_parametrized_weights_must_be_frozen_first():
    enc = lip.lipschitz_encoder(widths=(2, 2, 2), latent_dim=3)
    with pytest.raises(InputError, match="freeze"):
        lip.layer_bounds(enc)
    with pytest.raises(InputError, match="up_to"):
        lip.lipschitz_bound(lip.freeze(enc), up_to="conv9")


@pytest.mark.parametrize("normalisation", ["operator", "l2nnn"])
def test_freeze_keeps_the_function(normalisation):
    torch.manual_seed(6)
    enc = lip.lipschitz_encoder(widths=(3, 4, 4), latent_dim=5, normalisation=normalisation)
    enc.train()
    x = torch.rand(3, 1, 28, 28)
    for _ in range(3):
        enc(x)  # power-iteration updates in training mode
    enc.eval()
    frozen = lip.freeze(enc)
    with torch.no_grad():
        assert torch.allclose(frozen(x), enc(x), rtol=1e-5, atol=1e-6)
    assert not any(hasattr(m, "parametrizations") for m in frozen.modules())


def test_l2nnn_normalisation_bounds_each_layer_by_one():
    """The paper's normalisation makes each layer at most 1-Lipschitz; the sound bound confirms it."""
    torch.manual_seed(7)
    enc = lip.freeze(lip.lipschitz_encoder(widths=(4, 6, 6), latent_dim=5, normalisation="l2nnn"))
    assert all(b.bound <= 1.0 + 1e-6 for b in lip.layer_bounds(enc))


# --------------------------------------------------------------------------- features()

def test_features_by_layer_name_and_input_conversion():
    enc = _tiny_encoder().float()
    x = np.random.default_rng(8).integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    out = lip.features(enc, x, "relu2", batch_size=3)
    assert out.shape == (7, 6 * 8 * 8) and out.dtype == np.float64
    assert next(enc.parameters()).dtype == torch.float32  # the caller's model is left as it was
    with torch.no_grad():
        ref = enc.double()[:4](torch.from_numpy(x).double().unsqueeze(1) / 255.0).flatten(1).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    last = lip.features(enc, torch.from_numpy(x).double().unsqueeze(1) / 255.0, dtype="float32")
    assert last.shape == (7, 5) and last.dtype == np.float32


def test_features_of_a_model_inside_a_larger_one():
    torch.manual_seed(9)
    ae = lip.LipschitzAutoencoder(widths=(2, 3, 3), latent_dim=4, decoder_widths=(2, 2)).eval()
    x = np.zeros((2, 28, 28), dtype=np.uint8)
    assert lip.features(ae, x, "encoder.bottleneck").shape == (2, 4)
    with pytest.raises(InputError, match="layer"):
        lip.features(ae, x)  # the model returns a tuple: name the layer
    with pytest.raises(InputError, match="not a module"):
        lip.features(ae, x, "encoder.relu9")


@pytest.mark.parametrize("kwargs, message", [({"dtype": "float16"}, "dtype"), ({"batch_size": 0}, "batch_size")])
def test_features_bad_options(kwargs, message):
    with pytest.raises(InputError, match=message):
        lip.features(nn.Sequential(nn.Flatten()), np.zeros((1, 2, 2), np.uint8), **kwargs)


def test_features_rejects_bad_inputs():
    with pytest.raises(TypeError):
        lip.features(nn.Sequential(nn.Flatten()), np.zeros((1, 2, 2), np.int32))
    with pytest.raises(InputError, match="NaN"):
        lip.features(nn.Sequential(nn.Flatten()), np.full((1, 2, 2), np.nan))


# --------------------------------------------------------------------------- the loss and training

def test_separation_term_by_hand():
    z = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0], [5.0, 5.0]])
    y = torch.tensor([0, 1, 0, 0])
    # point 0: nearest other label is point 1 at d^2 = 1; point 2: point 1 at d^2 = 10 -> capped at 4;
    # point 1: nearest of label 0 is point 0 at 1; point 3: point 1 at 16 + 25 -> 4
    assert lip.separation_term(z, y, 4.0).tolist() == [1.0, 1.0, 4.0, 4.0]
    assert lip.separation_term(z, torch.zeros(4, dtype=torch.long), 4.0).tolist() == [4.0] * 4  # no other label


def test_train_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(10)
    x = rng.integers(0, 256, size=(40, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 3, size=40)
    config = lip.AutoencoderConfig(widths=(2, 3, 3), latent_dim=4, decoder_widths=(2, 2), epochs=2, batch_size=16)
    lines = []
    result = lip.train_autoencoder(x, y, config, x[:8], y[:8], log=lines.append)
    assert len(result.history) == 2 and len(lines) == 2 and result.best_epoch in (1, 2)
    assert all(np.isfinite(row["loss"]) and np.isfinite(row["val_loss"]) for row in result.history)
    path = lip.save_autoencoder(result, tmp_path / "ae.pt")
    again = lip.load_autoencoder(path)
    assert again.config == result.config
    np.testing.assert_array_equal(lip.features(again.model, x[:4], "encoder.bottleneck"),
                                  lip.features(result.model, x[:4], "encoder.bottleneck"))
    with pytest.raises(InputError, match="not an nnmargin"):
        torch.save({"format": "other"}, tmp_path / "bad.pt")
        lip.load_autoencoder(tmp_path / "bad.pt")


@pytest.mark.parametrize("kwargs", [{"epochs": 0}, {"batch_size": 1}, {"alpha": -1.0}, {"lr": 0.0},
                                    {"widths": (1, 2)}, {"input_shape": (1, 30, 30)}, {"normalisation": "x"}])
def test_bad_autoencoder_config(kwargs):
    with pytest.raises(InputError):
        lip.AutoencoderConfig(**kwargs).build()


def test_lipschitz_command_on_the_sample(tmp_path, capsys):
    from nnmargin.cli import main
    out, md, ckpt = tmp_path / "r.json", tmp_path / "r.md", tmp_path / "ae.pt"
    argv = ["lipschitz", "--dataset", "sample", "--epochs", "1", "--widths", "2", "3", "3", "--latent-dim", "4",
            "--decoder-widths", "2", "2", "--train-limit", "300", "--limit", "30", "--exact-limit", "5",
            "--layers", "input", "relu1", "bottleneck", "--checkpoint", str(ckpt), "--out", str(out),
            "--markdown", str(md), "--quiet"]
    assert main(argv) == 0
    import json
    report = json.loads(out.read_text())
    assert report["model_source"] == "trained" and ckpt.exists()
    rows = {(r["layer"], r["bound"]): r for r in report["rows"]}
    assert set(rows) == {(layer, b) for layer in ("input", "relu1", "bottleneck") for b in ("margin", "bisector", "exact")}
    assert rows[("relu1", "exact")]["n"] == 5 and rows[("relu1", "margin")]["n"] == 30
    for layer in ("relu1", "bottleneck"):
        assert rows[(layer, "margin")]["lipschitz"] == pytest.approx(
            {b["name"]: b["cumulative"] for b in report["layer_bounds"]}[layer])
        cert = [rows[(layer, b)]["certified"]["0.5"] for b in ("margin", "bisector")]
        assert cert[0] <= cert[1]  # bisector is never below the margin bound
    assert "## exact bound (n = 5 test points)" in md.read_text()
    assert main(argv[:-1]) == 0  # second run loads the checkpoint, and prints its table
    assert "relu1" in capsys.readouterr().out
    assert json.loads(out.read_text())["model_source"] == "loaded"
