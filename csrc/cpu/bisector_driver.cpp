// Blocking and threading of the bisector kernels (scan_kernels.cpp); see bisector_driver.h.
#include "bisector_driver.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "scan_driver.h"
#include "task_grid.h"

namespace nnm::cpu {
namespace {

struct BisectorState {
  std::vector<uint8_t> staging;                 // gathered rows before packing
  AlignedBuffer x_rows, pivot_rows[kMaxPivots];
  std::vector<int32_t> x_aux, pivot_aux[kMaxPivots], q_class;
  std::vector<int64_t> no_skip, best_pos;
  std::vector<double> pivot_sq, best;
};

// Gather rows `rows` of a (·, dim) array into staging, then pack them for `layout`'s kernels.
void pack_gathered(const uint8_t* src, int64_t stride_bytes, const int64_t* rows, int64_t n_q,
                   const TrainLayout& layout, const KernelTable& kernels, BisectorState& st, AlignedBuffer& out,
                   std::vector<int32_t>& aux) {
  const size_t row_bytes = layout.dim * element_size(layout.dtype);
  st.staging.resize(n_q * row_bytes);
  for (int64_t i = 0; i < n_q; ++i) std::memcpy(st.staging.data() + i * row_bytes, src + rows[i] * stride_bytes, row_bytes);
  pack_for_kernels(layout, kernels, st.staging.data(), n_q, out, aux);
}

ScanJob job_for(const TrainLayout& t, const AlignedBuffer& rows, int64_t n_q, const BisectorState& st,
                const std::vector<int32_t>& aux) {
  return ScanJob{rows.data(), n_q, st.q_class.data(), st.no_skip.data(), aux.data(), t.data.data(),
                 t.t_class.data(), t.t_aux.empty() ? nullptr : t.t_aux.data(), t.dim_padded, 0, 0, t.m,
                 1.0, 0.0, nullptr, nullptr};
}

}  // namespace

void bisector_search(const TrainLayout& l2, const TrainLayout& dual, const KernelTable& kernels,
                     const void* queries, int64_t n, const int32_t* query_class, const void* pivots,
                     const double* pivot_sq_dist, int n_pivots, int num_threads, BisectorOutput out) {
  if (n_pivots < 1 || n_pivots > kMaxPivots) throw std::invalid_argument("need 1 to " + std::to_string(kMaxPivots) + " pivots per query");
  if (l2.metric != kL2 || dual.dtype != l2.dtype || dual.m != l2.m || dual.dim != l2.dim)
    throw std::invalid_argument("bisector layouts must be l2 and dual-norm layouts of the same points");
  if (n <= 0) return;
#ifdef _OPENMP
  if (num_threads <= 0) num_threads = omp_get_max_threads();
#else
  num_threads = 1;
#endif
  const size_t es = element_size(l2.dtype);
  const int64_t row_bytes = l2.dim * static_cast<int64_t>(es);
  // Screened float values are within (1 +- g) of the true ones; round the inputs of the bound the
  // safe way (numerator down, denominator up). uint8 values are exact.
  const double g_x = screening_gamma(l2.dtype, kL2, l2.dim);
  const double g_p = screening_gamma(l2.dtype, dual.metric, l2.dim);
  const double pivot_up = l2.dtype == kU8 ? 1.0 : 1.0 + 2.0 * (static_cast<double>(l2.dim) + 4.0) * std::ldexp(1.0, -53);
  const double x_lo = 1.0 - 2.0 * g_x, pivot_hi = 1.0 + 2.0 * g_p;

  // Queries grouped by class: a job then sees one class, and skips training tiles of that class.
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return query_class[a] < query_class[b]; });

  const TaskGrid grid = make_task_grid(l2, n, num_threads);
  std::vector<std::pair<double, int64_t>> partial(static_cast<size_t>(grid.n_tc) * n);  // [chunk][query]
  const BisectFn bisect = kernels.bisect[l2.dtype][dual.metric];
  const auto* q_src = static_cast<const uint8_t*>(queries);
  const auto* p_src = static_cast<const uint8_t*>(pivots);

  for_each_task<BisectorState>(grid.tasks(), num_threads, [&](BisectorState& st, int64_t task) {
    const int64_t n_q = grid.q_count(task), tc = grid.train_chunk(task);
    const int64_t* rows = order.data() + grid.q_begin(task);
    st.q_class.resize(n_q);
    for (int64_t i = 0; i < n_q; ++i) st.q_class[i] = query_class[rows[i]];
    st.no_skip.assign(n_q, -1);
    pack_gathered(q_src, row_bytes, rows, n_q, l2, kernels, st, st.x_rows, st.x_aux);
    BisectorJob job{};
    job.x = job_for(l2, st.x_rows, n_q, st, st.x_aux);
    for (int k = 0; k < n_pivots; ++k) {
      // pivot k of query r is row r * n_pivots + k of the pivots array
      pack_gathered(p_src + k * row_bytes, row_bytes * n_pivots, rows, n_q, dual, kernels, st, st.pivot_rows[k],
                    st.pivot_aux[k]);
      job.pivot[k] = job_for(dual, st.pivot_rows[k], n_q, st, st.pivot_aux[k]);
    }
    st.pivot_sq.resize(n_q * n_pivots);
    for (int64_t i = 0; i < n_q; ++i)
      for (int k = 0; k < n_pivots; ++k) st.pivot_sq[i * n_pivots + k] = pivot_sq_dist[rows[i] * n_pivots + k] * pivot_up;
    st.best.assign(n_q, std::numeric_limits<double>::infinity());
    st.best_pos.assign(n_q, -1);
    job.n_pivots = n_pivots;
    job.pivot_sq_dist = st.pivot_sq.data();
    job.x_lo = x_lo;
    job.pivot_hi = pivot_hi;
    job.t_orig = l2.orig_of_pos.data();
    job.best = st.best.data();
    job.best_pos = st.best_pos.data();
    for (int64_t j0 = grid.t_begin(task); j0 < grid.t_end(task); j0 += grid.t_block) {
      const int64_t j1 = std::min(grid.t_end(task), j0 + grid.t_block);
      job.x.t_begin = j0;
      job.x.t_end = j1;
      for (int k = 0; k < n_pivots; ++k) {
        job.pivot[k].t_begin = j0;
        job.pivot[k].t_end = j1;
      }
      bisect(job);
    }
    for (int64_t i = 0; i < n_q; ++i)
      partial[tc * n + rows[i]] = {st.best[i], st.best_pos[i] >= 0 ? l2.orig_of_pos[st.best_pos[i]] : -1};
  });

  for (int64_t i = 0; i < n; ++i) {
    double best = std::numeric_limits<double>::infinity();
    int64_t idx = -1;
    for (int64_t tc = 0; tc < grid.n_tc; ++tc) {
      const auto& [v, j] = partial[tc * n + i];
      if (j >= 0 && (idx < 0 || v < best || (v == best && j < idx))) {
        best = v;
        idx = j;
      }
    }
    out.bound[i] = best;
    out.index[i] = idx;
  }
}

}  // namespace nnm::cpu
