// Threading, per-class top-K bookkeeping and exact candidate re-checks around the per-ISA top-K
// kernels (KernelTable::topk). Same structure as scan_driver.cpp: tasks of (query block, training
// chunk), a sink per thread, results merged under the total order (value, original index).
#include "topk_driver.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "exact_recheck.h"
#include "key_codec.h"
#include "scan_driver.h"
#include "task_grid.h"

namespace nnm::cpu {
namespace {

// Max-heap order on (value, index): the heap's front is the worst of the k kept.
bool worse_first(const Champion& a, const Champion& b) { return a.beats(b); }

// The k best of one (query, class) seen so far, by (value, index).
struct BestK {
  std::vector<Champion> heap;
  void offer(const Champion& c, size_t k) {
    if (heap.size() < k) {
      heap.push_back(c);
      std::push_heap(heap.begin(), heap.end(), worse_first);
    } else if (c.beats(heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), worse_first);
      heap.back() = c;
      std::push_heap(heap.begin(), heap.end(), worse_first);
    }
  }
};

// Collects the pushes of one task. uint8 keys are exact: each push goes straight into the slot's
// BestK and the threshold is the k-th best key (ties must still enter: lower indices win them).
// Float keys are screened values: the slot keeps the k smallest screened keys for its threshold
// (a point can be among the k nearest only if its key is within the screening slack of the k-th
// smallest key seen) and the pending candidates, re-checked exactly in batches.
template <class Codec>
struct TopkSink : CandidateSink {
  using Key = typename Codec::Key;
  struct Pending {
    int64_t pos;
    Key key;
  };
  const TrainLayout* train = nullptr;
  const uint8_t* queries = nullptr;  // original rows of this task's queries
  size_t k = 1;
  int32_t n_classes = 0;
  double rho = 1.0, alpha = 0.0;
  std::vector<uint64_t> thr;                 // (n_q * n_classes) the kernel's thresholds
  std::vector<BestK> best;                   // (n_q * n_classes) exact k best
  std::vector<std::vector<Key>> screened;    // float: max-heaps of the k smallest screened keys
  std::vector<std::vector<Pending>> pending; // float: candidates awaiting the exact re-check

  TopkSink() { push = &TopkSink::push_fn; }

  void reset(int64_t n_q) {
    const size_t slots = static_cast<size_t>(n_q) * n_classes;
    thr.assign(slots, kNoKey<uint64_t>);
    best.resize(slots);
    for (auto& b : best) b.heap.clear();
    if constexpr (!Codec::kExact) {
      screened.resize(slots);
      pending.resize(slots);
      for (size_t s = 0; s < slots; ++s) screened[s].clear(), pending[s].clear();
    }
  }

  static void push_fn(CandidateSink* base, int64_t i, int cls, int64_t pos, uint64_t key) {
    auto* self = static_cast<TopkSink*>(base);
    const size_t slot = static_cast<size_t>(i) * self->n_classes + cls;
    const Key kkey = static_cast<Key>(key);
    if constexpr (Codec::kExact) {
      BestK& b = self->best[slot];
      b.offer(Champion{Codec::value(kkey), self->train->orig_of_pos[pos]}, self->k);
      if (b.heap.size() == self->k) self->thr[slot] = static_cast<Key>(b.heap.front().value);
    } else {
      std::vector<Key>& h = self->screened[slot];
      if (h.size() < self->k) {
        h.push_back(kkey);
        std::push_heap(h.begin(), h.end());
      } else if (kkey < h.front()) {
        std::pop_heap(h.begin(), h.end());
        h.back() = kkey;
        std::push_heap(h.begin(), h.end());
      }
      if (h.size() == self->k) self->thr[slot] = Codec::threshold(h.front(), self->rho, self->alpha);
      self->pending[slot].push_back({pos, kkey});
      if (self->pending[slot].size() >= 2 * self->k + 64) self->collapse(i, cls);
    }
  }

  // Re-check the pending candidates still within the threshold; the others are beaten by k points.
  void collapse(int64_t i, int cls) {
    if constexpr (!Codec::kExact) {
      const size_t slot = static_cast<size_t>(i) * n_classes + cls;
      const Key limit = static_cast<Key>(thr[slot]);
      const int64_t d = train->dim;
      for (const Pending& p : pending[slot]) {
        if (p.key > limit) continue;
        const double v = train->dtype == kF32
                             ? exact_distance(reinterpret_cast<const float*>(queries) + i * d,
                                              static_cast<const float*>(train->row(p.pos)), d, train->metric)
                             : exact_distance(reinterpret_cast<const double*>(queries) + i * d,
                                              static_cast<const double*>(train->row(p.pos)), d, train->metric);
        best[slot].offer(Champion{v, train->orig_of_pos[p.pos]}, k);
      }
      pending[slot].clear();
    }
  }
};

template <class Codec>
struct TopkState {
  TaskQueries q;
  std::vector<int32_t> q_class;
  TopkSink<Codec> sink;
};

template <class Codec>
void topk_typed(const TrainLayout& train, const KernelTable& kernels, const void* queries, int64_t n,
                const int64_t* skip_index, int k, int num_threads, TopkOutput out) {
  const int64_t dp = train.dim_padded, nc = train.n_classes;
  const TaskGrid grid = make_task_grid(train, n, num_threads);
  double rho, alpha;
  screening_slack(train.dtype, train.metric, train.dim, &rho, &alpha);
  const ScanFn scan = kernels.topk[train.dtype][train.metric];
  // [chunk][query][class][k] the k best of each training chunk, padded with empty champions
  std::vector<Champion> partial(static_cast<size_t>(grid.n_tc) * n * nc * k);

  for_each_task<TopkState<Codec>>(grid.tasks(), num_threads, [&](TopkState<Codec>& st, int64_t task) {
    const int64_t q_begin = grid.q_begin(task), n_q = grid.q_count(task), tc = grid.train_chunk(task);
    st.q.pack(train, kernels, queries, skip_index, q_begin, n_q);
    st.q_class.assign(n_q, kNoClass);  // the kernels' produce step never reads it; kept well-defined
    TopkSink<Codec>& sink = st.sink;
    sink.train = &train;
    sink.queries = st.q.source;
    sink.k = static_cast<size_t>(k);
    sink.n_classes = static_cast<int32_t>(nc);
    sink.rho = rho;
    sink.alpha = alpha;
    sink.reset(n_q);
    ScanJob job{st.q.packed.data(), n_q, st.q_class.data(), st.q.skip.data(), st.q.aux.data(),
                train.data.data(), train.t_class.data(), train.t_aux.empty() ? nullptr : train.t_aux.data(),
                dp, 0, 0, train.m, rho, alpha, nullptr, &sink, train.orig_of_pos.data(), nullptr};
    job.class_thr = sink.thr.data();
    job.n_classes = static_cast<int32_t>(nc);
    if (!train.block_order.empty()) job.block_order = train.block_order.data();  // uint8 l1 / l-inf abandoning
    for (int64_t j0 = grid.t_begin(task); j0 < grid.t_end(task); j0 += grid.t_block) {
      job.t_begin = j0;
      job.t_end = std::min(grid.t_end(task), j0 + grid.t_block);
      scan(job);
    }
    for (int64_t i = 0; i < n_q; ++i)
      for (int64_t c = 0; c < nc; ++c) {
        sink.collapse(i, static_cast<int>(c));
        std::vector<Champion>& h = sink.best[i * nc + c].heap;
        std::sort(h.begin(), h.end(), [](const Champion& a, const Champion& b) { return a.beats(b); });
        std::copy(h.begin(), h.end(), partial.begin() + (((tc * n + q_begin + i) * nc + c) * k));
      }
  });

  // Merge the chunks' lists under (value, index): independent of how the training set was split.
  std::vector<Champion> merged;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < nc; ++c) {
      merged.clear();
      for (int64_t tc = 0; tc < grid.n_tc; ++tc) {
        const Champion* list = partial.data() + ((tc * n + i) * nc + c) * k;
        for (int r = 0; r < k && list[r].index >= 0; ++r) merged.push_back(list[r]);
      }
      const size_t keep = std::min<size_t>(merged.size(), k);
      std::partial_sort(merged.begin(), merged.begin() + keep, merged.end(),
                        [](const Champion& a, const Champion& b) { return a.beats(b); });
      double* value = out.value + (i * nc + c) * k;
      int64_t* index = out.index + (i * nc + c) * k;
      for (int r = 0; r < k; ++r) {
        const bool have = static_cast<size_t>(r) < keep;
        value[r] = have ? merged[r].value : kInfDistance;
        index[r] = have ? merged[r].index : -1;
      }
    }
}

}  // namespace

void search_topk(const TrainLayout& train, const KernelTable& kernels, const void* queries, int64_t n,
                 const int64_t* skip_index, int k, int num_threads, TopkOutput out) {
  if (k < 1) throw std::invalid_argument("k must be at least 1");
#ifdef _OPENMP
  if (num_threads <= 0) num_threads = omp_get_max_threads();
#else
  num_threads = 1;
#endif
  if (n <= 0 || train.n_classes <= 0) return;
  if (train.dtype == kU8) topk_typed<U8Codec>(train, kernels, queries, n, skip_index, k, num_threads, out);
  else if (train.dtype == kF32) topk_typed<F32Codec>(train, kernels, queries, n, skip_index, k, num_threads, out);
  else topk_typed<F64Codec>(train, kernels, queries, n, skip_index, k, num_threads, out);
}

}  // namespace nnm::cpu
