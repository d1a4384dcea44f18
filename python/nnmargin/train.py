"""Training the networks that nearest-neighbour certificates are compared against.

Methods (``TrainConfig.method``):

* ``"standard"`` -- cross-entropy, SGD with step decay.
* ``"early-stop"`` -- standard training for ``early_stop_epochs`` (20) epochs, keeping the
  checkpoint with the best accuracy on a held-out ``val_fraction`` of the training data.
* ``"trades"`` -- TRADES (Zhang et al. 2019) against an l-inf attack:
  ``CE(f(x), y) + beta * KL(f(x) || f(x_adv))``.
* ``"trades-l2linf"`` -- TRADES with an l-inf and an l2 adversarial KL term, averaged:
  ``CE + beta * (KL_linf + KL_l2) / 2``.

Example::

    import torch
    from nnmargin import datasets, models, train
    pair = datasets.binary_pair("mnist", 3, 5)
    torch.manual_seed(0)
    model = models.model_for("mnist")
    config = train.default_config("mnist", "trades", checkpoint_dir="runs/mnist-3-5")
    result = train.train_model(model, pair.x_train, pair.y_train, config, progress=True)
    train.evaluate_accuracy(result.model, pair.x_test, pair.y_test)

Images go in as the dataset loaders return them (uint8) or as float NCHW in [0, 1]; see
:func:`to_tensor_images`. The implementation lives in :mod:`nnmargin.training`.
"""
from __future__ import annotations

from .training import (CHECKPOINT_FORMAT, METHODS, NORMS, TrainConfig, TrainResult, default_config,
                       evaluate_accuracy, load_checkpoint, save_checkpoint, to_tensor_images,
                       to_tensor_labels, trades_attack, trades_l2linf_loss, trades_loss, train_model,
                       validation_split)

__all__ = ["METHODS", "NORMS", "CHECKPOINT_FORMAT", "TrainConfig", "TrainResult", "default_config",
           "to_tensor_images", "to_tensor_labels", "validation_split", "train_model",
           "evaluate_accuracy", "trades_loss", "trades_l2linf_loss", "trades_attack",
           "save_checkpoint", "load_checkpoint"]
