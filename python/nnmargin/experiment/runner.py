"""``run_experiment``: 1NN certificates vs attacked networks on binary class pairs, resumable.

Work is split into *units* (pair, method, split, norm). Each finished unit is written at once to
the output folder's SQLite store (:mod:`.store`), and each trained network is checkpointed to
``<out>/models/<pair>_<method>.pt`` before it is attacked, so a run interrupted at any point and
started again with the same command redoes at most the unit (or training) it was in.
"""
from __future__ import annotations

import dataclasses
import sqlite3
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from .. import attacks, datasets
from .._errors import InputError
from ..trainset import TrainSet
from .config import METHODS, NORMS, SPLITS, Settings, neighbours_of, pair_name, parse_methods
from .onenn import one_nn_robust_accuracy, split_arrays
from .store import ResultStore


def _fmt_s(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


class NetworkTrainer:
    """Trains, checkpoints and reloads networks with :mod:`nnmargin.train` and :mod:`nnmargin.models`.

    ``dataset`` "sample" (the embedded MNIST subset) uses the MNIST model and defaults. Tests can
    pass a stand-in object with the same three methods to :func:`run_experiment`.
    """

    def __init__(self, dataset: str, overrides: dict, seed: int, device: str):
        self.dataset = "mnist" if dataset == "sample" else dataset
        self.overrides, self.seed, self.device = dict(overrides), seed, device

    def train(self, method: str, x, y, progress: bool):
        """Train a fresh ``model_for(dataset)`` on uint8 images ``x`` (N, ...) and labels ``y`` (N,)."""
        import torch

        from .. import models, train

        config = train.default_config(self.dataset, method, seed=self.seed, device=self.device, **self.overrides)
        torch.manual_seed(self.seed)  # identical initial weights for every method of a pair
        return train.train_model(models.model_for(self.dataset), x, y, config, progress=progress)

    def save(self, result, path: Path) -> None:
        from .. import train

        train.save_checkpoint(result, path)  # atomic: temporary file, then rename

    def load(self, path: Path):
        from .. import train

        result = train.load_checkpoint(path, self.dataset)
        result.model.to(self.device)
        return result


@dataclasses.dataclass
class RunSummary:
    """What one call of :func:`run_experiment` did."""

    out_dir: Path
    units_total: int
    units_skipped: int
    units_done: int
    trained: List[str]
    seconds: float
    stages: Dict[str, float]


def load_arrays(dataset: str, data_dir=None):
    """(x_train, y_train, x_test, y_test) of a whole dataset (uint8 images, int64 labels)."""
    if dataset == "sample":
        s = datasets.load_sample()
        return s.x_train, s.y_train, s.x_test, s.y_test
    return (*datasets.load(dataset, "train", data_dir), *datasets.load(dataset, "test", data_dir))


def make_pair(arrays, pair: Tuple[int, int], limit: Optional[int], dataset: str):
    """The binary problem ``pair`` (labels 0 / 1), keeping the first ``limit`` points of each split
    in file order (deterministic; the files' order is already shuffled across classes)."""
    p = datasets.pair_from_arrays(*arrays, *pair, relabel=True, dataset=dataset)
    return dataclasses.replace(p, x_train=p.x_train[:limit], y_train=p.y_train[:limit],
                               x_test=p.x_test[:limit], y_test=p.y_test[:limit])


def run_experiment(dataset: str, pairs: Sequence[Tuple[int, int]], methods: Sequence[str], out_dir, *,
                   eps_linf=None, eps_l2=None, splits: Sequence[str] = SPLITS, limit: Optional[int] = None,
                   eval_limit: Optional[int] = None, train_overrides: Optional[dict] = None,
                   attack_iters: int = 100, attack_restarts: int = 1, attack_batch_size: int = 500,
                   bound: str = "margin", device: str = "cpu", data_dir=None, seed: int = 0,
                   progress: bool = True, trainer=None, log: Optional[Callable[[str], None]] = None) -> RunSummary:
    """Evaluate ``methods`` on the class ``pairs`` of ``dataset``; results go to ``out_dir``.

    For every pair, method, split and norm (l∞ and l2) this stores the clean accuracy and the
    robust accuracy at each eps of the sweep: certified (lower bounds) for "1nn", APGD-CE attack
    results (upper bounds) for the networks. Units already in ``out_dir`` are skipped; networks
    already checkpointed there are loaded, not retrained.

    Args:
        dataset: "mnist", "fashion-mnist", "cifar10" (or an alias), or "sample".
        pairs: class pairs (a, b); methods: subset of :data:`~.config.METHODS`.
        eps_linf, eps_l2: sweeps on the [0, 1] pixel scale (default per dataset, see :mod:`.config`).
        splits: which splits to evaluate ("train", "test").
        limit: keep the first ``limit`` train and test points of each pair (training set size).
        eval_limit: certify / attack only the first ``eval_limit`` points of each split.
        train_overrides: :class:`~nnmargin.train.TrainConfig` fields to change (e.g. epochs).
        attack_iters, attack_restarts, attack_batch_size: APGD budget and batch.
        bound: 1NN bound (see :mod:`.onenn`). device: torch device for the networks.
        data_dir: dataset root (default: $NNMARGIN_DATA or ~/.cache/nnmargin). seed: training
            and attack seed. progress: log lines to stderr (and training progress).
        trainer: stand-in for :class:`NetworkTrainer` (tests). log: replaces the stderr logger.

    Raises:
        SettingsMismatch: ``out_dir`` holds results made with other settings.
    """
    started = time.perf_counter()
    settings = Settings.make(dataset, eps_linf=eps_linf, eps_l2=eps_l2, limit=limit, eval_limit=eval_limit,
                             attack_iters=attack_iters, attack_restarts=attack_restarts, bound=bound,
                             seed=seed, train_overrides=train_overrides)
    dataset = settings.dataset
    methods = parse_methods(methods)
    for split in splits:
        if split not in SPLITS:
            raise InputError(f"split must be one of {SPLITS}, got {split!r}")
    if log is None:
        log = (lambda text: print(text, file=sys.stderr, flush=True)) if progress else (lambda text: None)
    out_dir = Path(out_dir)
    trainer = trainer or NetworkTrainer(dataset, dict(settings.train_overrides), seed, device)
    stages: Dict[str, float] = {"load": 0.0, "1nn": 0.0, "train": 0.0, "attack": 0.0}
    trained: List[str] = []

    with ResultStore(out_dir) as store:
        store.bind_settings(settings)
        done = store.finished()
        todo = [(p, m, s, n) for p in pairs for m in methods for s in splits for n in NORMS
                if (dataset, pair_name(p), m, s, n) not in done]
        total = len(pairs) * len(methods) * len(splits) * len(NORMS)
        summary = RunSummary(out_dir, total, total - len(todo), 0, trained, 0.0, stages)
        log(f"[{dataset}] {total} units ({len(pairs)} pairs x {len(methods)} methods x {len(splits)} splits "
            f"x {len(NORMS)} norms): {total - len(todo)} already in {out_dir}, {len(todo)} to do")
        if not todo:
            summary.seconds = time.perf_counter() - started
            return summary

        t0 = time.perf_counter()
        arrays = load_arrays(dataset, data_dir)
        stages["load"] += time.perf_counter() - t0
        log(f"[{dataset}] loaded {len(arrays[1])} train / {len(arrays[3])} test images in {_fmt_s(stages['load'])}")

        def record(pair, method, split, norm, *, kind, detail, n, n_clean, eps, n_robust, seconds, extra):
            try:
                store.add_unit(dataset=dataset, pair=pair_name(pair), method=method, split=split, norm=norm,
                               kind=kind, detail=detail, n=n, n_clean=n_clean, eps=eps, n_robust=n_robust,
                               seconds=seconds, extra=extra)
            except sqlite3.IntegrityError:  # another process finished the same unit meanwhile
                log(f"  (unit {pair_name(pair)} {method} {split} {norm} was already stored; kept that one)")
                return
            summary.units_done += 1
            robust = "  ".join(f"{e:g}:{100 * c / max(n, 1):.1f}%" for e, c in zip(eps, n_robust))
            log(f"  [{summary.units_skipped + summary.units_done}/{total} units, {_fmt_s(time.perf_counter() - started)}] "
                f"{pair_name(pair)} {method:<13} {split:<5} {norm:<4} clean {100 * n_clean / max(n, 1):.1f}%  "
                f"robust {robust}  ({_fmt_s(seconds)})")

        todo_pairs = [p for p in pairs if any(u[0] == p for u in todo)]
        pairs_started = time.perf_counter()
        for index, pair in enumerate(todo_pairs):
            if index:  # a simple ETA from the pairs finished in this call
                per_pair = (time.perf_counter() - pairs_started) / index
                log(f"[{dataset}] {index}/{len(todo_pairs)} pairs done in this run, "
                    f"eta {_fmt_s(per_pair * (len(todo_pairs) - index))}")
            pair_todo = [u for u in todo if u[0] == pair]
            trainsets: dict = {}  # the pair's prepared training set, shared by its nearest-neighbour methods
            data = make_pair(arrays, pair, settings.limit, dataset)
            log(f"[{dataset} {pair_name(pair)}] {len(data.y_train)} train / {len(data.y_test)} test points; "
                f"evaluating {settings.eval_limit or 'all'} per split")
            for method in METHODS:
                units = [(s, n) for (p, m, s, n) in pair_todo if m == method]
                if not units:
                    continue
                if neighbours_of(method):
                    t0 = time.perf_counter()
                    _run_nn(data, units, settings, record, pair, method, trainsets)
                    stages["1nn"] += time.perf_counter() - t0
                    continue
                t0 = time.perf_counter()
                model = _get_network(trainer, store, out_dir, dataset, pair, method, data, progress, log, trained)
                stages["train"] += time.perf_counter() - t0
                for split, norm in units:
                    t0 = time.perf_counter()
                    x, y = split_arrays(data, split, settings.eval_limit)
                    label = f"attack {pair_name(pair)} {method} {split} {norm}"
                    # a bar on a terminal only (disable=None), never in logs
                    with tqdm(total=len(settings.eps(norm)), desc=label, unit="eps", leave=False,
                              disable=None if progress else True) as bar:
                        sweep = attacks.apgd_sweep(model, x, y, norm, settings.eps(norm),
                                                   n_iter=settings.attack_iters, n_restarts=settings.attack_restarts,
                                                   batch_size=attack_batch_size, device=device, seed=seed,
                                                   progress=lambda k: bar.update(1))
                    seconds = time.perf_counter() - t0
                    stages["attack"] += seconds
                    record(pair, method, split, norm, kind="attack",
                           detail=f"APGD-CE {settings.attack_iters} iters x {settings.attack_restarts} restarts",
                           n=len(y), n_clean=int(sweep.clean_correct.sum()), eps=sweep.eps,
                           n_robust=sweep.robust_correct.sum(axis=1), seconds=seconds,
                           extra={"eps_seconds": sweep.seconds.tolist(), "clean_seconds": sweep.clean_seconds})
    summary.seconds = time.perf_counter() - started
    log(f"[{dataset}] done: {summary.units_done} new units in {_fmt_s(summary.seconds)} (" +
        ", ".join(f"{k} {_fmt_s(v)}" for k, v in stages.items()) + ")")
    return summary


def _run_nn(data, units, settings: Settings, record, pair, method: str, trainsets: dict) -> None:
    """Certify the l2 nearest-neighbour classifier ``method`` ("1nn", "3nn", ...) of ``data`` for
    each (split, norm) in ``units`` and record the results."""
    if "train" not in trainsets:
        trainsets["train"] = TrainSet(data.x_train, data.y_train)  # prepared once for all units
    k = neighbours_of(method)
    bound = settings.bound if k == 1 else "margin"  # k > 1: the relaxation (see nnmargin.knn)
    for split, norm in units:
        res = one_nn_robust_accuracy(data, split, norm, settings.eps(norm), bound,
                                     eval_limit=settings.eval_limit, trainset=trainsets["train"], k=k)
        ok = res.radius[res.correct]
        extra = {"radius_min": float(ok.min()) if ok.size else None,
                 "radius_median": float(np.median(ok)) if ok.size else None}
        detail = f"l2-1NN, bound={res.bound}" if k == 1 else f"l2-{k}NN, relaxation bound"
        record(pair, method, split, norm, kind=res.kind, detail=detail, n=len(res.correct),
               n_clean=int(res.correct.sum()), eps=res.eps, n_robust=res.robust_correct.sum(axis=1),
               seconds=res.seconds, extra=extra)


def _get_network(trainer, store: ResultStore, out_dir: Path, dataset: str, pair, method: str, data,
                 progress: bool, log, trained: List[str]):
    """The trained network of (pair, method): loaded from its checkpoint, else trained and saved."""
    path = out_dir / "models" / f"{pair_name(pair)}_{method}.pt"
    if path.is_file():
        log(f"  {pair_name(pair)} {method}: loading checkpoint {path}")
        result = trainer.load(path)
        have = {(t["pair"], t["method"]) for t in store.trainings()}
        if (pair_name(pair), method) in have:
            return result.model
        # Killed between saving the checkpoint and recording it: record it from the checkpoint.
    else:
        log(f"  {pair_name(pair)} {method}: training on {len(data.y_train)} points")
        result = trainer.train(method, data.x_train, data.y_train, progress)
        trainer.save(result, path)
        trained.append(f"{pair_name(pair)}_{method}")
    history = list(result.history)
    store.add_training(dataset=dataset, pair=pair_name(pair), method=method, seconds=result.seconds,
                       n_train=len(data.y_train), config=dataclasses.asdict(result.config), history=history,
                       checkpoint=str(path.relative_to(out_dir)))
    last = history[-1] if history else {}
    log(f"  {pair_name(pair)} {method}: trained in {_fmt_s(result.seconds)} ({len(history)} epochs, "
        f"last train acc {100 * last.get('train_acc', float('nan')):.1f}%)")
    return result.model
