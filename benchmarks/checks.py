"""Correctness checks of the CPU benchmark, made in the same run as the timings.

* nnmargin against ``nnmargin.reference`` (exact: int64 arithmetic for uint8, float64 for float32)
  on the first queries of a case: indices equal, distances equal to EXACT_RTOL relative.
* nnmargin against a float32 baseline on every query the baseline ran: distances within the
  baseline's float32 rounding; where the indices differ, the baseline's pick must be no closer in
  exact arithmetic (a float32 near-tie, not an nnmargin miss).
"""
from __future__ import annotations

import numpy as np

from nnmargin import reference

from baselines import Neighbours
from cases import BenchCase

EXACT_RTOL = 1e-12  # nnmargin vs the exact reference
FLOAT32_L2_RTOL = 1e-4  # float32 baselines vs nnmargin, l2 distance (float32 matmul-trick rounding)
FLOAT32_SUM_RTOL = 1e-5  # float32 baselines vs nnmargin, l1 / linf distance


def baseline_rtol(metric: str) -> float:
    return FLOAT32_L2_RTOL if metric == "l2" else FLOAT32_SUM_RTOL


def exact_reference(case: BenchCase, n_queries: int) -> Neighbours:
    """Exact same/other nearest neighbours of the first ``n_queries`` queries (ties: lowest index).

    The reference holds one chunk of queries x all training points at a time; only a few queries
    are checked, so this stays affordable on MNIST-sized training sets."""
    k = min(n_queries, case.n)
    d_same, i_same, d_other, i_other = reference.nearest_same_other(
        case.x_query[:k], case.y_query[:k], case.x_train, case.y_train, case.metric)
    return Neighbours(case.user_units(d_same, False), i_same, case.user_units(d_other, False), i_other)


def exact_pair_distance(case: BenchCase, idx) -> np.ndarray:
    """Exact distance (user units) from query i to training point idx[i], for every i < len(idx);
    inf where idx[i] is -1."""
    idx = np.asarray(idx)
    raw = np.array([reference.distances(case.x_query[i:i + 1], case.x_train[j:j + 1], case.metric)[0, 0]
                    for i, j in enumerate(np.maximum(idx, 0))], dtype=np.float64)
    return np.where(idx >= 0, case.user_units(raw, False), np.inf)


def relative_error(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    both_inf = np.isinf(a) & np.isinf(b) & (a == b)
    err = np.abs(a - b) / np.maximum(np.abs(b), np.finfo(np.float64).tiny)
    return np.where(both_inf, 0.0, err)


def check_exact(got: Neighbours, ref: Neighbours) -> dict:
    """nnmargin vs the exact reference: indices equal, distances equal to EXACT_RTOL."""
    n = len(ref.idx_same)
    idx_ok = bool(np.array_equal(got.idx_same[:n], ref.idx_same) and np.array_equal(got.idx_other[:n], ref.idx_other))
    err = max(float(relative_error(got.dist_same[:n], ref.dist_same).max(initial=0.0)),
              float(relative_error(got.dist_other[:n], ref.dist_other).max(initial=0.0)))
    return {"queries": n, "indices_equal": idx_ok, "max_rel_dist_err": err, "ok": idx_ok and err <= EXACT_RTOL}


def check_against_baseline(case: BenchCase, ours: Neighbours, theirs: Neighbours, rtol: float) -> dict:
    """nnmargin vs a float32 baseline on the queries the baseline ran.

    Distances must agree to ``rtol``; where the indices differ, the baseline's pick must be no closer
    than nnmargin's in exact arithmetic; nnmargin's distance must be the exact one of its index."""
    n = len(theirs.idx_same)
    report = {"queries": n}
    ok = True
    for side in ("same", "other"):
        our_d, our_i = getattr(ours, f"dist_{side}")[:n], getattr(ours, f"idx_{side}")[:n]
        their_d, their_i = getattr(theirs, f"dist_{side}"), getattr(theirs, f"idx_{side}")
        err = float(relative_error(their_d, our_d).max(initial=0.0))
        differ = np.flatnonzero(our_i != their_i)
        our_exact = exact_pair_distance(case, our_i)
        their_exact = exact_pair_distance(case, their_i)
        self_consistent = float(relative_error(our_d, our_exact).max(initial=0.0))
        worse = int(np.sum(their_exact[differ] < our_exact[differ] * (1 - EXACT_RTOL)))
        ties = int(np.sum(their_exact[differ] == our_exact[differ]))
        report[side] = {"max_rel_dist_diff": err, "index_mismatches": int(differ.size),
                        "mismatches_exact_ties": ties, "baseline_closer_in_exact_arithmetic": worse,
                        "nnmargin_dist_vs_exact_of_its_index": self_consistent}
        ok &= err <= rtol and worse == 0 and self_consistent <= EXACT_RTOL
    report["ok"] = bool(ok)
    return report


def check_label(check: dict) -> str:
    """Short text for the table's check column."""
    if "indices_equal" in check:
        return ("exact OK" if check["ok"] else "EXACT MISMATCH") + f" ({check['queries']} q)"
    mism = check["same"]["index_mismatches"] + check["other"]["index_mismatches"]
    diff = max(check["same"]["max_rel_dist_diff"], check["other"]["max_rel_dist_diff"])
    text = "OK" if check["ok"] else "MISMATCH"
    return f"{text}: max rel diff {diff:.1e}, {mism} idx diff ({check['queries']} q)"
