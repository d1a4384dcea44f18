"""Turning dataset arrays into the tensors the models take, and the early-stopping split."""
from __future__ import annotations

from typing import Tuple

import numpy as np
import torch

from .._errors import InputError, InputTypeError

__all__ = ["to_tensor_images", "to_tensor_labels", "validation_split"]

# Channel counts accepted for channels-last uint8 input: grey, RGB.
_CHANNELS = (1, 3)


def _as_tensor(x, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach()
    try:
        array = np.asarray(x)
    except Exception as exc:  # ragged lists and other things numpy cannot hold
        raise InputTypeError(f"{name} cannot be converted to an array: {exc}") from None
    if array.dtype == object:
        raise InputTypeError(f"{name} must be numeric, got an object array")
    # torch.from_numpy shares memory and wants a writable, native-byte-order, positive-stride
    # array; copy only when the input is not one.
    array = np.ascontiguousarray(array)
    if not array.flags.writeable or not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    return torch.from_numpy(array)


def to_tensor_images(x) -> torch.Tensor:
    """Images as a float32 ``(N, C, H, W)`` tensor with intensities in [0, 1].

    * ``uint8`` (numpy or torch), as the dataset loaders return them: ``(N, H, W)`` becomes
      ``(N, 1, H, W)``; ``(N, H, W, C)`` with C in {1, 3} is read as channels-last (CIFAR-10
      loaders) and transposed to ``(N, C, H, W)``; values are divided by 255.
    * floating point: must already be in [0, 1] and is taken as ``(N, C, H, W)`` (or
      ``(N, H, W)``, given a channel axis); it passes through, converted to float32 only if
      needed (no copy for a float32 tensor).

    The result stays on the input's device (CPU for numpy). Raises ``InputTypeError`` for other
    dtypes and ``InputError`` for a wrong shape, values outside [0, 1], NaN or an empty batch.
    """
    t = _as_tensor(x, "images")
    if t.dtype == torch.uint8:
        t = _channels_first(t, channels_last=True).float().div_(255.0)
    elif t.is_floating_point():
        t = _channels_first(t, channels_last=False).to(torch.float32)
        _check_unit_range(t)
    else:
        raise InputTypeError(f"images must be uint8 (0..255) or floating point in [0, 1], got {t.dtype}")
    return t.contiguous()


def _channels_first(t: torch.Tensor, channels_last: bool) -> torch.Tensor:
    if t.dim() == 3:
        t = t.unsqueeze(1)
    elif t.dim() == 4 and channels_last:
        if t.shape[3] not in _CHANNELS:
            raise InputError(f"4-d uint8 images are read as (N, H, W, C) with C in {_CHANNELS}, "
                             f"got shape {tuple(t.shape)}")
        t = t.permute(0, 3, 1, 2)
    elif t.dim() == 4:
        # A float NHWC batch would otherwise pass as NCHW with e.g. 32 "channels".
        if t.shape[1] not in _CHANNELS and t.shape[3] in _CHANNELS:
            raise InputError(f"float images must be (N, C, H, W); shape {tuple(t.shape)} looks "
                             f"channels-last, transpose it with x.permute(0, 3, 1, 2)")
    else:
        raise InputError(f"images must have shape (N, H, W), (N, H, W, C) for uint8 or "
                         f"(N, C, H, W) for float, got {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise InputError("images must hold at least one image, got an empty batch")
    return t


def _check_unit_range(t: torch.Tensor) -> None:
    if torch.isnan(t).any():
        raise InputError("float images contain NaN")
    low, high = float(t.min()), float(t.max())
    if low < 0.0 or high > 1.0:
        raise InputError(f"float images must lie in [0, 1], got values in [{low:g}, {high:g}]; "
                         f"pass uint8 images to have them scaled by 1/255")


def to_tensor_labels(y, n: int) -> torch.Tensor:
    """Class labels as an int64 tensor of shape ``(n,)`` (``n`` = number of images).

    Raises ``InputTypeError`` for non-integer labels and ``InputError`` for a wrong shape or a
    negative label (the upper bound is checked against the model's output by the caller).
    """
    t = _as_tensor(y, "labels")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise InputTypeError(f"labels must be integers, got {t.dtype}")
    if tuple(t.shape) != (n,):
        raise InputError(f"labels must have shape ({n},) to match the images, got {tuple(t.shape)}")
    if n and int(t.min()) < 0:
        raise InputError(f"labels must be non-negative class indices, got {int(t.min())}")
    return t.to(torch.int64)


def validation_split(n: int, val_fraction: float, seed: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Indices ``(train, val)`` of a seeded random split of ``n`` examples.

    The validation part holds ``round(n * val_fraction)`` examples, at least one, and at least
    one example is left for training; both index tensors are sorted (file order kept).
    """
    n_val = min(max(1, round(n * val_fraction)), n - 1)
    if n_val < 1:
        raise InputError(f"early stopping needs at least 2 training examples, got {n}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[n_val:].sort().values, order[:n_val].sort().values
