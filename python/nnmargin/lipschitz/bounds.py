"""Sound upper bounds on the l2 -> l2 Lipschitz constant of a network, from its weights.

Every bound here is an *upper* bound on the real-number Lipschitz constant of the layer with the
given (float32 or float64) weights, computed in float64 and rounded up; none is an estimate.

* **Dense** ``Linear``: the largest singular value of W, from a float64 SVD (LAPACK ``gesdd``),
  enlarged by the SVD's error bound (:func:`svd_rel_err`).
* **Convolution** ``Conv2d`` (zeros padding, any stride, dilation, groups): the smaller of two
  bounds. (a) When the explicit convolution matrix has at most :data:`DENSE_LIMIT` entries: its
  norm as a dense layer; the matrix is built by placing the weights (no arithmetic, so exactly).
  (b) Always: a strided convolution is a stride-1 convolution of the polyphase (space-to-depth)
  rearranged input, an isometry; a zero-padded stride-1 convolution is a crop of the circular
  convolution on the torus of the padded input's size, and a crop has norm <= 1. The circular
  convolution is block-diagonalised by the 2-D DFT (Sedghi, Gupta & Long, ICLR 2019), so its norm
  is exactly ``max over the N1 x N2 frequencies w of sigma_max(K(w))``, ``K(w) = sum_{m,n}
  K'[:, :, m, n] exp(-2 pi i (m w1 / N1 + n w2 / N2))``. Each ``K(w)`` is summed directly (a few
  dozen taps), so its rounding error has an explicit bound (:func:`_circular_bound`), then one
  SVD. (b) is tight for circular convolutions and within a few % for zero-padded ones on large
  maps, looser on small maps (22 % on the encoder's 8x8 -> 4x4 conv3), where (a) is affordable.
* **Activations**: ReLU, Hardtanh, Tanh are 1-Lipschitz; LeakyReLU is max(1, |slope|); Sigmoid
  1/4 (each acts coordinate-wise with that slope bound).
* **Pooling**: ``MaxPool2d`` changes each output by at most the largest change in its window,
  so ``||maxpool(x) - maxpool(x')||^2 <= sum over windows ||window(x - x')||^2 <= c ||x - x'||^2``
  with ``c = ceil(kh/sh) * ceil(kw/sw)`` the most windows one input pixel belongs to: the bound is
  sqrt(c) (1 for non-overlapping pooling). ``AvgPool2d`` (a linear map): by Cauchy-Schwarz on each
  window of n = kh * kw pixels, sqrt(c / n) (1/k for k x k non-overlapping pooling).
* ``Flatten``, ``Identity``, ``Dropout`` (the eval-mode map, which is the identity): 1.

A composition is bounded by the product of its layers' bounds (rounded up at each step).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from .._errors import InputError
from .._names import UNIT_ROUNDOFF as _U

__all__ = ["LayerBound", "layer_bounds", "lipschitz_bound", "dense_norm_bound", "conv2d_norm_bound",
           "conv2d_matrix", "svd_rel_err", "SUPPORTED_LAYERS", "DENSE_LIMIT"]

# Relative slack for the last few roundings of a bound (a product, a sum, a sqrt): each moves a
# float64 value by at most u relative, and 8 u covers all of them with room to spare.
_ROUND_UP = 1.0 + 8 * _U


def svd_rel_err(m: int, n: int) -> float:
    """Relative error bound of the largest singular value computed by a float64 SVD of an m x n matrix.

    LAPACK's SVD is backward stable: the computed values are the exact singular values of A + E,
    with ||E||_2 <= p(m, n) u ||A||_2 (Householder bidiagonalisation, then a bidiagonal SVD that
    is accurate to O(n^2 u) relatively; Higham, Accuracy and Stability of Numerical Algorithms,
    2nd ed., ch. 19; Demmel & Kahan 1990). By Weyl's inequality the largest singular value then
    moves by at most that much. We take the generous p(m, n) = 16 (m n sqrt(min(m, n)) + min(m, n)^2):
    for the 128 x 256 blocks of the encoder this is 8e-10, still negligible for certified radii.
    """
    k = min(m, n)
    return 16.0 * (m * n * math.sqrt(k) + k * k) * _U


def dense_norm_bound(weight) -> float:
    """Upper bound on ||W||_2 of an (out, in) matrix: float64 SVD, enlarged by :func:`svd_rel_err`."""
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim != 2:
        raise InputError(f"a dense weight must be 2-d (out, in), got shape {w.shape}")
    if w.size == 0:
        return 0.0
    sigma = float(np.linalg.norm(w, 2))
    return sigma * (1.0 + svd_rel_err(*w.shape)) * _ROUND_UP


def _polyphase(w: np.ndarray, stride: Tuple[int, int]) -> np.ndarray:
    """K'[o, (c, a, b), m, n] = K[o, c, m sh + a, n sw + b] (zero past the kernel): the kernel of the
    stride-1 convolution of the space-to-depth input x'[(c, a, b), u, v] = x[c, u sh + a, v sw + b]."""
    out_ch, in_ch, kh, kw = w.shape
    sh, sw = stride
    taps = np.zeros((out_ch, in_ch, sh, sw, -(-kh // sh), -(-kw // sw)))
    for a in range(sh):
        for b in range(sw):
            part = w[:, :, a::sh, b::sw]
            taps[:, :, a, b, : part.shape[2], : part.shape[3]] = part
    return taps.reshape(out_ch, in_ch * sh * sw, taps.shape[4], taps.shape[5])


# Largest explicit convolution matrix (rows x columns, float64) whose exact norm is computed.
DENSE_LIMIT = 3 * 10**7


def _padding_pairs(padding) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    """((top, bottom), (left, right)) from (ph, pw) (each on both sides) or from the pairs themselves."""
    out = []
    for p in padding:
        lo, hi = (int(p), int(p)) if np.ndim(p) == 0 else (int(p[0]), int(p[1]))
        if lo < 0 or hi < 0:
            raise InputError(f"padding must be >= 0, got {padding!r}")
        out.append((lo, hi))
    return tuple(out)


def _dilated(w: np.ndarray, dilation) -> np.ndarray:
    """A dilated kernel as an ordinary kernel with zeros between its taps."""
    dh, dw = dilation
    if (dh, dw) == (1, 1):
        return w
    out = np.zeros(w.shape[:2] + (dh * (w.shape[2] - 1) + 1, dw * (w.shape[3] - 1) + 1))
    out[:, :, ::dh, ::dw] = w
    return out


def conv2d_norm_bound(weight, input_hw: Tuple[int, int], stride=(1, 1), padding=(0, 0), dilation=(1, 1),
                      groups: int = 1, dense_limit: int = DENSE_LIMIT) -> float:
    """Upper bound on the l2 operator norm of a zero-padded 2-d convolution (cross-correlation, as torch).

    Args:
        weight: (out_channels, in_channels / groups, kh, kw).
        input_hw: (H, W) of the input.
        stride, dilation: pairs of positive integers.
        padding: (ph, pw) zeros on each side, or ((top, bottom), (left, right)).
        groups: channel groups.
        dense_limit: also compute the exact norm of the explicit convolution matrix when it has at
            most this many entries (its exact float64 SVD; tighter for small feature maps, where the
            circular bound pays for border effects), and return the smaller of the two bounds.
    """
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim != 4:
        raise InputError(f"a convolution weight must be 4-d (out, in/groups, kh, kw), got shape {w.shape}")
    if groups < 1 or w.shape[0] % groups:
        raise InputError(f"groups={groups} must divide the {w.shape[0]} output channels")
    pads = _padding_pairs(padding)
    kernel = _dilated(w, dilation)
    padded = (input_hw[0] + sum(pads[0]), input_hw[1] + sum(pads[1]))
    if padded[0] < kernel.shape[2] or padded[1] < kernel.shape[3]:
        raise InputError(f"the (dilated) kernel {kernel.shape[2:]} is larger than the padded input {padded}")
    per = w.shape[0] // groups
    bound = max(_circular_bound(kernel[g * per:(g + 1) * per], padded, tuple(stride)) for g in range(groups))
    out_hw = tuple((padded[i] - kernel.shape[2 + i]) // stride[i] + 1 for i in range(2))
    rows, cols = w.shape[0] * out_hw[0] * out_hw[1], w.shape[1] * groups * input_hw[0] * input_hw[1]
    if rows * cols <= dense_limit:
        bound = min(bound, dense_norm_bound(conv2d_matrix(kernel, input_hw, stride, pads, groups)))
    return bound


def conv2d_matrix(kernel: np.ndarray, input_hw, stride, pads, groups: int = 1) -> np.ndarray:
    """The explicit (out * Ho * Wo, in * H * W) matrix of a zero-padded convolution with an
    undilated ``kernel`` (dilate it first); its entries are the kernel's, placed exactly."""
    out_ch, cg, kh, kw = kernel.shape
    (h, w), (sh, sw) = input_hw, stride
    ho = (h + sum(pads[0]) - kh) // sh + 1
    wo = (w + sum(pads[1]) - kw) // sw + 1
    o, i, j, c, a, b = np.ix_(np.arange(out_ch), np.arange(ho), np.arange(wo), np.arange(cg), np.arange(kh),
                              np.arange(kw))
    y, x = i * sh + a - pads[0][0], j * sw + b - pads[1][0]
    channel = (o // (out_ch // groups)) * cg + c
    shape = (out_ch, ho, wo, cg, kh, kw)
    y, x, channel = (np.broadcast_to(v, shape) for v in (y, x, channel))
    inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
    row = np.broadcast_to((o * ho + i) * wo + j, shape)
    matrix = np.zeros((out_ch * ho * wo, cg * groups * h * w))
    matrix[row[inside], ((channel * h + y) * w + x)[inside]] = np.broadcast_to(kernel[o, c, a, b], shape)[inside]
    return matrix


def _circular_bound(w: np.ndarray, padded: Tuple[int, int], stride: Tuple[int, int]) -> float:
    """The circular-convolution bound of one group (module docstring).

    The circular convolution of the polyphase kernel on the N1 x N2 torus (N = ceil(padded size /
    stride)) contains every output of the real one, so its norm max_w sigma_max(K(w)) bounds the
    real norm. Rounding: each entry of K(w) is a sum of T products of a weight and a twiddle factor
    exp(-2 pi i r / N), r = (m w) mod N an exact integer, so the angle is within 4 pi u of the true
    one and the twiddle within 32 u; the products and sums add gamma_{T+2}. So |computed K(w) -
    K(w)| <= (T + 80) u A entrywise, A = sum_{m,n} |K'[:, :, m, n]|, and ||computed - K(w)||_2 <=
    (T + 80) u ||A||_F. The SVD adds :func:`svd_rel_err`.
    """
    k = _polyphase(w, stride)
    n1, n2 = -(-padded[0] // stride[0]), -(-padded[1] // stride[1])
    taps = k.shape[2] * k.shape[3]
    dft_err = (taps + 80) * _U * float(np.linalg.norm(np.abs(k).sum(axis=(2, 3))))
    twiddle2 = np.exp(-2j * np.pi * (np.outer(np.arange(n2), np.arange(k.shape[3])) % n2) / n2)  # (n2, kw')
    sigma = 0.0
    for w1 in range(n1):
        twiddle1 = np.exp(-2j * np.pi * ((w1 * np.arange(k.shape[2])) % n1) / n1)  # (kh',)
        blocks = np.einsum("m,bn,ocmn->boc", twiddle1, twiddle2, k)  # K(w1, w2) for every w2
        sigma = max(sigma, float(np.linalg.norm(blocks, 2, axis=(1, 2)).max()))
    return (sigma * (1.0 + svd_rel_err(k.shape[0], k.shape[1])) + dft_err) * _ROUND_UP


def _pair(v) -> Tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _conv_padding(module: nn.Conv2d):
    """((top, bottom), (left, right)) zeros of a Conv2d, as torch pads them ("same": extra one at the end)."""
    if isinstance(module.padding, str):
        if module.padding == "valid":
            return ((0, 0), (0, 0))
        totals = [d * (k - 1) for d, k in zip(module.dilation, module.kernel_size)]  # "same"
        return tuple((t // 2, t - t // 2) for t in totals)
    return tuple((p, p) for p in module.padding)


def _windows_per_pixel(kernel, stride) -> int:
    (kh, kw), (sh, sw) = _pair(kernel), _pair(stride if stride is not None else kernel)
    return -(-kh // sh) * -(-kw // sw)


def _module_bound(name: str, module: nn.Module, in_shape: Tuple[int, ...]) -> Tuple[str, float]:
    """(kind, bound) of one layer applied to inputs of shape ``in_shape`` (without the batch axis)."""
    if parametrize.is_parametrized(module):
        raise InputError(f"layer {name!r} has a parametrization (its weight is recomputed at every call): "
                         f"bound the frozen network, nnmargin.lipschitz.freeze(model)")
    if isinstance(module, nn.Linear):
        return "linear", dense_norm_bound(module.weight.detach().cpu().double().numpy())
    if isinstance(module, nn.Conv2d):
        if module.padding_mode != "zeros":
            raise InputError(f"layer {name!r}: padding_mode={module.padding_mode!r} is not supported "
                             f"(only zero padding)")
        if len(in_shape) != 3:
            raise InputError(f"layer {name!r}: a Conv2d needs (C, H, W) inputs, got shape {in_shape}")
        return "conv2d", conv2d_norm_bound(module.weight.detach().cpu().double().numpy(), in_shape[1:],
                                           module.stride, _conv_padding(module), module.dilation,
                                           module.groups)
    if isinstance(module, (nn.ReLU, nn.Hardtanh, nn.Tanh)):
        return "activation", 1.0
    if isinstance(module, nn.LeakyReLU):
        return "activation", max(1.0, abs(float(module.negative_slope)))
    if isinstance(module, nn.Sigmoid):
        return "activation", 0.25
    if isinstance(module, (nn.Flatten, nn.Identity, nn.Dropout)):
        return "reshape", 1.0
    if isinstance(module, nn.MaxPool2d):
        if _pair(module.dilation) != (1, 1) or module.return_indices:
            raise InputError(f"layer {name!r}: MaxPool2d with dilation or return_indices is not supported")
        return "maxpool", math.sqrt(_windows_per_pixel(module.kernel_size, module.stride)) * _ROUND_UP
    if isinstance(module, nn.AvgPool2d):
        padded = _pair(module.padding) != (0, 0)
        if module.ceil_mode or module.divisor_override is not None or (padded and not module.count_include_pad):
            raise InputError(f"layer {name!r}: AvgPool2d is supported with ceil_mode=False, no divisor_override "
                             f"and count_include_pad=True (or no padding)")
        kh, kw = _pair(module.kernel_size)
        return "avgpool", math.sqrt(_windows_per_pixel(module.kernel_size, module.stride) / (kh * kw)) * _ROUND_UP
    raise InputError(f"layer {name!r} ({type(module).__name__}) is not supported by lipschitz_bound; supported: "
                     f"{', '.join(SUPPORTED_LAYERS)} inside nn.Sequential")


SUPPORTED_LAYERS = ("Linear", "Conv2d", "ReLU", "LeakyReLU", "Hardtanh", "Tanh", "Sigmoid", "MaxPool2d",
                    "AvgPool2d", "Flatten", "Identity", "Dropout")


@dataclass(frozen=True)
class LayerBound:
    """One layer of a sequential network and the Lipschitz bounds (l2 -> l2) of it and up to it."""

    name: str                   # qualified name, as in model.named_modules() (features(layer=...))
    kind: str                   # "linear", "conv2d", "activation", "maxpool", "avgpool", "reshape"
    bound: float                # upper bound on this layer's Lipschitz constant
    cumulative: float           # upper bound on the constant from the network input to this layer's output
    output_shape: Tuple[int, ...]


def _leaves(model: nn.Module, prefix: str = ""):
    """(qualified name, module) of a Sequential's layers in order, nested Sequentials flattened."""
    for name, child in model.named_children():
        full = f"{prefix}{name}"
        if isinstance(child, nn.Sequential):
            yield from _leaves(child, full + ".")
        else:
            yield full, child


def layer_bounds(model: nn.Module, input_shape: Optional[Sequence[int]] = None) -> list:
    """The :class:`LayerBound` of every layer of ``model``, an ``nn.Sequential`` (nested ones allowed).

    Args:
        model: a sequential network of the layers in :data:`SUPPORTED_LAYERS` (frozen: no
            parametrizations; see :func:`nnmargin.lipschitz.freeze`).
        input_shape: one input's shape without the batch axis, e.g. (1, 28, 28); default the model's
            ``input_shape`` attribute (set by :func:`nnmargin.lipschitz.lipschitz_encoder`). A
            convolution's norm depends on the image size, so it is needed when the model has one.

    Raises InputError for a model that is not sequential, an unsupported layer, or no input shape.
    """
    if not isinstance(model, nn.Sequential):
        raise InputError(f"lipschitz bounds need an nn.Sequential of supported layers, got {type(model).__name__} "
                         f"(pass the encoder itself, e.g. model.encoder)")
    shape = input_shape if input_shape is not None else getattr(model, "input_shape", None)
    if shape is None:
        raise InputError("input_shape is needed (one input's shape without the batch axis, e.g. (1, 28, 28)); "
                         "the model has no input_shape attribute")
    shape = tuple(int(s) for s in shape)
    if not shape or any(s < 1 for s in shape):
        raise InputError(f"input_shape must be positive sizes, got {shape}")
    param = next(model.parameters(), None)
    probe = torch.zeros((1,) + shape, dtype=param.dtype if param is not None else torch.float32,
                        device=param.device if param is not None else "cpu")
    out, cumulative = [], 1.0
    with torch.no_grad():
        for name, module in _leaves(model):
            kind, bound = _module_bound(name, module, tuple(probe.shape[1:]))
            try:
                probe = module(probe)  # only the shape is used (a training-mode Dropout keeps it)
            except RuntimeError as exc:
                raise InputError(f"layer {name!r} does not accept inputs of shape {tuple(probe.shape[1:])}: "
                                 f"{exc}") from None
            cumulative = cumulative * bound * _ROUND_UP
            out.append(LayerBound(name, kind, float(bound), float(cumulative), tuple(probe.shape[1:])))
    return out


def lipschitz_bound(model: nn.Module, up_to: Optional[str] = None, input_shape: Optional[Sequence[int]] = None) -> float:
    """Upper bound on the l2 -> l2 Lipschitz constant of ``model`` from its input to the output of
    layer ``up_to`` (a name from :func:`layer_bounds`; default: the whole model).

    ``||f(x) - f(x')||_2 <= L ||x - x'||_2`` for every pair of inputs, with f the real-number
    function of the network's weights (see the module docstring for how each layer is bounded).
    """
    bounds = layer_bounds(model, input_shape)
    if up_to is None:
        return bounds[-1].cumulative if bounds else 1.0
    for b in bounds:
        if b.name == up_to:
            return b.cumulative
    raise InputError(f"up_to={up_to!r} is not a layer of the model; layers: {', '.join(b.name for b in bounds)}")
