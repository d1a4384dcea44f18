// CPU top-K search: for every query, the K nearest training points of every class (kNN certificates).
#pragma once

#include <cstdint>

#include "scan_common.h"
#include "train_layout.h"

namespace nnm::cpu {

// Per-query outputs, each (n, n_classes, k) row-major: for class c (dense id), the k nearest training
// points in ascending (value, original index) order, value in the metric's exact form as in
// SearchOutput (squared for l2). A class with fewer than k points pads with +inf and index -1.
struct TopkOutput {
  double* value;
  int64_t* index;
};

// queries: (n, train.dim) row-major in train.dtype; skip_index: (n) original training index each
// query must ignore (leave-one-out), or nullptr; 1 <= k. num_threads <= 0 uses every core.
void search_topk(const TrainLayout& train, const KernelTable& kernels, const void* queries, int64_t n,
                 const int64_t* skip_index, int k, int num_threads, TopkOutput out);

}  // namespace nnm::cpu
