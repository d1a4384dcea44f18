"""What an experiment run evaluates: methods, class pairs, eps sweeps and the settings fingerprint.

Perturbation sizes are on the [0, 1] pixel scale, in the norm named (l∞ per pixel, l2 of the whole
image). Defaults per dataset:

==============  =================================  ==========================================
dataset         eps l∞                             eps l2
==============  =================================  ==========================================
mnist           0.05 0.1 0.2 0.3                   0.5 1 1.5 2 3
fashion-mnist   0.05 0.1 0.2 0.3                   0.5 1 1.5 2 3
cifar10         2/255 4/255 8/255                  0.5 1 8/255*sqrt(3072) = 1.739
==============  =================================  ==========================================

CIFAR-10 uses the seed paper's pair: TRADES is trained at l∞ 8/255 and evaluated at l2
8/255 * sqrt(3072), the l2 radius of that l∞ ball's corners. The *headline* eps of each norm (one
per dataset, used for the report's per-pair comparison) is the l∞ radius TRADES trains with in
:func:`nnmargin.training.default_config` where it is in the sweep, and for l2 a value of the same
spirit: MNIST 2 (the l2 radius "trades-l2linf" trains with), Fashion-MNIST 1, CIFAR-10 1.739.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
from typing import Dict, List, Optional, Sequence, Tuple

from .. import _names
from .._errors import InputError
from ..datasets import canonical_name

# Nearest-neighbour methods are certified (no attack): "1nn", and k-NN with k = 3, 7, 75 (the
# relaxation radius of nnmargin.knn; k = 75 is Sitawarin & Wagner's choice).
KNN_METHODS = ("1nn", "3nn", "7nn", "75nn")
NETWORK_METHODS = ("standard", "early-stop", "trades", "trades-l2linf")
METHODS = KNN_METHODS + NETWORK_METHODS
DEFAULT_METHODS = ("1nn",) + NETWORK_METHODS  # what a run evaluates unless told otherwise
TRADES_METHODS = ("trades", "trades-l2linf")
NORMS = _names.ATTACK_NORMS
BOUNDS = _names.BOUNDS  # 1NN radius bounds, loosest first (see .onenn)
SPLITS = ("train", "test")
# "sample" is the MNIST subset embedded in nnmargin (tests, demos): no files needed.
DATASETS = ("mnist", "fashion-mnist", "cifar10", "sample")

_CIFAR_L2 = 8 / 255 * math.sqrt(3 * 32 * 32)
DEFAULT_EPS: Dict[str, Dict[str, Tuple[float, ...]]] = {
    "mnist": {"linf": (0.05, 0.1, 0.2, 0.3), "l2": (0.5, 1.0, 1.5, 2.0, 3.0)},
    "fashion-mnist": {"linf": (0.05, 0.1, 0.2, 0.3), "l2": (0.5, 1.0, 1.5, 2.0, 3.0)},
    "cifar10": {"linf": (2 / 255, 4 / 255, 8 / 255), "l2": (0.5, 1.0, _CIFAR_L2)},
}
DEFAULT_EPS["sample"] = DEFAULT_EPS["mnist"]
HEADLINE_EPS = {
    "mnist": {"linf": 0.3, "l2": 2.0},
    "fashion-mnist": {"linf": 0.1, "l2": 1.0},
    "cifar10": {"linf": 8 / 255, "l2": _CIFAR_L2},
}
HEADLINE_EPS["sample"] = HEADLINE_EPS["mnist"]


def canonical_dataset(name: str) -> str:
    """"sample" or the canonical name of a benchmark dataset (aliases like "fmnist" accepted)."""
    return name if name == "sample" else canonical_name(name)


def all_pairs() -> List[Tuple[int, int]]:
    """The 45 class pairs (a, b), a < b, of a 10-class dataset."""
    return list(itertools.combinations(range(10), 2))


def parse_pairs(text: str) -> List[Tuple[int, int]]:
    """``"all"`` or a comma list like ``"3-5,0-1"`` -> [(3, 5), (0, 1)] (order kept, duplicates dropped).

    Each pair is two different classes in 0..9; "5-3" is the same problem as "3-5" and is stored
    as (3, 5) so results from either spelling land in the same place.
    """
    text = text.strip()
    if text == "all":
        return all_pairs()
    pairs: List[Tuple[int, int]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            a, b = (int(v) for v in item.split("-"))
        except ValueError:
            raise InputError(f"pair {item!r} is not of the form A-B (e.g. 3-5)") from None
        if not (0 <= a <= 9 and 0 <= b <= 9) or a == b:
            raise InputError(f"pair {item!r} needs two different classes in 0..9")
        pair = (min(a, b), max(a, b))
        if pair not in pairs:
            pairs.append(pair)
    if not pairs:
        raise InputError("no class pair given (use e.g. '3-5,0-1' or 'all')")
    return pairs


def parse_methods(text) -> List[str]:
    """``"1nn,trades"`` or a list -> validated method names (order kept, duplicates dropped)."""
    items = text.split(",") if isinstance(text, str) else list(text)
    methods: List[str] = []
    for m in (i.strip() for i in items):
        if m not in METHODS:
            raise InputError(f"unknown method {m!r}; choose from {', '.join(METHODS)}")
        if m not in methods:
            methods.append(m)
    if not methods:
        raise InputError("no method given")
    return methods


def neighbours_of(method: str) -> Optional[int]:
    """k of a nearest-neighbour method ("75nn" -> 75), None for a network method."""
    return int(method[:-2]) if method in KNN_METHODS else None


def pair_name(pair: Sequence[int]) -> str:
    """(3, 5) -> "3-5", the key results are stored under."""
    return f"{pair[0]}-{pair[1]}"


def _eps_tuple(values, what: str) -> Tuple[float, ...]:
    out = tuple(sorted({float(v) for v in values}))
    if not out or any(not math.isfinite(v) or v <= 0 for v in out):
        raise InputError(f"{what} must be a non-empty list of positive numbers, got {values!r}")
    return out


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything that changes a result's value; stored with the results of an output folder.

    Re-running into a folder with different settings is refused, so a table never mixes numbers
    produced under different settings. Which pairs, methods and splits are evaluated, the device
    and the progress output are not part of it: adding pairs or methods to a run is allowed.

    Attributes:
        dataset: canonical dataset name.
        eps_linf, eps_l2: sorted sweeps ([0, 1] pixel scale).
        limit: training (and test) points kept per pair: the first ``limit`` of each split in
            file order; None keeps all.
        eval_limit: points of each split that are certified / attacked (the first ones of the
            kept split); None evaluates all kept points.
        attack_iters, attack_restarts: APGD budget for the networks.
        bound: how the 1NN certificates are computed (see :mod:`.onenn`).
        seed: training and attack seed.
        train_overrides: ``TrainConfig`` fields changed from :func:`default_config` (e.g. epochs).
    """

    dataset: str
    eps_linf: Tuple[float, ...]
    eps_l2: Tuple[float, ...]
    limit: Optional[int] = None
    eval_limit: Optional[int] = None
    attack_iters: int = 100
    attack_restarts: int = 1
    bound: str = "margin"
    seed: int = 0
    train_overrides: Tuple[Tuple[str, object], ...] = ()

    @classmethod
    def make(cls, dataset: str, *, eps_linf=None, eps_l2=None, train_overrides=None, **kw) -> "Settings":
        """Settings with per-dataset default sweeps and validated values."""
        dataset = canonical_dataset(dataset)
        eps_linf = _eps_tuple(DEFAULT_EPS[dataset]["linf"] if eps_linf is None else eps_linf, "eps_linf")
        eps_l2 = _eps_tuple(DEFAULT_EPS[dataset]["l2"] if eps_l2 is None else eps_l2, "eps_l2")
        for name in ("limit", "eval_limit"):
            value = kw.get(name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise InputError(f"{name} must be None or a positive integer, got {value!r}")
        if kw.get("bound", "margin") not in BOUNDS:
            raise InputError(f"bound must be one of {BOUNDS}, got {kw.get('bound')!r}")
        if kw.get("attack_iters", 1) < 1 or kw.get("attack_restarts", 1) < 1:
            raise InputError("attack_iters and attack_restarts must be >= 1")
        # Through JSON and back, so the values compare equal to the ones read from a results store
        # (tuples become lists).
        overrides = tuple(sorted(json.loads(json.dumps(dict(train_overrides or {}))).items()))
        return cls(dataset, eps_linf, eps_l2, train_overrides=overrides, **kw)

    def eps(self, norm: str) -> Tuple[float, ...]:
        return self.eps_linf if norm == "linf" else self.eps_l2

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["eps_linf"], d["eps_l2"] = list(self.eps_linf), list(self.eps_l2)
        d["train_overrides"] = dict(self.train_overrides)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Settings":
        d = dict(d)
        d["eps_linf"], d["eps_l2"] = tuple(d["eps_linf"]), tuple(d["eps_l2"])
        d["train_overrides"] = tuple(sorted(d.get("train_overrides", {}).items()))
        return cls(**d)

    def fingerprint(self) -> str:
        """Short stable hash of :meth:`to_dict` (JSON with sorted keys)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def differences(self, other: "Settings") -> List[str]:
        """Human-readable ``field: ours != theirs`` lines."""
        a, b = self.to_dict(), other.to_dict()
        return [f"{k}: {a[k]!r} != {b[k]!r}" for k in a if a[k] != b.get(k)]
