"""The neural networks that the nearest-neighbour certificates are compared against.

Every model follows the RobustBench convention: input is a float tensor of shape ``(N, C, H, W)``
with pixel intensities in ``[0, 1]`` (no mean/std normalisation is expected from the caller, and
none is applied inside, as in the TRADES reference training), output is raw logits of shape
``(N, num_classes)``.

* :func:`small_cnn` -- 4 convolutions + 3 fully connected layers for 28x28 images (MNIST,
  Fashion-MNIST); the layer plan is the MNIST network of Carlini & Wagner (2017) that TRADES
  (Zhang et al. 2019) also trains on MNIST.
* :func:`preact_resnet18` -- ResNet-18 with pre-activation residual units ("identity mappings",
  He et al. 2016) for 32x32 RGB images (CIFAR-10), the adversarial-training baseline of Rice et
  al. (2020).
* :func:`model_for` -- the model the experiments use for a dataset name.
"""
from __future__ import annotations

import torch
from torch import nn

from ._errors import InputError
from .datasets import canonical_name

__all__ = ["SmallCNN", "PreActBlock", "PreActResNet18", "small_cnn", "preact_resnet18", "model_for"]


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return value


class SmallCNN(nn.Module):
    """conv32-conv32-pool-conv64-conv64-pool-fc200-fc200-fc(num_classes), ReLU activations.

    Input ``(N, in_channels, 28, 28)`` in [0, 1]; output logits ``(N, num_classes)``.
    Convolutions are 3x3 without padding, so the feature map shrinks 28 -> 26 -> 24 -> 12 ->
    10 -> 8 -> 4 and the classifier sees 64 * 4 * 4 = 1024 features. Weights start from He
    (Kaiming) normal initialisation, biases from zero.
    """

    image_size = 28

    def __init__(self, in_channels: int = 1, num_classes: int = 2, dropout: float = 0.5):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise InputError(f"dropout must be in [0, 1), got {dropout!r}")
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3), nn.ReLU(),
            nn.Conv2d(32, 32, 3), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(),
            nn.Conv2d(64, 64, 3), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, 200), nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(200, 200), nn.ReLU(),
            nn.Linear(200, num_classes),
        )
        self._init_weights()

    def _init_weights(self) -> None:
        # He initialisation for the ReLU layers. PyTorch's default (uniform, gain for a leaky ReLU
        # of slope sqrt(5)) shrinks activations by about sqrt(3) per layer, so after six layers
        # the logits start near zero and SGD sits on the log(2) plateau for many steps.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The flattened size is fixed by the 28x28 input; say so rather than fail in a matmul.
        if x.dim() != 4 or tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            raise InputError(f"SmallCNN expects input (N, C, 28, 28), got {tuple(x.shape)}")
        return self.classifier(self.features(x))


class PreActBlock(nn.Module):
    """Pre-activation basic residual unit: ``x + conv(relu(bn(conv(relu(bn(x))))))``.

    When the unit changes the resolution (``stride`` 2) or the width, the shortcut is a 1x1
    convolution applied to the pre-activated input ``relu(bn(x))`` (He et al. 2016, identity
    mappings); otherwise the shortcut is the identity, so the signal path stays clean.
    """

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.shortcut = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = torch.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(pre)
        out = self.conv1(pre)
        out = self.conv2(torch.relu(self.bn2(out)))
        return out + skip


class PreActResNet18(nn.Module):
    """PreAct ResNet-18: 3x3 conv stem (64), four stages of two :class:`PreActBlock` each
    (64, 128, 256, 512 channels; stride 1, 2, 2, 2), final BN-ReLU, global average pool, linear.

    Input ``(N, in_channels, 32, 32)`` in [0, 1]; output logits ``(N, num_classes)``. About
    11.2 M parameters. Global pooling is adaptive, so other input sizes also run.
    """

    def __init__(self, num_classes: int = 2, in_channels: int = 3):
        super().__init__()
        # No BN/ReLU after the stem: the first block pre-activates its input itself.
        self.stem = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        stages, in_planes = [], 64
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stages += [PreActBlock(in_planes, planes, stride), PreActBlock(planes, planes, 1)]
            in_planes = planes
        self.stages = nn.Sequential(*stages)
        # Blocks end in an addition, not an activation, so the head normalises and activates.
        self.bn = nn.BatchNorm2d(512)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stages(self.stem(x))
        out = self.pool(torch.relu(self.bn(out)))
        return self.linear(torch.flatten(out, 1))


def small_cnn(in_channels: int = 1, num_classes: int = 2, dropout: float = 0.5) -> nn.Module:
    """:class:`SmallCNN` for 28x28 inputs (MNIST / Fashion-MNIST).

    ``dropout`` is the rate before the second fully connected layer, 0.5 as in the reference
    network; pass 0 for a deterministic train-mode forward pass.
    """
    return SmallCNN(_check_positive_int(in_channels, "in_channels"),
                    _check_positive_int(num_classes, "num_classes"), dropout)


def preact_resnet18(num_classes: int = 2, in_channels: int = 3) -> nn.Module:
    """:class:`PreActResNet18` for 32x32 RGB inputs (CIFAR-10)."""
    return PreActResNet18(_check_positive_int(num_classes, "num_classes"),
                          _check_positive_int(in_channels, "in_channels"))


def model_for(dataset: str, num_classes: int = 2) -> nn.Module:
    """The architecture used for ``dataset``: "mnist" / "fashion-mnist" -> :func:`small_cnn`
    (1 channel), "cifar10" -> :func:`preact_resnet18` (3 channels). Aliases accepted by
    :func:`nnmargin.datasets.canonical_name` work too; an unknown name raises :class:`~nnmargin.InputError`."""
    name = canonical_name(dataset)
    if name == "cifar10":
        return preact_resnet18(num_classes=num_classes, in_channels=3)
    return small_cnn(in_channels=1, num_classes=num_classes)
