// Cache blocking, threading and exact candidate re-checks around the per-ISA scan kernels.
#include "scan_driver.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "exact_recheck.h"
#include "key_codec.h"
#include "task_grid.h"

namespace nnm::cpu {

// With u the unit roundoff of the kernel's type, each term (difference, then square or abs) carries
// relative error <= 3u and any summation order adds gamma_dim, so a screened value is within a
// factor (1 +- gamma_{dim+4}) of the true one (Higham, Accuracy and Stability of Numerical
// Algorithms, 2nd ed., sec. 3.1). linf takes no sum: one subtraction's rounding.
double screening_gamma(DType dtype, Metric metric, int64_t dim) {
  if (dtype == kU8) return 0.0;
  const double u = dtype == kF32 ? std::ldexp(1.0, -24) : std::ldexp(1.0, -53);
  const double n = metric == kLinf ? 2.0 : static_cast<double>(dim) + 4.0;
  return n * u / (1.0 - n * u);
}

void screening_slack(DType dtype, Metric metric, int64_t dim, double* rho, double* alpha) {
  if (dtype == kU8) {
    *rho = 1.0;
    *alpha = 0.0;
    return;
  }
  // A point can beat the screened best b only if its screened value is <= b (1 + g) / (1 - g).
  const double g = screening_gamma(dtype, metric, dim);
  const double tiny = dtype == kF32 ? std::ldexp(1.0, -126) : std::ldexp(1.0, -1022);
  *rho = (1.0 + g) / (1.0 - g) * (1.0 + 8.0 * std::ldexp(1.0, -53));
  *alpha = 4.0 * (static_cast<double>(dim) + 1.0) * tiny;  // underflow of tiny terms
}

namespace {

constexpr double kInf = kInfDistance;
constexpr size_t kCollapseAt = 64;  // pending candidates per (query, class) before an exact re-check

// Collects candidates of one task (a block of queries against a range of training points) and keeps,
// per (query, class), the exact champion of what it has seen.
template <class Codec>
struct TaskSink : CandidateSink {
  struct Pending {
    int64_t pos;
    uint64_t key;
  };
  const TrainLayout* train = nullptr;
  const uint8_t* queries = nullptr;  // original rows of this task's queries
  const uint64_t* best = nullptr;
  double rho = 1.0, alpha = 0.0;
  std::vector<std::vector<Pending>> pending;  // (n_q * 2)
  std::vector<Champion> champion;             // (n_q * 2)

  TaskSink() { push = &TaskSink::push_fn; }

  void reset(int64_t n_q) {
    pending.resize(n_q * 2);
    for (auto& p : pending) p.clear();
    champion.assign(n_q * 2, Champion{});
  }

  static void push_fn(CandidateSink* base, int64_t i, int cat, int64_t pos, uint64_t key) {
    auto* self = static_cast<TaskSink*>(base);
    auto& list = self->pending[2 * i + cat];
    list.push_back({pos, key});
    if (list.size() >= kCollapseAt) self->collapse(i, cat);
  }

  // Re-check the pending candidates that can still win, keep the best, forget the rest. A dropped
  // candidate is strictly beaten by the point holding `best`, which is itself always pending or kept.
  void collapse(int64_t i, int cat) {
    using Key = typename Codec::Key;
    const Key thr = Codec::threshold(static_cast<Key>(best[2 * i + cat]), rho, alpha);
    Champion& c = champion[2 * i + cat];
    for (const Pending& p : pending[2 * i + cat]) {
      if (static_cast<Key>(p.key) > thr) continue;
      c.offer(exact_value(i, p), train->orig_of_pos[p.pos]);
    }
    pending[2 * i + cat].clear();
  }

  double exact_value(int64_t i, const Pending& p) const {
    if constexpr (Codec::kExact) {
      return Codec::value(static_cast<typename Codec::Key>(p.key));
    } else {
      const int64_t d = train->dim;
      if (train->dtype == kF32)
        return exact_distance(reinterpret_cast<const float*>(queries) + i * d,
                              static_cast<const float*>(train->row(p.pos)), d, train->metric);
      return exact_distance(reinterpret_cast<const double*>(queries) + i * d,
                            static_cast<const double*>(train->row(p.pos)), d, train->metric);
    }
  }
};

// Per-thread buffers of the search tasks.
template <class Codec>
struct SearchState {
  TaskQueries q;
  std::vector<int32_t> q_class;
  std::vector<uint64_t> best;
  std::vector<int64_t> best_orig;
  std::vector<double> q_sq, q_len;  // float l2 GEMM form: |x|^2 (as the input type's bits) and ||x||
  TaskSink<Codec> sink;
};

// Float l2 in GEMM form (scan_kernels.cpp): gamma_{dim_padded + 4} of the input precision, rounded up.
double gemm_gamma(DType dtype, int64_t dim_padded) {
  const double u = dtype == kF32 ? std::ldexp(1.0, -24) : std::ldexp(1.0, -53);
  const double n = static_cast<double>(dim_padded) + 4.0;
  // Debug only (tests/test_search.py): NNMARGIN_DEBUG_GEMM_BOUND_SCALE shrinks the bound, which must
  // make the adversarial tests fail; unset in every normal run.
  double scale = 1.0;
  if (const char* env = std::getenv("NNMARGIN_DEBUG_GEMM_BOUND_SCALE")) scale = std::atof(env);
  return n * u / (1.0 - n * u) * (1.0 + std::ldexp(1.0, -40)) * scale;
}

template <class Codec>
void search_typed(const TrainLayout& train, const KernelTable& kernels, const void* queries, int64_t n,
                  const int32_t* query_class, const int64_t* skip_index, int num_threads,
                  SearchOutput out, bool gemm = false) {
  const int64_t dp = train.dim_padded;
  const TaskGrid grid = make_task_grid(train, n, num_threads);
  double rho, alpha;
  screening_slack(train.dtype, train.metric, train.dim, &rho, &alpha);
  const double direct_gamma = screening_gamma(train.dtype, train.metric, train.dim), direct_alpha = alpha;
  // GEMM form: the kernel keeps float64 bounds and pushes float64 lower bounds (keys of F64Codec);
  // the sink re-checks a candidate while its lower bound is <= the best upper bound.
  if (gemm) rho = 1.0, alpha = 0.0;
  const uint64_t best_init = gemm ? 0x7ff0000000000000ull : kNoKey<uint64_t>;  // +inf as float64 bits
  const double tiny = train.dtype == kF32 ? std::ldexp(1.0, -126) : std::ldexp(1.0, -1022);
  const ScanFn scan = kernels.scan[train.dtype][train.metric];
  std::vector<Champion> partial(static_cast<size_t>(grid.n_tc) * n * 2);  // [chunk][query][class]

  for_each_task<SearchState<Codec>>(grid.tasks(), num_threads, [&](SearchState<Codec>& st, int64_t task) {
    const int64_t q_begin = grid.q_begin(task), n_q = grid.q_count(task), tc = grid.train_chunk(task);
    st.q.pack(train, kernels, queries, skip_index, q_begin, n_q);
    st.q_class.assign(query_class + q_begin, query_class + q_begin + n_q);
    st.best.assign(n_q * 2, best_init);
    st.best_orig.assign(n_q * 2, -1);
    st.sink.train = &train;
    st.sink.rho = rho;
    st.sink.alpha = alpha;
    st.sink.queries = st.q.source;
    st.sink.best = st.best.data();
    st.sink.reset(n_q);
    ScanJob job{st.q.packed.data(), n_q, st.q_class.data(), st.q.skip.data(), st.q.aux.data(),
                train.data.data(), train.t_class.data(), train.t_aux.empty() ? nullptr : train.t_aux.data(),
                dp, 0, 0, train.m, rho, alpha, st.best.data(), &st.sink, train.orig_of_pos.data(),
                st.best_orig.data()};
    if (!train.block_order.empty()) job.block_order = train.block_order.data();
    if (gemm) {
      st.q_sq.resize(n_q);
      st.q_len.resize(n_q);
      row_norms(st.q.packed.data(), train.dtype, n_q, dp, st.q_sq.data(), st.q_len.data());
      job.t_panel = train.panel.data();
      job.t_sq = train.sq.data();
      job.t_len = train.len.data();
      job.tile_len = train.tile_len.data();
      job.q_sq = st.q_sq.data();
      job.q_len = st.q_len.data();
      job.gemm_gamma = gemm_gamma(train.dtype, dp);
      job.gemm_abs = 4.0 * (static_cast<double>(dp) + 4.0) * tiny;
      job.direct_gamma = direct_gamma;
      job.direct_alpha = direct_alpha;
    }
    for (int64_t j0 = grid.t_begin(task); j0 < grid.t_end(task); j0 += grid.t_block) {
      job.t_begin = j0;
      job.t_end = std::min(grid.t_end(task), j0 + grid.t_block);
      scan(job);
    }
    for (int64_t i = 0; i < n_q; ++i)
      for (int cat = 0; cat < 2; ++cat) {
        Champion& slot = partial[(tc * n + q_begin + i) * 2 + cat];
        if constexpr (Codec::kExact) {  // the kernel kept the exact minimum and its lowest index
          if (st.best_orig[2 * i + cat] >= 0)
            slot = Champion{Codec::value(static_cast<typename Codec::Key>(st.best[2 * i + cat])),
                            st.best_orig[2 * i + cat]};
        } else {
          st.sink.collapse(i, cat);
          slot = st.sink.champion[2 * i + cat];
        }
      }
  });

  // Merging exact champions under the total order (value, index) is independent of the chunking.
  for (int64_t i = 0; i < n; ++i) {
    Champion same, other;
    for (int64_t tc = 0; tc < grid.n_tc; ++tc) {
      const Champion& s = partial[(tc * n + i) * 2];
      const Champion& o = partial[(tc * n + i) * 2 + 1];
      same.offer(s.value, s.index);
      other.offer(o.value, o.index);
    }
    out.value_same[i] = same.index >= 0 ? same.value : kInf;
    out.index_same[i] = same.index;
    out.value_other[i] = other.index >= 0 ? other.value : kInf;
    out.index_other[i] = other.index;
  }
}

}  // namespace

void search(const TrainLayout& train, const KernelTable& kernels, const void* queries, int64_t n,
            const int32_t* query_class, const int64_t* skip_index, int num_threads, SearchOutput out) {
#ifdef _OPENMP
  if (num_threads <= 0) num_threads = omp_get_max_threads();
#else
  num_threads = 1;
#endif
  if (n <= 0) return;
  if (train.dtype == kU8) search_typed<U8Codec>(train, kernels, queries, n, query_class, skip_index, num_threads, out);
  else if (train.metric == kL2 && train.panel.size() > 0)
    search_typed<F64Codec>(train, kernels, queries, n, query_class, skip_index, num_threads, out, true);
  else if (train.dtype == kF32) search_typed<F32Codec>(train, kernels, queries, n, query_class, skip_index, num_threads, out);
  else search_typed<F64Codec>(train, kernels, queries, n, query_class, skip_index, num_threads, out);
}

}  // namespace nnm::cpu
