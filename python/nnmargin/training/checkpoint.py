"""Saving and loading trained models with their configuration and history."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Optional

import torch

from .._errors import InputError
from ..datasets import canonical_name
from ..models import model_for
from .config import TrainConfig, TrainResult

__all__ = ["save_checkpoint", "load_checkpoint", "CHECKPOINT_FORMAT"]

# Bumped whenever the saved dictionary changes incompatibly.
CHECKPOINT_FORMAT = "nnmargin-train-1"


def _num_classes(model: torch.nn.Module) -> Optional[int]:
    """Output width of the model's last linear layer (our models end in one), else None."""
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    return linears[-1].out_features if linears else None


def save_checkpoint(result: TrainResult, path) -> Path:
    """Write ``result`` (weights, config, history, timing) to ``path`` with ``torch.save``.

    Weights are stored on the CPU, so the file loads on machines without a GPU. The write goes
    to a temporary file first and is renamed into place, so an interrupted run never leaves a
    truncated checkpoint behind. Parent folders are created. Returns the path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "architecture": type(result.model).__name__,
        "num_classes": _num_classes(result.model),
        "state_dict": {k: v.detach().cpu() for k, v in result.model.state_dict().items()},
        "config": dataclasses.asdict(result.config),
        "history": list(result.history),
        "seconds": float(result.seconds),
        "best_epoch": result.best_epoch,
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path, dataset: str, num_classes: Optional[int] = None,
                    map_location="cpu") -> TrainResult:
    """Rebuild the :class:`TrainResult` saved at ``path``: the model is
    ``nnmargin.models.model_for(dataset, num_classes)`` with the saved weights, in eval mode.

    ``num_classes`` defaults to the saved one. Raises :class:`~nnmargin.InputError` when the file is not an
    nnmargin checkpoint, was trained for another dataset, or its weights do not fit the model.
    The file is read with ``weights_only=True``: loading runs no pickled code.
    """
    payload = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path} is not an nnmargin training checkpoint ({CHECKPOINT_FORMAT})")
    dataset = canonical_name(dataset)
    config = TrainConfig(**payload["config"])
    if config.dataset is not None and canonical_name(config.dataset) != dataset:
        raise InputError(f"{path} holds a model trained on {config.dataset!r}, not {dataset!r}")
    num_classes = payload["num_classes"] if num_classes is None else num_classes
    model = model_for(dataset, num_classes=num_classes if num_classes is not None else 2)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise InputError(f"{path}: the saved weights do not fit model_for({dataset!r}, "
                         f"num_classes={num_classes}): {exc}") from None
    model.eval()
    return TrainResult(model=model, config=config, history=payload["history"],
                       seconds=payload["seconds"], best_epoch=payload["best_epoch"])
