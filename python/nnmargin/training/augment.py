"""Data augmentation for CIFAR-10 training: random crops of a zero-padded image and mirroring,
the augmentation of the TRADES CIFAR script, done on whole batches on the training device."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

__all__ = ["random_crop_flip"]


def random_crop_flip(x: torch.Tensor, padding: int = 4,
                     generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Each image of ``x`` ``(N, C, H, W)`` replaced by a random ``H x W`` window of its copy
    zero-padded by ``padding`` pixels on every side (offsets uniform in ``0 .. 2 * padding``),
    mirrored left-right with probability 1/2. Returns a new tensor of the same shape.

    ``generator`` (on ``x``'s device) makes the draws repeatable.
    """
    n, c, h, w = x.shape
    device = x.device
    padded = F.pad(x, (padding, padding, padding, padding))
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=generator, device=device)
    flip = torch.rand(n, generator=generator, device=device) < 0.5
    rows = offsets[0, :, None] + torch.arange(h, device=device)  # (N, H) source row per output row
    cols = offsets[1, :, None] + torch.arange(w, device=device)  # (N, W)
    cols = torch.where(flip[:, None], cols.flip(1), cols)  # mirroring = reading columns backwards
    # One gather for the whole batch: out[n, c, i, j] = padded[n, c, rows[n, i], cols[n, j]].
    return padded[torch.arange(n, device=device)[:, None, None, None],
                  torch.arange(c, device=device)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]
