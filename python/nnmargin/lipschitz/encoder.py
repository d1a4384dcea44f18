"""The Lipschitz autoencoder of Sitawarin & Wagner (Section 6.1), for 28x28x1 and 32x32x3 images.

Encoder (the DkNN MNIST network of Papernot & McDaniel, as in the paper's Section 4), with its
layer names::

    conv1  Conv2d(C, 64, 8, stride 2, padding 3)  -> relu1     28 -> 14  (32 -> 16)
    conv2  Conv2d(64, 128, 6, stride 2, padding 3) -> relu2    14 -> 8   (16 -> 9)
    conv3  Conv2d(128, 128, 5)                     -> relu3     8 -> 4   (9 -> 5)
    flatten, bottleneck Linear(128 * 4 * 4, 128)               (128 * 5 * 5 for 32x32)

Decoder: Linear -> 3 transposed convolutions (5 stride 2, 4 stride 2, 5) -> sigmoid, back to the
input size. The decoder is not part of any certificate and is not constrained.

During training every encoder weight is normalised as in L2NNN (Qian & Wegman 2019), the method
the paper uses: W / (sqrt(c) * sqrt(||G||_inf)), G the smaller Gram matrix of W reshaped to
(out, in * kh * kw) and c = ceil(kh/sh) * ceil(kw/sw) the most patches one pixel belongs to.
sqrt(||G||_inf) >= ||W||_2 and sqrt(c) ||W||_2 bounds the convolution, so each layer is
(loosely) at most 1-Lipschitz by construction. This normalisation only shapes training: the
certificate uses the sound, tighter bound of :mod:`nnmargin.lipschitz.bounds` computed from the
frozen weights (:func:`freeze`), never the normalisation's own constant.
"""
from __future__ import annotations

import copy
import math
from collections import OrderedDict
from typing import Optional, Sequence, Tuple

import torch
from torch import nn
from torch.nn.utils import parametrize

from .._errors import InputError
from ._constants import ENCODER_LAYERS, IMAGE_SHAPES, NORMALISATIONS

__all__ = ["GramNormalized", "OperatorNormalized", "NORMALISATIONS", "lipschitz_encoder", "LipschitzAutoencoder", "freeze", "ENCODER_LAYERS",
           "IMAGE_SHAPES"]



class GramNormalized(nn.Module):
    """Parametrization W -> W / (patch_factor * sqrt(||G||_inf)), G the smaller Gram matrix of W
    reshaped to (out, -1). Differentiable; an upper bound on ||W||_2 by ||A||_2 <= ||A||_inf for the
    symmetric G (training only: certificates use :func:`nnmargin.lipschitz.layer_bounds`)."""

    def __init__(self, patch_factor: float = 1.0):
        super().__init__()
        self.patch_factor = float(patch_factor)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        m = weight.reshape(weight.shape[0], -1)
        gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
        norm = gram.abs().sum(dim=1).max().clamp_min(1e-24).sqrt()
        return weight / (norm * self.patch_factor)


class OperatorNormalized(nn.Module):
    """Parametrization W -> W / sigma, sigma a power-iteration estimate of the norm of the whole layer
    operator (the convolution on inputs of ``in_shape``, or the matrix), one iteration per training
    call (Miyato et al. 2018, applied to the operator rather than to the reshaped kernel). It keeps
    each layer close to 1-Lipschitz; being an estimate, it is never used as a bound (training only)."""

    def __init__(self, layer: nn.Module, in_shape: Tuple[int, ...], iterations: int = 2, warmup: int = 50):
        super().__init__()
        conv = isinstance(layer, nn.Conv2d)
        self._op = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation) if conv else None
        self.iterations = iterations
        u = torch.randn((1,) + tuple(in_shape))
        self.register_buffer("u", u / u.norm())
        self._power_iterations(layer.weight, warmup)

    def _apply_op(self, w, x):
        return nn.functional.conv2d(x, w, None, **self._op) if self._op is not None else nn.functional.linear(x, w)

    def _power_iterations(self, weight: torch.Tensor, count: int) -> None:
        w = weight.detach()
        for _ in range(count):
            with torch.enable_grad():
                u = self.u.detach().clone().requires_grad_(True)
                out = self._apply_op(w, u)
                (grad,) = torch.autograd.grad(out, u, out)   # A^T A u
            with torch.no_grad():
                self.u.copy_(grad / grad.norm().clamp_min(1e-24))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self.training:
            self._power_iterations(weight, self.iterations)
        sigma = self._apply_op(weight, self.u).norm().clamp_min(1e-24)
        return weight / sigma


def _normalised(layer: nn.Module, how: str, in_shape: Tuple[int, ...]) -> nn.Module:
    if how == "operator":
        parametrize.register_parametrization(layer, "weight", OperatorNormalized(layer, in_shape))
        return layer
    factor = 1.0
    if isinstance(layer, nn.Conv2d):
        factor = math.sqrt(math.prod(-(-k // s) for k, s in zip(layer.kernel_size, layer.stride)))
    parametrize.register_parametrization(layer, "weight", GramNormalized(factor))
    return layer


def _check_widths(widths, n: int, name: str) -> Tuple[int, ...]:
    widths = tuple(widths)
    if len(widths) != n or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
        raise InputError(f"{name} must be {n} positive integers, got {widths!r}")
    return widths


def _check_shape(input_shape) -> Tuple[int, int, int]:
    shape = tuple(int(s) for s in input_shape)
    if shape not in IMAGE_SHAPES:
        raise InputError(f"input_shape must be one of {sorted(IMAGE_SHAPES)} (C, H, W), got {shape}")
    return shape


def lipschitz_encoder(input_shape: Sequence[int] = (1, 28, 28), widths: Sequence[int] = (64, 128, 128),
                      latent_dim: int = 128, normalisation: Optional[str] = "operator") -> nn.Sequential:
    """The encoder (module docstring) as an ``nn.Sequential`` with named layers and an ``input_shape``
    attribute; its weights carry the ``normalisation`` parametrization (:data:`NORMALISATIONS`:
    :class:`OperatorNormalized` or :class:`GramNormalized`; None: plain layers)."""
    if normalisation is not None and normalisation not in NORMALISATIONS:
        raise InputError(f"normalisation must be one of {NORMALISATIONS} or None, got {normalisation!r}")
    shape = _check_shape(input_shape)
    c1, c2, c3 = _check_widths(widths, 3, "widths")
    (latent_dim,) = _check_widths((latent_dim,), 1, "latent_dim")
    side = IMAGE_SHAPES[shape]
    layers = OrderedDict(
        conv1=nn.Conv2d(shape[0], c1, 8, stride=2, padding=3), relu1=nn.ReLU(),
        conv2=nn.Conv2d(c1, c2, 6, stride=2, padding=3), relu2=nn.ReLU(),
        conv3=nn.Conv2d(c2, c3, 5), relu3=nn.ReLU(),
        flatten=nn.Flatten(), bottleneck=nn.Linear(c3 * side * side, latent_dim),
    )
    encoder = nn.Sequential(layers)
    if normalisation is not None:
        probe = torch.zeros((1,) + shape)
        with torch.no_grad():
            for name, layer in layers.items():
                if name in ("conv1", "conv2", "conv3", "bottleneck"):
                    _normalised(layer, normalisation, tuple(probe.shape[1:]))
                probe = layer(probe)
    encoder.input_shape = shape
    return encoder


class LipschitzAutoencoder(nn.Module):
    """Encoder (:func:`lipschitz_encoder`) + decoder; ``forward(x)`` returns ``(z, reconstruction)``.

    Input: float (N, C, H, W) in [0, 1] with (C, H, W) in :data:`IMAGE_SHAPES`.
    """

    def __init__(self, input_shape: Sequence[int] = (1, 28, 28), widths: Sequence[int] = (64, 128, 128),
                 latent_dim: int = 128, decoder_widths: Sequence[int] = (128, 64), normalisation: str = "operator"):
        super().__init__()
        shape = _check_shape(input_shape)
        d1, d2 = _check_widths(decoder_widths, 2, "decoder_widths")
        side = IMAGE_SHAPES[shape]
        self.input_shape = shape
        self.hyper = {"input_shape": list(shape), "widths": list(widths), "latent_dim": latent_dim,
                      "decoder_widths": [d1, d2], "normalisation": normalisation}
        self.encoder = lipschitz_encoder(shape, widths, latent_dim, normalisation)
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, d1 * side * side), nn.Unflatten(1, (d1, side, side)),
            nn.ConvTranspose2d(d1, d1, 5, stride=2), nn.ReLU(),      # side -> 2 side + 3
            nn.ConvTranspose2d(d1, d2, 4, stride=2), nn.ReLU(),      # -> 4 side + 8
            nn.ConvTranspose2d(d2, shape[0], 5), nn.Sigmoid(),       # -> 4 side + 12 = H
        )

    def forward(self, x: torch.Tensor):
        z = self.encoder(x)
        return z, self.decoder(z)


def freeze(encoder: nn.Module) -> nn.Module:
    """A copy of ``encoder`` in eval mode whose parametrized layers are plain ``Conv2d`` / ``Linear``
    layers holding the weight the parametrization computes now (float values fixed once): the
    network the bounds and the certificates are about. ``encoder`` itself is left as it is."""
    frozen = copy.deepcopy(encoder).eval()
    # Replace rather than torch's remove_parametrizations: the copy shares its parametrized classes
    # with the original, and removal would edit those classes under the original too.
    for parent in list(frozen.modules()):
        for name, child in list(parent.named_children()):
            if parametrize.is_parametrized(child):
                setattr(parent, name, _plain_layer(child))
    return frozen


def _plain_layer(layer: nn.Module) -> nn.Module:
    if isinstance(layer, nn.Conv2d):
        plain = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
                          layer.dilation, layer.groups, layer.bias is not None, layer.padding_mode)
    elif isinstance(layer, nn.Linear):
        plain = nn.Linear(layer.in_features, layer.out_features, layer.bias is not None)
    else:
        raise InputError(f"freeze: cannot make a plain copy of a parametrized {type(layer).__name__}")
    with torch.no_grad():
        plain.weight = nn.Parameter(layer.weight.detach().clone())
        if layer.bias is not None:
            plain.bias = nn.Parameter(layer.bias.detach().clone())
    return plain.eval()
