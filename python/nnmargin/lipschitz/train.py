"""Training the Lipschitz autoencoder with Sitawarin & Wagner's loss (Section 6.1, their equation)::

    L(x) = ||f(x) - x||_2^2 - alpha * min( min_{x' in B_x} ||f_b(x) - f_b(x')||_2^2 , T )

f the autoencoder, f_b its bottleneck, B_x the samples of the batch with another label than x, T a
threshold. The first term (summed over pixels) keeps the representation informative; the second
pushes each sample's nearest other-class neighbour in the batch up to distance sqrt(T). The paper
writes alpha = 1 and gives no T; the authors' code (chawins/knn-defense, lib/lip_model.py) uses
T = 4 and, in its latest version, weighs the term by alpha = 100. Defaults here: T = 4, alpha = 1
(the paper's equation); both are options. Adam, lr 1e-3, batch 128 as in the authors' script.
"""
from __future__ import annotations

import copy
import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from .._errors import InputError
from ..training.data import to_tensor_images, to_tensor_labels
from .encoder import LipschitzAutoencoder

__all__ = ["AutoencoderConfig", "AutoencoderResult", "separation_term", "autoencoder_loss", "train_autoencoder",
           "save_autoencoder", "load_autoencoder", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "nnmargin-lipschitz-ae-1"


@dataclass
class AutoencoderConfig:
    """Architecture and training settings (see the module docstring for where they come from)."""

    input_shape: tuple = (1, 28, 28)
    widths: tuple = (64, 128, 128)
    latent_dim: int = 128
    decoder_widths: tuple = (128, 64)
    normalisation: str = "operator"
    epochs: int = 5
    batch_size: int = 128
    lr: float = 1e-3
    alpha: float = 1.0
    threshold: float = 4.0
    seed: int = 0

    def __post_init__(self):
        for name in ("epochs", "batch_size", "latent_dim"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InputError(f"{name} must be a positive integer, got {v!r}")
        if self.batch_size < 2:
            raise InputError("batch_size must be at least 2 (the separation term compares samples of a batch)")
        for name in ("lr", "alpha", "threshold"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
                raise InputError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.lr == 0:
            raise InputError("lr must be > 0")
        self.input_shape, self.widths, self.decoder_widths = (tuple(self.input_shape), tuple(self.widths),
                                                              tuple(self.decoder_widths))

    def build(self) -> LipschitzAutoencoder:
        return LipschitzAutoencoder(self.input_shape, self.widths, self.latent_dim, self.decoder_widths,
                                    self.normalisation)


@dataclass
class AutoencoderResult:
    """A trained autoencoder (the epoch with the lowest validation loss when there is validation data)."""

    model: LipschitzAutoencoder
    config: AutoencoderConfig
    history: List[dict] = field(default_factory=list)   # per epoch: loss, recon, separation, val_loss, seconds
    seconds: float = 0.0
    best_epoch: Optional[int] = None


def separation_term(z: torch.Tensor, y: torch.Tensor, threshold: float) -> torch.Tensor:
    """(B,) min(squared distance from z_i to its nearest other-label z_j in the batch, T); T when the
    batch has no other label."""
    sq = (z * z).sum(dim=1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * (z @ z.T)).clamp_min(0.0)
    d2 = d2.masked_fill(y[:, None] == y[None, :], float("inf"))
    return d2.min(dim=1).values.clamp(max=threshold)


def autoencoder_loss(model: LipschitzAutoencoder, x: torch.Tensor, y: torch.Tensor, alpha: float, threshold: float):
    """(batch mean of L(x), mean reconstruction term, mean separation term)."""
    z, recon = model(x)
    rec = ((recon - x) ** 2).flatten(1).sum(dim=1)
    sep = separation_term(z, y, threshold)
    return (rec - alpha * sep).mean(), rec.mean(), sep.mean()


def _evaluate(model, x, y, config, batch=1000) -> float:
    model.eval()
    total = 0.0
    with torch.no_grad():
        for b in range(0, len(x), batch):
            loss, _, _ = autoencoder_loss(model, x[b:b + batch], y[b:b + batch], config.alpha, config.threshold)
            total += float(loss) * len(x[b:b + batch])
    model.train()
    return total / len(x)


def train_autoencoder(x_train, y_train, config: AutoencoderConfig = None, x_val=None, y_val=None,
                      progress: bool = False, log=None) -> AutoencoderResult:
    """Train :class:`LipschitzAutoencoder` on images ``x_train`` (uint8 as loaded, or float NCHW in
    [0, 1]) with labels ``y_train``; keeps the epoch with the lowest loss on (x_val, y_val) if given.

    Seeded by ``config.seed`` (weights and batch order). ``log(text)`` receives one line per epoch.
    """
    config = config or AutoencoderConfig()
    x = to_tensor_images(x_train)
    y = to_tensor_labels(y_train, x.shape[0])
    if tuple(x.shape[1:]) != config.input_shape:
        raise InputError(f"images of shape {tuple(x.shape[1:])} do not fit input_shape={config.input_shape}")
    xv = yv = None
    if x_val is not None:
        xv = to_tensor_images(x_val)
        yv = to_tensor_labels(y_val, xv.shape[0])
    torch.manual_seed(config.seed)
    model = config.build()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    order_rng = torch.Generator().manual_seed(config.seed)
    result = AutoencoderResult(model=model, config=config)
    best, best_state = float("inf"), None
    start = time.perf_counter()
    model.train()
    for epoch in range(1, config.epochs + 1):
        began = time.perf_counter()
        order = torch.randperm(x.shape[0], generator=order_rng)
        sums = np.zeros(3)
        batches = range(0, x.shape[0], config.batch_size)
        for b in tqdm(batches, desc=f"epoch {epoch}", unit="batch", disable=not progress, leave=False):
            idx = order[b:b + config.batch_size]
            loss, rec, sep = autoencoder_loss(model, x[idx], y[idx], config.alpha, config.threshold)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            sums += np.array([loss.item(), rec.item(), sep.item()]) * len(idx)
        row = dict(zip(("loss", "recon", "separation"), (sums / x.shape[0]).tolist()), epoch=epoch)
        if xv is not None:
            row["val_loss"] = _evaluate(model, xv, yv, config)
            if row["val_loss"] < best:
                best, best_state, result.best_epoch = row["val_loss"], copy.deepcopy(model.state_dict()), epoch
        row["seconds"] = time.perf_counter() - began
        result.history.append(row)
        if log is not None:
            log("  epoch {epoch:3d}  loss {loss:9.4f}  recon {recon:8.4f}  separation {separation:6.4f}".format(**row)
                + (f"  val {row['val_loss']:9.4f}" if "val_loss" in row else "") + f"  {row['seconds']:6.1f} s")
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - start
    return result


def save_autoencoder(result: AutoencoderResult, path) -> Path:
    """Write weights, config and history with ``torch.save`` (atomically: temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": CHECKPOINT_FORMAT, "config": dataclasses.asdict(result.config),
               "state_dict": {k: v.detach().cpu() for k, v in result.model.state_dict().items()},
               "history": list(result.history), "seconds": float(result.seconds), "best_epoch": result.best_epoch}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_autoencoder(path) -> AutoencoderResult:
    """Rebuild the :class:`AutoencoderResult` saved by :func:`save_autoencoder` (read with
    ``weights_only=True``: no pickled code runs). InputError when the file is not such a checkpoint."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"{path}: no such checkpoint") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path} is not an nnmargin Lipschitz-autoencoder checkpoint ({CHECKPOINT_FORMAT})")
    config = AutoencoderConfig(**payload["config"])
    model = config.build()
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise InputError(f"{path}: the saved weights do not fit the saved configuration: {exc}") from None
    model.eval()
    return AutoencoderResult(model=model, config=config, history=payload["history"], seconds=payload["seconds"],
                             best_epoch=payload["best_epoch"])
