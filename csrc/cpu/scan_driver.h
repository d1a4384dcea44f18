// CPU search: for every query, the nearest training point of its own class and of any other class.
#pragma once

#include <cstdint>

#include "scan_common.h"
#include "train_layout.h"

namespace nnm::cpu {

// Per-query outputs, each (n). `value` is the exact distance in the metric's integer or float64 form:
// squared for l2 (uint8: integer units; float: float64 of the input values), plain for l1 and linf.
// A class with no training point gives value = +inf and index = -1.
struct SearchOutput {
  double* value_same;
  int64_t* index_same;
  double* value_other;
  int64_t* index_other;
};

// queries: (n, train.dim) row-major in train.dtype; query_class: (n) dense ids (kNoClass if absent);
// skip_index: (n) original training index each query must ignore (leave-one-out), or nullptr.
// num_threads <= 0 uses every core. Ties go to the lowest original training index.
void search(const TrainLayout& train, const KernelTable& kernels, const void* queries, int64_t n,
            const int32_t* query_class, const int64_t* skip_index, int num_threads, SearchOutput out);

// Relative error bound g of the kernels' screened values: true = screened * (1 +- g). 0 for uint8.
double screening_gamma(DType dtype, Metric metric, int64_t dim);

}  // namespace nnm::cpu
