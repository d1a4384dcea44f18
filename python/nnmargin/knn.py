"""The k-nearest-neighbour classifier: its vote, and a certified radius for k >= 1.

Classifier: the k training points nearest to x (distance ties: lowest training index) vote;
the prediction is the class with the most votes, ties between classes going to the smallest
label (like :func:`scipy.stats.mode`). With k >= M every training point votes.

Certificate (the triangle-inequality relaxation). A perturbation of norm eps moves every distance
d_j = ||x - t_j|| by at most eps, so a set S of k points can become the k nearest only if
max_{S} d - min_{not S} d <= 2 eps. Sort the points by d; for any such S let p be the first
position S leaves out and q the last it takes. Then S holds the p points before p and k - p of
the pool (p, q], and the most an adversary aiming at class c can get from that pool is: c's
points first, then points of classes other than the true y, y's points last. So

    radius(x) = min over c != y, p < k, q  of  (d_q - d_p) / 2   over (p, q) where that best fill
                outvotes y (more votes for c, or as many and c < y),

exactly the largest eps this relaxation certifies. For k = 1 it is the margin bound (d_other -
d_same) / 2, bit for bit. It needs only the k + 1 nearest points of every class: a class with
k + 1 points inside a pool already fills it, so the points after its (k + 1)-th never change a
fill (``topk_lists``).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .bounds import sound_half_margin


class NeighbourLists(NamedTuple):
    """Per query, the candidates of every class merged and sorted by (distance, training index).

    Each (n, L) with L = classes x (k + 1): ``dist`` distances in data units (inf: no point),
    ``index`` training indices (-1: no point), ``cls`` dense class ids (-1: no point)."""

    dist: np.ndarray
    index: np.ndarray
    cls: np.ndarray


def topk_lists(value: np.ndarray, index: np.ndarray, to_dist) -> NeighbourLists:
    """Merge the kernel's per-class lists ``value``, ``index`` (n, C, kk) into sorted lists;
    ``to_dist`` maps kernel values to distances (sqrt for l2, times the uint8 unit)."""
    n, n_classes, kk = value.shape
    dist = to_dist(value.reshape(n, -1))
    idx = index.reshape(n, -1)
    cls = np.broadcast_to(np.repeat(np.arange(n_classes), kk), idx.shape)
    big = np.iinfo(np.int64).max
    order = np.lexsort((np.where(idx >= 0, idx, big), dist), axis=-1)
    idx = np.take_along_axis(idx, order, axis=1)
    return NeighbourLists(np.take_along_axis(dist, order, axis=1), idx,
                          np.where(idx >= 0, np.take_along_axis(cls, order, axis=1), -1))


def vote(cls: np.ndarray, k: int, n_classes: int) -> np.ndarray:
    """(n,) dense class id predicted by the k first entries of sorted lists ``cls`` (n, L):
    plurality, ties to the smallest class id; -1 where a list is empty."""
    counts = _counts(cls[:, :k], n_classes)
    return np.where(counts.sum(axis=1) > 0, np.argmax(counts, axis=1), -1)


def _counts(cls: np.ndarray, n_classes: int) -> np.ndarray:
    """(n, C) votes per class of the valid entries of ``cls`` (n, j)."""
    n = cls.shape[0]
    counts = np.zeros((n, n_classes + 1), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(n), cls.shape[1]), np.where(cls >= 0, cls, n_classes).ravel()), 1)
    return counts[:, :n_classes]


def relaxation_half_gap(lists: NeighbourLists, y: np.ndarray, k: int, n_classes: int, rel_err: float) -> np.ndarray:
    """(n,) the certified radius of the relaxation in the metric's norm (module docstring), rounded
    down: each distance may be off by ``rel_err`` (relative) from the real-number one. inf where no
    set of k points outvotes y (e.g. k >= M, or y alone in the training set). Meaningful only where
    the k-NN predicts y."""
    n, length = lists.cls.shape
    valid = lists.cls >= 0
    n_valid = valid.sum(axis=1)
    k_eff = np.minimum(k, n_valid)                                   # (n,) voters
    zeros = np.zeros((n, 1), dtype=np.int32)
    cum_valid = np.concatenate([zeros, np.cumsum(valid, axis=1, dtype=np.int32)], axis=1)   # (n, L + 1)
    cum_y = np.concatenate([zeros, np.cumsum(lists.cls == y[:, None], axis=1, dtype=np.int32)], axis=1)
    p = np.broadcast_to(np.arange(min(k, length)), (n, min(k, length)))  # (n, P) first left-out position
    slots = k_eff[:, None] - p                                       # (n, P) pool points S still needs
    usable = (slots > 0) & (p < n_valid[:, None])
    d_p = np.take_along_axis(lists.dist, np.minimum(p, length - 1), axis=1)

    def at(cum, pos):
        return np.take_along_axis(cum, pos, axis=1)

    best = np.full(n, np.inf)
    for c in range(n_classes):
        cum_c = np.concatenate([zeros, np.cumsum(lists.cls == c, axis=1, dtype=np.int32)], axis=1)
        before_c, before_y = at(cum_c, p), at(cum_y, p)
        pool_from = p + 1
        base_c, base_y, base_v = at(cum_c, pool_from), at(cum_y, pool_from), at(cum_valid, pool_from)
        c_wins_ties = c < y[:, None]                                 # (n, 1)
        target = (y != c)[:, None] & usable

        def outvotes(q):
            """(n, P) whether the best fill of the pool (p, q] makes c outvote y."""
            end = q + 1
            pool_c = at(cum_c, end) - base_c
            pool_v = at(cum_valid, end) - base_v
            pool_y = at(cum_y, end) - base_y
            take_c = np.minimum(pool_c, slots)
            votes_c = before_c + take_c
            votes_y = before_y + np.maximum(0, slots - take_c - (pool_v - pool_c - pool_y))
            return target & (pool_v >= slots) & ((votes_c > votes_y) | ((votes_c == votes_y) & c_wins_ties))

        # the fill only improves as q grows: binary search for the first q that outvotes y
        lo = np.minimum(pool_from, length)
        hi = np.broadcast_to(n_valid[:, None], lo.shape).copy()
        while True:
            open_ = lo < hi
            if not open_.any():
                break
            mid = np.where(open_, (lo + hi) // 2, 0)
            ok = outvotes(mid) & open_
            hi = np.where(ok, mid, hi)
            lo = np.where(open_ & ~ok, mid + 1, lo)
        found = (lo < n_valid[:, None]) & outvotes(np.minimum(lo, length - 1))
        d_q = np.take_along_axis(lists.dist, np.minimum(lo, length - 1), axis=1)
        half = np.where(found, sound_half_margin(d_p, d_q, rel_err), np.inf)
        best = np.minimum(best, half.min(axis=1, initial=np.inf))
    return best
