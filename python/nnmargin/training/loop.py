"""The training loop shared by all methods, and clean-accuracy evaluation."""
from __future__ import annotations

import contextlib
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .._errors import InputError
from .augment import random_crop_flip
from .checkpoint import save_checkpoint
from .config import TrainConfig, TrainResult
from .data import to_tensor_images, to_tensor_labels, validation_split
from .trades import TradesTerms, trades_terms

__all__ = ["train_model", "evaluate_accuracy"]


def evaluate_accuracy(model: torch.nn.Module, x, y, batch_size: int = 512, device="cpu") -> float:
    """Fraction in [0, 1] of images ``x`` (any form :func:`to_tensor_images` takes) whose
    arg-max logit equals the label in ``y``, with the model in eval mode (its previous mode
    is restored). The model is moved to ``device`` (in place, like ``nn.Module.to``)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
    x = to_tensor_images(x)
    y = to_tensor_labels(y, len(x))
    was_training = model.training
    model.to(device).eval()
    correct = 0
    try:
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                logits = model(x[start:start + batch_size].to(device))
                correct += int((logits.argmax(1).cpu() == y[start:start + batch_size].cpu()).sum())
    finally:
        model.train(was_training)
    return correct / len(x)


@contextlib.contextmanager
def _cudnn_deterministic(enabled: bool):
    """Deterministic cuDNN kernels for the run (no-op on CPU), then the caller's settings back."""
    cudnn = torch.backends.cudnn
    saved = (cudnn.deterministic, cudnn.benchmark)
    if enabled:
        cudnn.deterministic, cudnn.benchmark = True, False
    try:
        yield
    finally:
        cudnn.deterministic, cudnn.benchmark = saved


def _batch_terms(model, xb, yb, config: TrainConfig, noise: torch.Generator) -> TradesTerms:
    """The loss of one batch for ``config.method`` (model in train mode)."""
    if config.method in ("standard", "early-stop"):
        logits = model(xb)
        loss = F.cross_entropy(logits, yb)
        return TradesTerms(loss, loss, None, logits)
    attacks = [dict(norm="linf", eps=config.eps_linf, step=config.step_linf)]
    if config.method == "trades-l2linf":
        attacks.append(dict(norm="l2", eps=config.eps_l2, step=config.step_l2))
    return trades_terms(model, xb, yb, beta=config.beta, attacks=attacks,
                        steps=config.attack_steps, generator=noise)


def _train_epoch(model, optimizer, x, y, config: TrainConfig, epoch: int, rngs: dict,
                 bar: tqdm) -> dict:
    """One pass over ``(x, y)`` in a seeded random order; returns example-weighted means."""
    device = torch.device(config.device)
    model.train()
    sums = {"loss": 0.0, "natural_loss": 0.0, "robust_loss": 0.0, "correct": 0}
    order = torch.randperm(len(x), generator=rngs["shuffle"])
    for batch, start in enumerate(range(0, len(x), config.batch_size)):
        idx = order[start:start + config.batch_size]
        xb, yb = x[idx].to(device, non_blocking=True), y[idx].to(device, non_blocking=True)
        if config.augment:
            xb = random_crop_flip(xb, padding=4, generator=rngs["augment"])
        terms = _batch_terms(model, xb, yb, config, rngs["noise"])
        optimizer.zero_grad(set_to_none=True)
        terms.loss.backward()
        optimizer.step()

        loss = terms.loss.item()
        if not math.isfinite(loss):  # stop before hours are spent on NaNs
            raise FloatingPointError(f"training loss became {loss} at epoch {epoch}, batch "
                                     f"{batch + 1}; try a smaller lr (now {config.lr_at(epoch):g})")
        n = len(idx)
        sums["loss"] += loss * n
        sums["natural_loss"] += terms.natural_loss.item() * n
        if terms.robust_loss is not None:
            sums["robust_loss"] += terms.robust_loss.item() * n
        sums["correct"] += int((terms.logits.detach().argmax(1) == yb).sum())
        bar.update(n)
    robust = config.method in ("trades", "trades-l2linf")
    return {"loss": sums["loss"] / len(x), "natural_loss": sums["natural_loss"] / len(x),
            "robust_loss": sums["robust_loss"] / len(x) if robust else None,
            "train_acc": sums["correct"] / len(x)}


def _format_epoch(record: dict, epochs: int) -> str:
    text = f"epoch {record['epoch']}/{epochs}  loss {record['loss']:.4f}  nat {record['natural_loss']:.4f}"
    if record["robust_loss"] is not None:
        text += f"  rob {record['robust_loss']:.4f}"
    text += f"  train_acc {100 * record['train_acc']:.2f}%"
    if record["val_acc"] is not None:
        text += f"  val_acc {100 * record['val_acc']:.2f}%"
    return text + f"  lr {record['lr']:g}  {record['seconds']:.1f}s"


def _prepare_data(model, x_train, y_train, config: TrainConfig):
    """Tensors (CPU) for training and, for early stopping, validation (else ``None``)."""
    x = to_tensor_images(x_train).cpu()
    y = to_tensor_labels(y_train, len(x)).cpu()
    x, y = x[:config.limit], y[:config.limit]
    model.eval()
    with torch.no_grad():  # one example tells the output width, to check the labels early
        num_classes = model(x[:1].to(config.device)).shape[1]
    if int(y.max()) >= num_classes:
        raise InputError(f"labels must be below the model's {num_classes} outputs, got {int(y.max())}")
    if config.method != "early-stop":
        return x, y, None
    train_idx, val_idx = validation_split(len(x), config.val_fraction, config.seed)
    return x[train_idx], y[train_idx], (x[val_idx], y[val_idx])


def train_model(model: torch.nn.Module, x_train, y_train, config: TrainConfig,
                progress: bool = False) -> TrainResult:
    """Train ``model`` in place on images ``x_train`` and labels ``y_train`` with ``config``.

    Args:
        model: maps ``(N, C, H, W)`` in [0, 1] to logits ``(N, num_classes)``; moved to
            ``config.device``.
        x_train: images in any form :func:`to_tensor_images` takes (e.g. uint8 ``(N, 28, 28)``).
        y_train: int labels ``(N,)`` in ``0 .. num_classes - 1``.
        config: the method and hyper-parameters (:class:`TrainConfig`).
        progress: print one line per epoch to stderr (and a progress bar within the epoch when
            stderr is a terminal).

    Methods: "standard" minimises cross-entropy for ``config.epochs`` epochs; "early-stop" does
    the same for ``config.early_stop_epochs`` epochs on a seeded ``1 - val_fraction`` split and
    restores the epoch with the best validation accuracy (the earliest on ties); "trades" and
    "trades-l2linf" minimise the TRADES losses of :mod:`nnmargin.training.trades`.

    Repeatability: ``torch.manual_seed(config.seed)`` is called (dropout masks); the shuffling,
    the attacks' start noise and the augmentation have their own generators seeded from
    ``config.seed``; on CUDA, cuDNN is made deterministic for the run unless
    ``config.deterministic`` is False. Seed before creating the model too, for identical
    initial weights.

    Checkpoints (when ``config.checkpoint_dir`` is set): ``last.pt`` after every epoch and, for
    "early-stop", ``best.pt`` whenever validation accuracy improves (see :func:`save_checkpoint`).

    Raises :class:`~nnmargin.InputError` for invalid data or config, ``FloatingPointError`` if the loss
    diverges. Returns a :class:`TrainResult` with the model in eval mode.
    """
    config.validate()
    device = torch.device(config.device)
    model.to(device)
    x, y, val = _prepare_data(model, x_train, y_train, config)
    torch.manual_seed(config.seed)
    # One generator per purpose, so that e.g. changing attack_steps leaves the batch order alone.
    rngs = {"shuffle": torch.Generator().manual_seed(config.seed),
            "noise": torch.Generator(device=device).manual_seed(config.seed + 1),
            "augment": torch.Generator(device=device).manual_seed(config.seed + 2)}
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    folder = Path(config.checkpoint_dir) if config.checkpoint_dir is not None else None
    result = TrainResult(model=model, config=config)
    best_acc, best_state, start = -1.0, None, time.perf_counter()
    with _cudnn_deterministic(config.deterministic):
        for epoch in range(1, config.train_epochs + 1):
            began = time.perf_counter()
            lr = config.lr_at(epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            # a bar on a terminal only (disable=None), never in logs or captured output
            with tqdm(total=len(x), desc=f"epoch {epoch}", unit="img", leave=False,
                      disable=None if progress else True) as bar:
                record = {"epoch": epoch, **_train_epoch(model, optimizer, x, y, config, epoch,
                                                         rngs, bar)}
            record["val_acc"] = None if val is None else evaluate_accuracy(
                model, *val, batch_size=max(config.batch_size, 512), device=device)
            record.update(lr=lr, seconds=time.perf_counter() - began)
            result.history.append(record)
            result.seconds = time.perf_counter() - start
            if val is not None and record["val_acc"] > best_acc:  # strict: earliest best wins
                best_acc, result.best_epoch = record["val_acc"], epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                if folder is not None:
                    save_checkpoint(result, folder / "best.pt")
            if folder is not None:
                save_checkpoint(result, folder / "last.pt")
            if progress:
                print(_format_epoch(record, config.train_epochs), file=sys.stderr, flush=True)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - start
    return result
