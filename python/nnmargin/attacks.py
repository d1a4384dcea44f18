"""Attack-based (upper-bound) robust accuracy of torch classifiers, with the reference APGD.

The attack is Croce & Hein's APGD (``pyautoattack.autopgd_base.APGDAttack``, used as a dependency)
with the cross-entropy loss: the DLR losses need at least three classes, and the binary problems
this package studies have two. As is standard, only clean-correct points are attacked; a point
counts as robust when the model still classifies the attack's output correctly.

The numbers this module returns are **upper bounds** on the true robust accuracy (an attack that
fails does not prove that no adversarial example exists), unlike the 1NN radii of
:func:`nnmargin.certify`, which are certified lower bounds (or exact).

Images: uint8 arrays/tensors ``(N, H, W)`` (grey) or ``(N, H, W, C)`` (colour, channel last, as
:mod:`nnmargin.datasets` loads them) are scaled by 1/255 to float32 NCHW on the [0, 1] pixel scale;
float tensors are taken as already NCHW on [0, 1]. ``eps`` is on that [0, 1] scale, in the l∞ or
l2 norm of the whole image.
"""
from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from ._errors import InputError, InputTypeError

if TYPE_CHECKING:  # torch is imported lazily at run time: `import nnmargin` must not need it
    import torch

NORMS = {"linf": "Linf", "l2": "L2"}  # our name -> pyautoattack's name
# Tolerance of the eps-ball check: the attack adds float32 perturbations to float32 images, so the
# realised norm may exceed eps by a few float32 roundings (relative ~1e-7 per coordinate; the l2
# norm of a 3072-d vector adds a few more). Anything past this is a real bug and raises.
BALL_RTOL = 1e-5
BALL_ATOL = 1e-6


class AttackError(RuntimeError):
    """The attack produced an input outside the eps-ball or outside [0, 1]."""


@dataclasses.dataclass
class APGDResult:
    """Robust accuracy of a model at one perturbation size, found by APGD (an upper bound).

    Attributes:
        norm: "linf" or "l2".
        eps: perturbation size on the [0, 1] pixel scale.
        clean_correct: (N,) bool, the model classifies the clean input correctly.
        robust_correct: (N,) bool, correct on clean input and on the attack's output (a subset of
            ``clean_correct``).
        seconds: wall time of the attack (clean pass included).
        n_iter, n_restarts: attack budget.
        max_perturbation: largest realised ``||x_adv - x||`` in ``norm`` over the points (float64).
        x_adv: (N, C, H, W) float32 attack outputs (the clean input where the attack failed or was
            not run), only when requested with ``keep_adv=True``.
    """

    norm: str
    eps: float
    clean_correct: np.ndarray
    robust_correct: np.ndarray
    seconds: float
    n_iter: int
    n_restarts: int
    max_perturbation: float = 0.0
    x_adv: Optional["torch.Tensor"] = None

    @property
    def clean_acc(self) -> float:
        """Fraction of points classified correctly without perturbation."""
        return float(self.clean_correct.mean()) if self.clean_correct.size else float("nan")

    @property
    def robust_acc(self) -> float:
        """Fraction of points the attack could not make misclassified (upper bound)."""
        return float(self.robust_correct.mean()) if self.robust_correct.size else float("nan")


@dataclasses.dataclass
class SweepResult:
    """Attack robust accuracy at several eps of one norm (all upper bounds).

    Attributes:
        norm: "linf" or "l2".
        eps: (K,) float64 perturbation sizes, in the order given.
        clean_correct: (N,) bool.
        robust_correct: (K, N) bool; row k is the points robust at ``eps[k]``. Non-increasing in
            eps by construction: a point broken at some eps is broken at every larger one.
        seconds: (K,) wall time spent attacking at each eps (the clean pass is in ``clean_seconds``).
        clean_seconds: wall time of the clean pass.
        n_iter, n_restarts: attack budget.
    """

    norm: str
    eps: np.ndarray
    clean_correct: np.ndarray
    robust_correct: np.ndarray
    seconds: np.ndarray
    clean_seconds: float
    n_iter: int
    n_restarts: int

    @property
    def clean_acc(self) -> float:
        return float(self.clean_correct.mean()) if self.clean_correct.size else float("nan")

    @property
    def robust_acc(self) -> np.ndarray:
        """(K,) robust accuracy at each eps."""
        if not self.clean_correct.size:
            return np.full(len(self.eps), np.nan)
        return self.robust_correct.mean(axis=1)


def _torch():
    import torch

    return torch


def images_to_tensor(x) -> "torch.Tensor":
    """Images as a float32 NCHW tensor on the [0, 1] scale (see the module docstring)."""
    torch = _torch()
    if isinstance(x, torch.Tensor) and x.dtype != torch.uint8:
        if x.ndim != 4:
            raise InputError(f"float image tensors must be NCHW (4-d), got shape {tuple(x.shape)}")
        if x.numel() and (not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1):
            raise InputError("float images must be finite and on the [0, 1] scale")
        return x.float()
    arr = x.cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.dtype != np.uint8:
        raise InputTypeError(f"expected uint8 images or a float NCHW tensor, got {arr.dtype} array")
    if arr.ndim == 3:  # (N, H, W) grey
        arr = arr[:, None, :, :]
    elif arr.ndim == 4:  # (N, H, W, C) channel last
        arr = arr.transpose(0, 3, 1, 2)
    else:
        raise InputError(f"uint8 images must be (N, H, W) or (N, H, W, C), got shape {arr.shape}")
    return torch.from_numpy(np.ascontiguousarray(arr)).float().div_(255.0)


def _labels(y, n: int) -> np.ndarray:
    torch = _torch()
    arr = y.cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if arr.shape != (n,) or arr.dtype.kind not in "iu":
        raise InputError(f"labels must be an integer array of shape ({n},), got {arr.dtype}{arr.shape}")
    return arr.astype(np.int64)


def _check_norm_eps(norm: str, eps) -> None:
    if norm not in NORMS:
        raise InputError(f"norm must be one of {tuple(NORMS)}, got {norm!r}")
    eps_arr = np.atleast_1d(np.asarray(eps, dtype=np.float64))
    if not np.all(np.isfinite(eps_arr)) or np.any(eps_arr < 0):
        raise InputError(f"eps must be finite and >= 0, got {eps!r}")


def _predict(model, x, batch_size: int, device) -> np.ndarray:
    """(N,) argmax of the model's logits, in batches, without gradients."""
    torch = _torch()
    out = []
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            out.append(model(x[start:start + batch_size].to(device)).argmax(1).cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)


def perturbation_norms(x_adv, x, norm: str) -> np.ndarray:
    """(N,) float64 ``||x_adv - x||`` per image in ``norm`` ("linf" or "l2")."""
    delta = (x_adv.detach().cpu().double() - x.detach().cpu().double()).reshape(x.shape[0], -1)
    if norm == "linf":
        return delta.abs().amax(1).numpy() if delta.shape[1] else np.zeros(x.shape[0])
    return delta.pow(2).sum(1).sqrt().numpy()


def check_adversarial(x_adv, x, norm: str, eps: float) -> float:
    """Raise :class:`AttackError` unless every ``x_adv`` is finite, in [0, 1] and within eps of ``x``.

    Returns the largest perturbation norm found. The ball check allows ``BALL_RTOL * eps +
    BALL_ATOL`` for float32 rounding.
    """
    torch = _torch()
    if x_adv.shape != x.shape:
        raise AttackError(f"attack output shape {tuple(x_adv.shape)} differs from input {tuple(x.shape)}")
    if not x_adv.numel():
        return 0.0
    if not torch.isfinite(x_adv).all():
        raise AttackError("attack output contains nan or inf")
    low, high = float(x_adv.min()), float(x_adv.max())
    if low < 0.0 or high > 1.0:
        raise AttackError(f"attack output leaves [0, 1]: min {low!r}, max {high!r}")
    norms = perturbation_norms(x_adv, x, norm)
    worst = float(norms.max())
    if worst > eps * (1 + BALL_RTOL) + BALL_ATOL:
        raise AttackError(f"attack output outside the {norm} ball: ||x_adv - x|| = {worst!r} > eps = {eps!r}")
    return worst


def _attack(model, x, y, norm: str, eps: float, n_iter: int, n_restarts: int, batch_size: int,
            device, seed: int):
    """APGD-CE on every point of ``x`` (N, C, H, W) with labels ``y`` (N,) int64 tensor.

    Returns ``(fooled (N,) bool, x_adv (N, C, H, W) cpu float32, max_perturbation)``; every batch is
    checked with :func:`check_adversarial` before its outcome is used.
    """
    torch = _torch()
    from pyautoattack.autopgd_base import APGDAttack

    fooled = np.zeros(x.shape[0], dtype=bool)
    x_adv_all = x.clone()
    worst = 0.0
    if eps == 0 or not x.shape[0]:
        return fooled, x_adv_all, worst
    for batch, start in enumerate(range(0, x.shape[0], batch_size)):
        xb = x[start:start + batch_size].to(device)
        yb = y[start:start + batch_size].to(device)
        # A distinct seed per batch: APGD draws its random start from the global RNG seeded with it.
        attack = APGDAttack(model, n_iter=n_iter, norm=NORMS[norm], n_restarts=n_restarts, eps=float(eps),
                            seed=seed + batch, loss="ce", device=device, verbose=False)
        adv = attack.perturb(xb, yb).detach()
        worst = max(worst, check_adversarial(adv, xb, norm, eps))
        with torch.no_grad():
            still_right = (model(adv).argmax(1) == yb).cpu().numpy()
        fooled[start:start + batch_size] = ~still_right
        x_adv_all[start:start + batch_size] = adv.cpu()
    return fooled, x_adv_all, worst


class _EvalMode:
    """Put the model in eval mode on ``device`` and keep the caller's RNG state untouched.

    APGD seeds torch's global generator; forking it means running an attack does not change the
    random numbers the caller draws next (e.g. in training that follows an evaluation).
    """

    def __init__(self, model, device):
        torch = _torch()
        self.model, self.device = model, torch.device(device)
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        self._fork = torch.random.fork_rng(devices=devices)

    def __enter__(self):
        self._was_training = self.model.training
        self.model.to(self.device).eval()
        self._fork.__enter__()
        return self.model

    def __exit__(self, *exc):
        self._fork.__exit__(*exc)
        self.model.train(self._was_training)


def apgd_robust_accuracy(model, x, y, *, norm: str = "linf", eps: float, n_iter: int = 100,
                         n_restarts: int = 1, batch_size: int = 500, device="cpu", seed: int = 0,
                         keep_adv: bool = False) -> APGDResult:
    """Robust accuracy of ``model`` against APGD-CE at one ``eps`` (an upper bound).

    Args:
        model: torch module mapping float NCHW [0, 1] images to (N, num_classes) logits. It is
            moved to ``device`` and evaluated in eval mode (its previous mode is restored).
        x: (N, H, W) / (N, H, W, C) uint8 images or an (N, C, H, W) float tensor on [0, 1].
        y: (N,) integer labels.
        norm: "linf" or "l2"; eps: perturbation size on the [0, 1] scale in that norm.
        n_iter, n_restarts: APGD budget (iterations per restart, random restarts).
        batch_size: points attacked together. device: torch device of the model.
        seed: seed of APGD's random starts (batch b uses seed + b).
        keep_adv: also return the attack outputs (N, C, H, W) in ``x_adv``.

    Raises:
        AttackError: an attack output is outside the eps-ball or [0, 1] (checked for every batch).
    """
    _check_norm_eps(norm, eps)
    torch = _torch()
    start = time.perf_counter()
    xt = images_to_tensor(x)
    yt = torch.from_numpy(_labels(y, xt.shape[0]))
    with _EvalMode(model, device):
        clean = _predict(model, xt, batch_size, device) == yt.numpy()
        idx = np.flatnonzero(clean)
        fooled, adv, worst = _attack(model, xt[idx], yt[idx], norm, float(eps), n_iter, n_restarts,
                                     batch_size, device, seed)
    robust = clean.copy()
    robust[idx[fooled]] = False
    x_adv = None
    if keep_adv:
        x_adv = xt.clone()
        x_adv[idx] = adv
    return APGDResult(norm, float(eps), clean, robust, time.perf_counter() - start, n_iter, n_restarts,
                        worst, x_adv)


def apgd_sweep(model, x, y, norm: str, eps_list: Sequence[float], *, n_iter: int = 100, n_restarts: int = 1,
               batch_size: int = 500, device="cpu", seed: int = 0, progress=None) -> SweepResult:
    """Attack robust accuracy at each eps in ``eps_list`` (upper bounds), for one norm.

    The eps are attacked in increasing order and each attack only targets the points still robust
    at the previous (smaller) eps: the smaller ball lies inside the larger one, so an adversarial
    example found there is valid here too. This keeps the curve monotone and saves most of the work
    at large eps. Arguments as in :func:`apgd_robust_accuracy`; ``progress``, if given, is called as
    ``progress(k)`` after the k-th eps (in increasing order) is done.
    """
    _check_norm_eps(norm, eps_list)
    torch = _torch()
    eps = np.asarray([float(e) for e in eps_list], dtype=np.float64)
    start = time.perf_counter()
    xt = images_to_tensor(x)
    yt = torch.from_numpy(_labels(y, xt.shape[0]))
    robust = np.zeros((len(eps), xt.shape[0]), dtype=bool)
    seconds = np.zeros(len(eps))
    with _EvalMode(model, device):
        clean = _predict(model, xt, batch_size, device) == yt.numpy()
        clean_seconds = time.perf_counter() - start
        alive = clean.copy()
        for done, k in enumerate(np.argsort(eps, kind="stable"), start=1):
            t0 = time.perf_counter()
            idx = np.flatnonzero(alive)
            fooled, _, _ = _attack(model, xt[idx], yt[idx], norm, float(eps[k]), n_iter, n_restarts,
                                   batch_size, device, seed)
            alive[idx[fooled]] = False
            robust[k] = alive
            seconds[k] = time.perf_counter() - t0
            if progress is not None:
                progress(done)
    return SweepResult(norm, eps, clean, robust, seconds, clean_seconds, n_iter, n_restarts)
