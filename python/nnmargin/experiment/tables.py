"""Reading experiment folders back and aggregating their units for the report.

A :class:`Run` is one output folder of :func:`~.runner.run_experiment`: its settings and units. All
aggregates are plain means over class pairs of per-pair accuracies (fractions in [0, 1]).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .._errors import InputError
from .config import HEADLINE_EPS, METHODS, NORMS, SPLITS, TRADES_METHODS, Settings, neighbours_of
from .store import ResultStore

# Training runs whose last-epoch training accuracy is below this did not learn the problem
# (a binary task: 0.5 is chance); the report flags them instead of hiding them.
FAILED_TRAIN_ACC = 0.6


@dataclasses.dataclass
class Run:
    """One experiment folder: ``units[(pair, method, split, norm)]`` is a unit dict of the store."""

    path: Path
    settings: Settings
    units: Dict[Tuple[str, str, str, str], dict]
    trainings: List[dict]

    @property
    def dataset(self) -> str:
        return self.settings.dataset

    @property
    def label(self) -> str:
        return f"{self.dataset} ({self.path.name})"

    @property
    def pairs(self) -> List[str]:
        return sorted({k[0] for k in self.units}, key=lambda p: tuple(int(c) for c in p.split("-")))

    @property
    def methods(self) -> List[str]:
        present = {k[1] for k in self.units}
        return [m for m in METHODS if m in present]

    def eps(self, norm: str) -> List[float]:
        return list(self.settings.eps(norm))

    def headline_eps(self, norm: str) -> float:
        """The eps the per-pair comparison uses: the dataset's headline value if swept, else the
        middle of the sweep."""
        eps = self.eps(norm)
        wanted = HEADLINE_EPS.get(self.dataset, {}).get(norm)
        if wanted is not None:
            close = [e for e in eps if abs(e - wanted) <= 1e-9 * max(1.0, wanted)]
            if close:
                return close[0]
        return eps[len(eps) // 2]

    def robust(self, pair: str, method: str, split: str, norm: str, eps: float) -> Optional[float]:
        """Robust accuracy of one unit at ``eps`` (None if not run); eps 0 means clean."""
        unit = self.units.get((pair, method, split, norm))
        if unit is None:
            return None
        if eps == 0:
            return unit["clean_acc"]
        return unit["robust_acc"][eps_index(unit["eps"], eps)]

    def clean(self, pair: str, method: str, split: str) -> Optional[float]:
        for norm in NORMS:  # both norms store the same clean accuracy
            unit = self.units.get((pair, method, split, norm))
            if unit is not None:
                return unit["clean_acc"]
        return None

    def best_trades(self, pair: str, split: str, norm: str, eps: float,
                    methods: Sequence[str] = TRADES_METHODS) -> Tuple[Optional[float], Optional[str]]:
        """Highest attack robust accuracy among ``methods`` (the TRADES variants) on ``pair``, and
        which method it is."""
        found = [(self.robust(pair, m, split, norm, eps), m) for m in methods]
        found = [(v, m) for v, m in found if v is not None]
        return max(found) if found else (None, None)

    def failed_trainings(self) -> List[dict]:
        return [t for t in self.trainings if t["history"] and t["history"][-1].get("train_acc", 1.0) < FAILED_TRAIN_ACC]


def eps_index(eps_list: Sequence[float], eps: float) -> int:
    for i, e in enumerate(eps_list):
        if abs(e - eps) <= 1e-9 * max(1.0, abs(eps)):
            return i
    raise KeyError(f"eps {eps} not in {list(eps_list)}")


def load_run(path) -> Run:
    """Read an experiment folder (``results.sqlite``)."""
    with ResultStore(path, create=False) as store:
        settings = store.settings()
        if settings is None:
            raise InputError(f"{path}: results store has no settings (not made by run_experiment)")
        units = {(u["pair"], u["method"], u["split"], u["norm"]): u for u in store.units()}
        return Run(Path(path), settings, units, store.trainings())


def mean_over_pairs(run: Run, method: str, split: str, norm: Optional[str], eps: float = 0.0) -> Tuple[float, int]:
    """(mean accuracy over the pairs that have this unit, number of such pairs); ``norm=None`` and
    eps 0 give the clean accuracy."""
    values = []
    for pair in run.pairs:
        v = run.clean(pair, method, split) if norm is None else run.robust(pair, method, split, norm, eps)
        if v is not None:
            values.append(v)
    return (float(np.mean(values)) if values else float("nan")), len(values)


def head_to_head(run: Run, split: str, norm: str, eps: float, methods: Sequence[str] = TRADES_METHODS) -> dict:
    """1NN (exact or certified lower bound) vs the best of ``methods`` (attack upper bounds) per pair.

    ``wins`` counts pairs where the 1NN value is >= the TRADES value. The 1NN value is exact or a
    lower bound and the TRADES value an upper bound, so each such pair is one where the true 1NN
    robust accuracy is at least the true TRADES one (the converse is not proven).
    Returns dict with ``pairs`` (names), ``one_nn`` and ``trades`` (lists), ``wins``, ``n``.
    """
    pairs, nn, tr = [], [], []
    for pair in run.pairs:
        a = run.robust(pair, "1nn", split, norm, eps)
        b, _ = run.best_trades(pair, split, norm, eps, methods)
        if a is not None and b is not None:
            pairs.append(pair)
            nn.append(a)
            tr.append(b)
    wins = sum(a >= b for a, b in zip(nn, tr))
    return {"pairs": pairs, "one_nn": nn, "trades": tr, "wins": int(wins), "n": len(pairs)}


def bound_mark(run: Run, method: str) -> str:
    """"=" (exact 1NN), "≥" (certified 1NN lower bound) or "≤" (network attack upper bound)."""
    if neighbours_of(method) is None:
        return "≤"
    kinds = {u["kind"] for k, u in run.units.items() if k[1] == method}
    return "=" if kinds == {"exact"} else "≥"


def method_label(run: Run, method: str) -> str:
    """Legend text: what kind of bound the method's robust numbers are."""
    if method == "1nn":
        if bound_mark(run, method) == "=":
            return "1NN (exact)"
        return f"1NN (certified ≥, {run.settings.bound} bound)"
    if neighbours_of(method):
        return f"{neighbours_of(method)}-NN (certified ≥, relaxation)"
    return f"{method} (APGD ≤)"


def splits_norms(run: Run) -> List[Tuple[str, str]]:
    present = {(k[2], k[3]) for k in run.units}
    return [(s, n) for s in SPLITS for n in NORMS if (s, n) in present]
