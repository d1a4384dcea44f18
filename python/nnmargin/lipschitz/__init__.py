"""Feature-space certificates: a 1NN on the features of a network with a sound Lipschitz bound.

If f is L-Lipschitz from the input l2 norm to the feature l2 norm, a certified l2 radius r of the
1NN on features f(x) certifies r / L in input space (Sitawarin & Wagner, Appendix B, with L = 1):
``nnmargin.certify(f(x), y, (f(x_train), y_train), lipschitz=L)``, for the margin, bisector and
exact bounds alike. This package supplies f and L:

* :func:`features` -- (N, F) outputs of any torch model at a named layer (forward hook).
* :func:`layer_bounds`, :func:`lipschitz_bound` -- sound upper bounds on L of an ``nn.Sequential``
  up to each layer, from its weights (exact float64 SVDs of dense layers and of the DFT blocks of
  convolutions, with their rounding errors bounded; see :mod:`nnmargin.lipschitz.bounds`).
* :func:`lipschitz_encoder`, :class:`LipschitzAutoencoder`, :func:`freeze` -- the paper's
  encoder for 28x28x1 and 32x32x3 images, and :func:`train_autoencoder` with their loss.

Needs torch. ``import nnmargin.lipschitz`` is light: each name loads its module (and torch) on
first use.
"""
from __future__ import annotations

import importlib

from ._constants import ENCODER_LAYERS, IMAGE_SHAPES, NORMALISATIONS

# public name -> submodule that defines it
_WHERE = {
    **dict.fromkeys(("features",), "extract"),
    **dict.fromkeys(("layer_bounds", "lipschitz_bound", "LayerBound", "dense_norm_bound", "conv2d_norm_bound",
                     "conv2d_matrix", "svd_rel_err", "SUPPORTED_LAYERS", "DENSE_LIMIT"), "bounds"),
    **dict.fromkeys(("lipschitz_encoder", "LipschitzAutoencoder", "GramNormalized", "OperatorNormalized",
                     "freeze"), "encoder"),
    **dict.fromkeys(("AutoencoderConfig", "AutoencoderResult", "separation_term", "autoencoder_loss",
                     "train_autoencoder", "save_autoencoder", "load_autoencoder"), "train"),
}

__all__ = sorted(_WHERE) + ["ENCODER_LAYERS", "IMAGE_SHAPES", "NORMALISATIONS"]


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'nnmargin.lipschitz' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_WHERE))
