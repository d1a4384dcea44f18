"""Features of any torch model at a named layer, as an (N, F) numpy array for the 1NN."""
from __future__ import annotations

import copy
from typing import Optional

import numpy as np
import torch
from torch import nn

from .._errors import InputError, InputTypeError
from ..training.data import to_tensor_images

__all__ = ["features"]

_DTYPES = {"float64": torch.float64, "float32": torch.float32}


class _Captured(Exception):
    """Raised by the forward hook once the layer's output is kept: the rest of the network is skipped."""


def _as_input(x, dtype: torch.dtype) -> torch.Tensor:
    """uint8 images (loader layouts) -> NCHW pixels on [0, 1]; float input as given, in ``dtype``."""
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu()
    else:
        t = np.asarray(x)
        if t.dtype == object or not (np.issubdtype(t.dtype, np.floating) or t.dtype == np.uint8):
            raise InputTypeError(f"x must be uint8 images or a float array, got dtype {t.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(t))
    if t.dtype == torch.uint8:
        # to_tensor_images gives the NCHW layout and checks; its float32 v/255 is rounded back to the
        # integer v exactly (error < 2^-24 * 255 < 1/2) and divided again in ``dtype``.
        return torch.round(to_tensor_images(t) * 255.0).to(dtype) / 255.0
    if not t.is_floating_point():
        raise InputTypeError(f"x must be uint8 images or floating point, got {t.dtype}")
    if not bool(torch.isfinite(t).all()):
        raise InputError("x contains NaN or Inf")
    return t.to(dtype)


def features(model: nn.Module, x, layer: Optional[str] = None, *, batch_size: int = 1000,
             dtype: str = "float64") -> np.ndarray:
    """Outputs of layer ``layer`` of ``model`` for inputs ``x``, flattened to (N, F).

    Args:
        model: any torch module; it is copied, converted to ``dtype`` and run in eval mode on the
            CPU (the caller's model is left as it is).
        x: uint8 images as the dataset loaders return them ((N, H, W) or (N, H, W, C)), scaled to
            [0, 1] and put in NCHW; or float input (numpy or torch), passed to the model as given.
        layer: a name from ``dict(model.named_modules())`` (e.g. "relu1", "encoder.relu1"); its
            output is captured by a forward hook and the rest of the forward pass is skipped.
            Default: the model's output.
        batch_size: inputs per forward pass.
        dtype: "float64" (default: rounding errors of the forward pass ~1e-15 relative) or "float32".

    Returns:
        (N, F) numpy array of ``dtype``.
    """
    if dtype not in _DTYPES:
        raise InputError(f"dtype must be one of {tuple(_DTYPES)}, got {dtype!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not isinstance(model, nn.Module):
        raise InputTypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    net = copy.deepcopy(model).to(device="cpu", dtype=_DTYPES[dtype]).eval()
    modules = dict(net.named_modules())
    if layer is not None and (layer == "" or layer not in modules):
        names = [n for n in modules if n]
        raise InputError(f"layer {layer!r} is not a module of the model; modules: {', '.join(names)}")
    inputs = _as_input(x, _DTYPES[dtype])
    if inputs.dim() == 0 or inputs.shape[0] == 0:
        raise InputError("x must hold at least one input")
    kept = []

    def keep(_module, _inputs, output):
        if not isinstance(output, torch.Tensor):
            raise InputError(f"layer {layer!r} returns {type(output).__name__}, not a tensor")
        kept.append(output.detach())
        raise _Captured

    hook = modules[layer].register_forward_hook(keep) if layer is not None else None
    result = None
    try:
        with torch.no_grad():
            for begin in range(0, inputs.shape[0], batch_size):
                try:
                    out = net(inputs[begin:begin + batch_size])
                    if not isinstance(out, torch.Tensor):
                        raise InputError(f"the model returns {type(out).__name__}; name the layer to read (layer=...)")
                except _Captured:
                    out = kept.pop()
                out = out.reshape(out.shape[0], -1)
                if result is None:  # filled in place: no second copy of all the features
                    result = np.empty((inputs.shape[0], out.shape[1]), dtype=dtype)
                result[begin:begin + out.shape[0]] = out.numpy()
    finally:
        if hook is not None:
            hook.remove()
    return result
