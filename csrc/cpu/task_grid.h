// How the CPU drivers split a search into tasks (query blocks x training chunks) and run them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <exception>
#include <vector>

#include "scan_common.h"
#include "train_layout.h"

namespace nnm::cpu {

// Bytes of queries and of training points a task keeps hot; both fit the 1-2 MB L2 of current cores.
constexpr int64_t kQueryBlockBytes = 192 << 10;
// l2 (uint8 dot products, float GEMM form) reads its queries in dim chunks against a 48-point
// training slice held in L1, so more queries per task mean fewer passes over the training set, which
// at D = 3072 (10000 uint8 points: 30 MB) comes from L3 or memory: 768 KB blocks (256 queries) ran
// 1.2x faster there on Zen 5 (float32 D = 512: 1.08x), while the row-major l1 / l-inf kernels ran
// 1.6x / 1.15x slower with them (their queries leave L2).
constexpr int64_t kQueryBlockBytesL2 = 768 << 10;
constexpr int64_t kTrainBlockBytes = 512 << 10;

struct TaskGrid {
  int64_t n = 0;                // queries
  int64_t q_block = 0;          // queries per task (multiple of kTileQ, <= kMaxJobQueries)
  int64_t t_block = 0;          // training points per kernel call (multiple of kTileT)
  int64_t n_qb = 0, n_tc = 0;   // query blocks, training chunks
  int64_t tiles_per_chunk = 0;
  int64_t m_padded = 0;

  int64_t tasks() const { return n_qb * n_tc; }
  int64_t query_block(int64_t task) const { return task / n_tc; }
  int64_t train_chunk(int64_t task) const { return task % n_tc; }
  int64_t q_begin(int64_t task) const { return query_block(task) * q_block; }
  int64_t q_count(int64_t task) const { return std::min(q_block, n - q_begin(task)); }
  int64_t t_begin(int64_t task) const { return train_chunk(task) * tiles_per_chunk * kTileT; }
  int64_t t_end(int64_t task) const { return std::min(m_padded, t_begin(task) + tiles_per_chunk * kTileT); }
};

// Few query blocks (a handful of queries) also split the training points, so every thread works;
// results of the chunks are merged afterwards under a total order, independent of the split.
inline TaskGrid make_task_grid(const TrainLayout& train, int64_t n, int num_threads) {
  TaskGrid g;
  const int64_t row_bytes = train.dim_padded * static_cast<int64_t>(element_size(train.dtype));
  g.n = n;
  g.m_padded = train.m_padded;
  const int64_t query_bytes = train.metric == kL2 ? kQueryBlockBytesL2 : kQueryBlockBytes;
  g.q_block = std::clamp<int64_t>(query_bytes / row_bytes / kTileQ * kTileQ, kTileQ, kMaxJobQueries);
  g.t_block = std::clamp<int64_t>(kTrainBlockBytes / row_bytes / kTileT * kTileT, kTileT, int64_t(1) << 20);
  g.n_qb = (n + g.q_block - 1) / g.q_block;
  const int64_t t_tiles = train.m_padded / kTileT;
  const int64_t want_tasks = 4 * static_cast<int64_t>(num_threads);
  g.n_tc = std::clamp<int64_t>((want_tasks + g.n_qb - 1) / g.n_qb, 1, t_tiles);
  g.tiles_per_chunk = (t_tiles + g.n_tc - 1) / g.n_tc;
  return g;
}

// Queries (n_q rows of train.dim at src, train.dtype) packed in the format of `kernels` into `out`
// (grown when too small) and `aux`: what every driver hands its kernels as ScanJob::queries / q_aux.
inline void pack_for_kernels(const TrainLayout& train, const KernelTable& kernels, const void* src, int64_t n_q,
                             AlignedBuffer& out, std::vector<int32_t>& aux) {
  const bool words = kernels.u8_l2_query_words;
  const size_t bytes = packed_query_bytes(train.dtype, train.metric, n_q, train.dim_padded, words);
  if (out.size() < bytes) out = AlignedBuffer(bytes);
  aux.resize(n_q);
  pack_queries(src, train.dtype, train.metric, n_q, train.dim, train.dim_padded, out.data(), aux.data(), words);
}

// The queries of one task as the kernels read them: packed rows, uint8-l2 aux terms, and the sorted
// position each query skips (leave-one-out, -1 for none). Reused across tasks by one thread.
struct TaskQueries {
  AlignedBuffer packed{static_cast<size_t>(kMaxJobQueries) * 8 * 64};  // grown on demand
  std::vector<int32_t> aux;
  std::vector<int64_t> skip;
  const uint8_t* source = nullptr;  // the task's original rows (n_q x dim), for exact re-checks

  // Pack queries [q_begin, q_begin + n_q) of `queries` (n x train.dim, row-major, train.dtype) in
  // the format of `kernels`; skip_index: (n) original training index each query ignores, or nullptr.
  void pack(const TrainLayout& train, const KernelTable& kernels, const void* queries, const int64_t* skip_index,
            int64_t q_begin, int64_t n_q) {
    source = static_cast<const uint8_t*>(queries) + q_begin * train.dim * element_size(train.dtype);
    pack_for_kernels(train, kernels, source, n_q, packed, aux);
    skip.resize(n_q);
    for (int64_t i = 0; i < n_q; ++i) {
      const int64_t s = skip_index ? skip_index[q_begin + i] : -1;
      skip[i] = s >= 0 ? train.pos_of_orig[s] : -1;
    }
  }
};

// Run body(state, task) for every task on num_threads threads, one default-constructed State per
// thread (its reusable buffers). The first exception thrown by any task is rethrown here.
template <class State, class Body>
void for_each_task(int64_t n_tasks, int num_threads, Body&& body) {
  std::exception_ptr error;
#pragma omp parallel num_threads(num_threads)
  {
    State state;
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < n_tasks; ++task) {
      try {
        body(state, task);
      } catch (...) {
#pragma omp critical(nnm_task_error)
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace nnm::cpu
