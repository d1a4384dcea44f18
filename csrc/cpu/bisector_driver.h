// CPU bisector bound: a sound lower bound of the l2-metric 1NN's robust radius in any l_p norm.
#pragma once

#include <cstdint>

#include "scan_common.h"
#include "train_layout.h"

namespace nnm::cpu {

struct BisectorOutput {
  double* bound;   // (n) min over other-class t of max_k (|x-t|^2 - |x-p_k|^2) / (2 ||t-p_k||_dual),
                   // rounded down; kernel units (uint8: integer steps); +inf without other classes
  int64_t* index;  // (n) original training index of the t attaining it, -1 when none
};

// queries: (n, dim); pivots: (n, n_pivots, dim) same-class training rows per query; both in the
// training dtype. pivot_sq_dist: (n, n_pivots) |x - p_k|^2 (exact for uint8, float64 otherwise).
// l2 and dual: layouts of the same training points for metric l2 and for the dual norm's metric
// (l2 for l2 perturbations, l1 for linf, linf for l1).
void bisector_search(const TrainLayout& l2, const TrainLayout& dual, const KernelTable& kernels,
                     const void* queries, int64_t n, const int32_t* query_class, const void* pivots,
                     const double* pivot_sq_dist, int n_pivots, int num_threads, BisectorOutput out);

}  // namespace nnm::cpu
