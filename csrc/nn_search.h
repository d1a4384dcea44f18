// The one entry point every binding calls: prepare training points once, search queries on a device.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cpu/bisector_driver.h"
#include "cpu/scan_common.h"
#include "cpu/scan_driver.h"
#include "cpu/topk_driver.h"
#include "cpu/train_layout.h"

namespace nnm {

using cpu::DType;
using cpu::Metric;
using cpu::SearchOutput;

struct PreparedTrain {
  std::shared_ptr<const cpu::TrainLayout> layout;
};

// x: (m, dim) row-major; class_id: (m) dense ids >= 0; num_threads <= 0: all cores. Throws
// std::invalid_argument on bad sizes.
PreparedTrain prepare_train(const void* x, DType dtype, int64_t m, int64_t dim, const int32_t* class_id,
                            Metric metric, int num_threads = 0);

struct SearchOptions {
  std::string device = "cpu";  // "cpu" | "cuda" | "cuda-emulated" (the CUDA backend run on the host, for tests)
  std::string isa = "auto";    // CPU instruction-set variant, see cpu_features.h
  int num_threads = 0;         // <= 0: all cores
};

// queries: (n, dim) row-major in the training dtype; see cpu::search for the outputs.
void search(const PreparedTrain& train, const void* queries, int64_t n, const int32_t* query_class,
            const int64_t* skip_index, const SearchOptions& options, SearchOutput out);

// For every query, the k nearest training points of every class (see cpu::search_topk). CPU only.
void search_topk(const PreparedTrain& train, const void* queries, int64_t n, const int64_t* skip_index, int k,
                 const SearchOptions& options, cpu::TopkOutput out);

// Bisector lower bound of the l2-metric 1NN's robust radius (see cpu/bisector_driver.h). `l2` and
// `dual` are layouts of the same training points for metric l2 and for the dual norm's metric.
void bisector(const PreparedTrain& l2, const PreparedTrain& dual, const void* queries, int64_t n,
              const int32_t* query_class, const void* pivots, const double* pivot_sq_dist, int n_pivots,
              const SearchOptions& options, cpu::BisectorOutput out);

}  // namespace nnm
