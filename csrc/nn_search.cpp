#include "nn_search.h"

#include <stdexcept>

#include "cpu/cpu_features.h"
#include "cuda/cuda_backend.h"

namespace nnm {

PreparedTrain prepare_train(const void* x, DType dtype, int64_t m, int64_t dim, const int32_t* class_id,
                            Metric metric, int num_threads) {
  if (m <= 0) throw std::invalid_argument("the training set is empty");
  if (dim <= 0) throw std::invalid_argument("points must have at least one feature");
  // Exact uint8 l2 keeps |q - t|^2 <= 65025 * dim in uint32.
  if (dtype == cpu::kU8 && metric == cpu::kL2 && dim > 66051)
    throw std::invalid_argument("uint8 l2 search supports at most 66051 features");
  // Exact uint8 l1 keeps sums <= 255 * dim below 2^31 (the kernels compare them as int32 / int64).
  if (dtype == cpu::kU8 && metric == cpu::kL1 && dim > 8421504)
    throw std::invalid_argument("uint8 l1 search supports at most 8421504 features");
  for (int64_t j = 0; j < m; ++j)
    if (class_id[j] < 0) throw std::invalid_argument("class ids must be >= 0");
  return PreparedTrain{cpu::build_train_layout(x, dtype, m, dim, class_id, metric, num_threads)};
}

namespace {

void check_skip(const cpu::TrainLayout& layout, const int64_t* skip_index, int64_t n) {
  if (skip_index)
    for (int64_t i = 0; i < n; ++i)
      if (skip_index[i] >= layout.m) throw std::invalid_argument("leave-one-out index out of range");
}

}  // namespace

void search(const PreparedTrain& train, const void* queries, int64_t n, const int32_t* query_class,
            const int64_t* skip_index, const SearchOptions& options, SearchOutput out) {
  const cpu::TrainLayout& layout = *train.layout;
  check_skip(layout, skip_index, n);
  if (options.device == "cpu") {
    cpu::search(layout, cpu::kernel_table_for(options.isa), queries, n, query_class, skip_index,
                options.num_threads, out);
  } else if (options.device == "cuda") {
    cuda::search(layout, queries, n, query_class, skip_index, out);
  } else if (options.device == "cuda-emulated") {  // tests only: the CUDA kernels run on the host
    cuda_emulated::search(layout, queries, n, query_class, skip_index, out);
  } else {
    throw std::invalid_argument("unknown device '" + options.device + "' (expected 'cpu' or 'cuda')");
  }
}

void search_topk(const PreparedTrain& train, const void* queries, int64_t n, const int64_t* skip_index, int k,
                 const SearchOptions& options, cpu::TopkOutput out) {
  const cpu::TrainLayout& layout = *train.layout;
  check_skip(layout, skip_index, n);
  if (options.device != "cpu")
    throw std::invalid_argument("the per-class top-k search runs on the CPU only in this version (device='cpu')");
  cpu::search_topk(layout, cpu::kernel_table_for(options.isa), queries, n, skip_index, k, options.num_threads, out);
}

void bisector(const PreparedTrain& l2, const PreparedTrain& dual, const void* queries, int64_t n,
              const int32_t* query_class, const void* pivots, const double* pivot_sq_dist, int n_pivots,
              const SearchOptions& options, cpu::BisectorOutput out) {
  if (options.device != "cpu")
    throw std::invalid_argument("the bisector bound runs on the CPU only in this version (device='cpu')");
  cpu::bisector_search(*l2.layout, *dual.layout, cpu::kernel_table_for(options.isa), queries, n, query_class,
                       pivots, pivot_sq_dist, n_pivots, options.num_threads, out);
}

}  // namespace nnm
