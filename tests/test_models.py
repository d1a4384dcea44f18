"""Architectures compared against nearest neighbours: shapes, structure and argument checks."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from nnmargin import InputError, models  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("in_channels,num_classes", [(1, 2), (3, 10)])
def test_small_cnn_maps_28x28_batches_to_logits(in_channels, num_classes):
    torch.manual_seed(0)
    model = models.small_cnn(in_channels=in_channels, num_classes=num_classes)
    out = model(torch.rand(4, in_channels, 28, 28))
    assert out.shape == (4, num_classes) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_small_cnn_layer_plan():
    model = models.small_cnn()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [c.out_channels for c in convs] == [32, 32, 64, 64]
    assert [(l.in_features, l.out_features) for l in linears] == [(1024, 200), (200, 200), (200, 2)]


def test_small_cnn_dropout_only_acts_in_train_mode():
    torch.manual_seed(0)
    x = torch.rand(8, 1, 28, 28)
    model = models.small_cnn()
    assert [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)] == [0.5]
    model.train()
    with torch.no_grad():
        first, second = model(x), model(x)
    assert not torch.equal(first, second), "dropout must draw a new mask per forward pass in train mode"
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    deterministic = models.small_cnn(dropout=0.0).train()
    with torch.no_grad():
        assert torch.equal(deterministic(x), deterministic(x))


def test_small_cnn_rejects_other_image_sizes():
    with pytest.raises(InputError, match="28, 28"):
        models.small_cnn()(torch.rand(2, 1, 32, 32))


def test_preact_resnet18_maps_cifar_batches_to_logits():
    torch.manual_seed(0)
    model = models.preact_resnet18(num_classes=2)
    out = model(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 2) and torch.isfinite(out).all()
    assert models.preact_resnet18(num_classes=10).eval()(torch.rand(1, 3, 32, 32)).shape == (1, 10)


def test_preact_resnet18_structure():
    model = models.preact_resnet18()
    blocks = [m for m in model.modules() if isinstance(m, models.PreActBlock)]
    assert len(blocks) == 8  # ResNet-18: 4 stages x 2 basic blocks
    assert [b.conv2.out_channels for b in blocks] == [64, 64, 128, 128, 256, 256, 512, 512]
    # 1x1 projection shortcuts exactly where the resolution/width changes (stages 2-4, first block).
    assert [b.shortcut is not None for b in blocks] == [False, False, True, False, True, False, True, False]
    n_params = sum(p.numel() for p in model.parameters())
    assert 11.0e6 < n_params < 11.3e6


def test_preact_block_applies_bn_relu_before_each_conv():
    torch.manual_seed(0)
    block = models.PreActBlock(4, 4).eval()
    x = torch.randn(2, 4, 8, 8)
    expected = x + block.conv2(torch.relu(block.bn2(block.conv1(torch.relu(block.bn1(x))))))
    assert torch.allclose(block(x), expected)


def test_model_for_picks_architecture_by_dataset():
    assert isinstance(models.model_for("mnist"), models.SmallCNN)
    assert isinstance(models.model_for("fashion-mnist"), models.SmallCNN)
    assert isinstance(models.model_for("fmnist", num_classes=10), models.SmallCNN)
    cifar = models.model_for("cifar10", num_classes=10)
    assert isinstance(cifar, models.PreActResNet18) and cifar.linear.out_features == 10
    assert cifar.stem.in_channels == 3


@pytest.mark.parametrize("call,match", [
    (lambda: models.model_for("imagenet"), "unknown dataset"),
    (lambda: models.small_cnn(num_classes=0), "num_classes"),
    (lambda: models.preact_resnet18(in_channels=2.5), "in_channels"),
    (lambda: models.small_cnn(dropout=1.0), "dropout"),
])
def test_bad_arguments_raise_value_error(call, match):
    with pytest.raises(InputError, match=match):
        call()
