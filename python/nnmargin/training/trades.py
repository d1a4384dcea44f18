"""TRADES: the robust training objective of Zhang et al. (2019), "Theoretically Principled
Trade-off between Robustness and Accuracy", implemented from the paper's description.

For a batch ``x`` (``(N, C, H, W)`` in [0, 1]) with labels ``y`` and logits ``f(x)``::

    loss = CE(f(x), y) + beta * KL
    KL   = F.kl_div(log_softmax(f(x_adv)), softmax(f(x)), reduction="batchmean")

i.e. ``KL = (1/N) * sum_i sum_k p_ik * (log p_ik - log q_ik)`` with ``p = softmax(f(x))`` (clean)
and ``q = softmax(f(x_adv))`` (adversarial). The clean branch ``softmax(f(x))`` is NOT detached,
so the KL term also trains the clean prediction. ``x_adv`` maximises the same KL term inside the
eps-ball around ``x`` (see :func:`trades_attack`); it is computed with the model in eval mode
and enters the loss as a constant.

Deviation from the reference implementation, for cost only: ``f(x)`` is evaluated once per loss
and shared by the CE and KL terms (the reference evaluates it twice; the values are the same
unless the model has dropout, whose masks then differ between the two evaluations).
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional, Sequence

import torch
import torch.nn.functional as F

from .._errors import InputError
from .._names import ATTACK_NORMS as NORMS

__all__ = ["NORMS", "trades_attack", "trades_loss", "trades_l2linf_loss", "TradesTerms", "trades_terms"]

# Scale of the Gaussian start point, in pixel units: it breaks the symmetry at x_adv = x, where
# the KL term has a zero gradient.
INIT_NOISE = 0.001
# Guards the divisions by a gradient or perturbation norm that can be exactly zero.
_TINY = 1e-12


class TradesTerms(NamedTuple):
    """The parts of a TRADES loss: scalars ``loss`` (= ``natural_loss + beta * robust_loss``),
    ``natural_loss`` (CE on clean inputs), ``robust_loss`` (the KL term, mean over attacks) and
    the clean ``logits`` ``(N, num_classes)`` (e.g. for training accuracy)."""
    loss: torch.Tensor
    natural_loss: torch.Tensor
    robust_loss: torch.Tensor
    logits: torch.Tensor


def _check_attack(eps, step, steps, norm) -> None:
    if norm not in NORMS:
        raise InputError(f"norm must be one of {NORMS}, got {norm!r}")
    for name, value in (("eps", eps), ("step", step)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) \
                or not math.isfinite(value) or value < 0:
            raise InputError(f"{name} must be a finite non-negative number, got {value!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise InputError(f"steps must be a non-negative integer, got {steps!r}")


def _check_beta(beta) -> None:
    if not isinstance(beta, (int, float)) or isinstance(beta, bool) or not math.isfinite(beta) or beta < 0:
        raise InputError(f"beta must be a finite non-negative number, got {beta!r}")


def _per_example_norm(t: torch.Tensor) -> torch.Tensor:
    """l2 norm of each example of ``t`` ``(N, ...)``, shaped ``(N, 1, ..., 1)`` to broadcast."""
    return t.flatten(1).norm(dim=1).view(-1, *([1] * (t.dim() - 1)))


def _ascent_step(x_adv, grad, x, eps: float, step: float, norm: str) -> torch.Tensor:
    """One projected ascent step from ``x_adv``; the result lies in the ball and in [0, 1].

    Clipping to [0, 1] after projecting cannot leave the ball: ``x`` is in [0, 1], so clipping
    moves every coordinate towards ``x``.
    """
    if norm == "linf":
        x_adv = x_adv + step * grad.sign()
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps)
    else:
        # Normalised gradient: a step of exactly `step` in l2, whatever the gradient's scale.
        x_adv = x_adv + step * grad / _per_example_norm(grad).clamp_min(_TINY)
        delta = x_adv - x
        delta = delta * (eps / _per_example_norm(delta).clamp_min(_TINY)).clamp(max=1.0)
        x_adv = x + delta
    return x_adv.clamp(0.0, 1.0)


def trades_attack(model: torch.nn.Module, x: torch.Tensor, *, eps: float, step: float, steps: int,
                  norm: str = "linf", generator: Optional[torch.Generator] = None,
                  clean_probs: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The TRADES inner maximisation: ``x_adv`` maximising ``KL(softmax f(x) || softmax f(x_adv))``.

    Args:
        model: maps ``(N, C, H, W)`` in [0, 1] to logits; run in eval mode here and returned to
            the mode it was in.
        x: clean batch ``(N, C, H, W)`` in [0, 1].
        eps: radius of the ball, in pixel units ([0, 1] scale; l-inf or l2 per ``norm``).
        step: step size, same units: each step moves every pixel by ``step`` (l-inf, sign of the
            gradient) or the whole image by ``step`` in l2 (normalised gradient).
        steps: ascent steps; 0 returns the random start.
        norm: "linf" or "l2".
        generator: source of the start noise (seeded for repeatable runs; on ``x``'s device).
        clean_probs: ``softmax(f(x))`` in eval mode, if already computed.

    Returns:
        ``x_adv`` ``(N, C, H, W)``, detached. It starts at ``x + 0.001 * N(0, 1)`` (not clipped,
        as in the paper's reference; with ``steps = 0`` that is the result) and after each step
        is projected onto the ball and clipped to [0, 1].
    """
    _check_attack(eps, step, steps, norm)
    x = x.detach()
    was_training = model.training
    model.eval()  # batch-norm statistics must neither move nor depend on the attack batch
    try:
        if clean_probs is None:
            with torch.no_grad():
                clean_probs = F.softmax(model(x), dim=1)
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x_adv = x + INIT_NOISE * noise
        for _ in range(steps):
            x_adv.requires_grad_(True)
            # Sum, not mean: each example's gradient is then independent of the batch size.
            kl = F.kl_div(F.log_softmax(model(x_adv), dim=1), clean_probs, reduction="sum")
            (grad,) = torch.autograd.grad(kl, x_adv)  # input gradient only, no parameter .grad
            with torch.no_grad():
                x_adv = _ascent_step(x_adv, grad, x, eps, step, norm)
    finally:
        model.train(was_training)
    return x_adv.detach()


def trades_terms(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, beta: float,
                 attacks: Sequence[dict], steps: int,
                 generator: Optional[torch.Generator] = None) -> TradesTerms:
    """TRADES loss with one KL term per attack, averaged: ``CE + beta * mean_a KL_a``.

    ``attacks`` holds dicts with keys ``norm``, ``eps``, ``step`` (see :func:`trades_attack`);
    they run in order, each from its own random start drawn from ``generator``. The loss is
    computed in the model's current mode (train mode during training).
    """
    _check_beta(beta)
    if not attacks:
        raise InputError("attacks must name at least one attack")
    was_training = model.training
    model.eval()
    with torch.no_grad():  # the attacks' fixed target, shared by all of them
        clean_probs = F.softmax(model(x), dim=1)
    model.train(was_training)
    adversarial = [trades_attack(model, x, steps=steps, generator=generator, clean_probs=clean_probs,
                                 **attack) for attack in attacks]

    logits = model(x)
    natural_loss = F.cross_entropy(logits, y)
    probs = F.softmax(logits, dim=1)  # not detached: the KL term trains the clean branch too
    kls = [F.kl_div(F.log_softmax(model(x_adv), dim=1), probs, reduction="batchmean")
           for x_adv in adversarial]
    robust_loss = torch.stack(kls).mean()
    return TradesTerms(natural_loss + beta * robust_loss, natural_loss, robust_loss, logits)


def trades_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, beta: float, eps: float,
                step: float, steps: int, norm: str = "linf",
                generator: Optional[torch.Generator] = None):
    """TRADES loss against one attack (see the module docs).

    Args:
        model: in the mode the loss should use (train mode for training; the attack itself
            runs in eval mode).
        x: clean batch ``(N, C, H, W)`` in [0, 1]; y: labels ``(N,)`` int64.
        beta: weight of the KL term (6 in the paper); eps, step, steps, norm, generator: the
            attack, see :func:`trades_attack`.

    Returns:
        ``(loss, natural_loss, robust_loss)``, scalar tensors; ``loss`` is differentiable.
    """
    terms = trades_terms(model, x, y, beta=beta, steps=steps, generator=generator,
                         attacks=[dict(norm=norm, eps=eps, step=step)])
    return terms.loss, terms.natural_loss, terms.robust_loss


def trades_l2linf_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, beta: float,
                       eps_linf: float, step_linf: float, eps_l2: float, step_l2: float, steps: int,
                       generator: Optional[torch.Generator] = None):
    """TRADES against both an l-inf and an l2 attack: ``CE + beta * (KL_linf + KL_l2) / 2``.

    The two KL terms are averaged rather than summed so that ``beta`` keeps the meaning it has
    in :func:`trades_loss` (the weight of the robustness penalty as a whole). Both attacks run
    ``steps`` steps, the l-inf one first. Returns ``(loss, natural_loss, robust_loss)`` with
    ``robust_loss = (KL_linf + KL_l2) / 2``.
    """
    terms = trades_terms(model, x, y, beta=beta, steps=steps, generator=generator,
                         attacks=[dict(norm="linf", eps=eps_linf, step=step_linf),
                                  dict(norm="l2", eps=eps_l2, step=step_l2)])
    return terms.loss, terms.natural_loss, terms.robust_loss
