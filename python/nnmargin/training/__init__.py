"""Implementation of :mod:`nnmargin.train` (the public module; its names are re-exported here
too), split by topic:

* :mod:`.config` -- :class:`TrainConfig`, per-dataset defaults, :class:`TrainResult`
* :mod:`.data` -- image/label conversion and the early-stopping split
* :mod:`.trades` -- the TRADES attack and losses
* :mod:`.loop` -- :func:`train_model`, :func:`evaluate_accuracy`
* :mod:`.checkpoint` -- :func:`save_checkpoint`, :func:`load_checkpoint`
"""
from __future__ import annotations

from .checkpoint import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint
from .config import METHODS, TrainConfig, TrainResult, default_config
from .data import to_tensor_images, to_tensor_labels, validation_split
from .loop import evaluate_accuracy, train_model
from .trades import NORMS, trades_attack, trades_l2linf_loss, trades_loss

__all__ = ["METHODS", "NORMS", "CHECKPOINT_FORMAT", "TrainConfig", "TrainResult", "default_config",
           "to_tensor_images", "to_tensor_labels", "validation_split", "train_model",
           "evaluate_accuracy", "trades_loss", "trades_l2linf_loss", "trades_attack",
           "save_checkpoint", "load_checkpoint"]
