// Training and query layouts that the scan kernels read (see scan_kernels.cpp for the formats).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "scan_common.h"

namespace nnm::cpu {

// A zero-filled, 64-byte aligned byte buffer.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t bytes);
  uint8_t* data() { return ptr_; }
  const uint8_t* data() const { return ptr_; }
  size_t size() const { return bytes_; }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> storage_;
  uint8_t* ptr_ = nullptr;
  size_t bytes_ = 0;
};

size_t element_size(DType dtype);

// Row length the kernels use: a multiple of 4 bytes for the uint8-l2 dot products, of 64 bytes (one
// AVX-512 vector; whole kAbandonBlock blocks for uint8 l1 / l-inf) for the others. Padding is zeros in queries and training points alike,
// so it adds nothing to any distance.
int64_t padded_dim(DType dtype, Metric metric, int64_t dim);

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Training points sorted by class (stable, so a class keeps the original index order), padded to a
// multiple of kTileT points, in the layout of (dtype, metric).
struct TrainLayout {
  DType dtype;
  Metric metric;
  int64_t m = 0, dim = 0, dim_padded = 0, m_padded = 0;
  std::vector<int64_t> orig_of_pos;  // (m) original index of each sorted position
  std::vector<int64_t> pos_of_orig;  // (m) inverse permutation
  std::vector<int32_t> t_class;      // (m_padded) dense class id; padding gets kNoClass - 1
  int32_t n_classes = 0;             // 1 + the largest class id
  std::vector<uint32_t> t_aux;       // (m_padded) uint8 l2: |t|^2, else empty
  AlignedBuffer data;                // kernel layout: grouped for uint8 l2 / l1 (scan_common.h), else row-major
  // Float l2 only (GEMM-form screen): the points again, packed in panels of kTileT points,
  // [m_padded / kTileT][dim_padded][kTileT]; |t|^2 in the input precision; ||t|| rounded up and
  // its maximum per tile. The row-major copy above stays for the exact re-check and the bisector.
  AlignedBuffer panel, sq;
  std::vector<double> len, tile_len;
  // uint8 l1 and l-inf only (early abandoning, scan_kernels.cpp): the dim_padded / kAbandonBlock
  // blocks of kAbandonBlock dims, most spread first (sum of the per-dim variance over the training
  // points), so a pair's partial distance passes the running best early. Any order gives the same
  // distances.
  std::vector<int32_t> block_order;
  // Device copies built by the CUDA backend on first use (opaque here; freed with the layout), keyed
  // by (backend, device ordinal): a copy on one GPU is no use on another, and the host emulation's
  // copy (backend 1) is host memory. Searches run with the GIL released, so two threads may share
  // one layout: read and write the cache only under cuda_cache_mutex.
  mutable std::map<std::pair<int, int>, std::shared_ptr<void>> cuda_cache;
  mutable std::mutex cuda_cache_mutex;

  // Row of sorted position `pos`, dim_padded long, for the exact re-check (float layouts only).
  const void* row(int64_t pos) const { return data.data() + pos * dim_padded * element_size(dtype); }
};

// x: (m, dim) row-major in `dtype`; class_id: (m) dense ids >= 0. The per-row packing runs on
// `threads` threads (<= 0: all); the layout does not depend on their number.
std::shared_ptr<const TrainLayout> build_train_layout(const void* x, DType dtype, int64_t m, int64_t dim,
                                                      const int32_t* class_id, Metric metric, int threads = 0);

// Copy n query rows (row-major, dim long) into `out` (round_up(n, kTileQ) rows of dim_padded, zero
// padded); for uint8 l2 also fill aux[i] = |q|^2 - 256 sum(q) (mod 2^32). With u8_l2_words (the
// kernel table's u8_l2_query_words), uint8 l2 rows are written as int16 words: twice the bytes,
// packed_query_bytes() says how many.
void pack_queries(const void* x, DType dtype, Metric metric, int64_t n, int64_t dim, int64_t dim_padded,
                  uint8_t* out, int32_t* aux, bool u8_l2_words);
size_t packed_query_bytes(DType dtype, Metric metric, int64_t n, int64_t dim_padded, bool u8_l2_words);

// Float rows: |x|^2 summed in float64 and rounded to the input precision (into sq, n elements of
// dtype), and an upper bound of ||x|| (into len). Padding rows (zeros) contribute nothing.
void row_norms(const void* x, DType dtype, int64_t n, int64_t dim, void* sq, double* len);

}  // namespace nnm::cpu
