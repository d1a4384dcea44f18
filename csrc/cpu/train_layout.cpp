#include "train_layout.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <numeric>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace nnm::cpu {

// calloc, not new[](): a large block comes zeroed from the kernel, so its pages are first touched
// by the (parallel) packing loops instead of a serial memset; layouts of tens of MB spent more time
// in that memset than in packing (float32 20000 x 512 on 2 cores: 60-65 ms, 29 ms with calloc; with
// madvise(MADV_HUGEPAGE) as well, 90-107 ms on 2 threads: not kept).
AlignedBuffer::AlignedBuffer(size_t bytes) : storage_(static_cast<uint8_t*>(std::calloc(bytes + 64, 1))), bytes_(bytes) {
  if (!storage_) throw std::bad_alloc();
  const auto addr = reinterpret_cast<uintptr_t>(storage_.get());
  ptr_ = storage_.get() + ((64 - addr % 64) % 64);
}

size_t element_size(DType dtype) { return dtype == kU8 ? 1 : dtype == kF32 ? 4 : 8; }

int64_t padded_dim(DType dtype, Metric metric, int64_t dim) {
  if (dtype == kU8 && metric == kL2) return round_up(dim, 4);
  return round_up(dim, 64 / static_cast<int64_t>(element_size(dtype)));
}

namespace {

// The packed uint8 layouts (offsets in scan_common.h): l2 stores value - 128, in groups of kGroupT
// points with 4 dims per lane (the operand order of vpdpbusd); l1 stores the values, in groups of
// kSadGroup points with 8 dims per lane (psadbw). Padded dims stay 0 in both: the queries' padded
// dims are 0 too, so they add nothing.
void pack_u8_grouped(const uint8_t* x, int64_t dim, const TrainLayout& t, uint8_t* out, int threads) {
  const int64_t dp = t.dim_padded;
  const bool l2 = t.metric == kL2;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t pos = 0; pos < t.m; ++pos) {
    const uint8_t* src = x + t.orig_of_pos[pos] * dim;
    if (l2) {  // value - 128 is value ^ 0x80 in bytes; 4 dims sit together in the layout
      int64_t k = 0;
      for (; k + 4 <= dim; k += 4) {
        uint32_t four;
        std::memcpy(&four, src + k, 4);
        four ^= 0x80808080u;
        std::memcpy(out + u8_l2_offset(pos, k, dp), &four, 4);
      }
      for (; k < dim; ++k) out[u8_l2_offset(pos, k, dp)] = static_cast<uint8_t>(src[k] ^ 0x80);
    } else {
      for (int64_t k = 0; k < dim; ++k) out[u8_l1_offset(pos, k, dp)] = src[k];
    }
  }
}

template <class T>
void pack_panels(TrainLayout& t, int threads) {
  const int64_t dp = t.dim_padded;
  t.panel = AlignedBuffer(t.m_padded * dp * sizeof(T));
  auto* out = reinterpret_cast<T*>(t.panel.data());
  const auto* rows = reinterpret_cast<const T*>(t.data.data());
  t.sq = AlignedBuffer(t.m_padded * sizeof(T));
  t.len.assign(t.m_padded, 0.0);
  auto* sq = reinterpret_cast<T*>(t.sq.data());
  // One tile (kTileT rows) per iteration: the panel's writes of a tile interleave its rows.
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t tile = 0; tile < t.m_padded / kTileT; ++tile) {
    const int64_t pos0 = tile * kTileT, count = std::min<int64_t>(kTileT, t.m - pos0);
    T* panel = out + tile * dp * kTileT;
    for (int64_t c = 0; c < count; ++c)
      for (int64_t k = 0; k < t.dim; ++k) panel[k * kTileT + c] = rows[(pos0 + c) * dp + k];
    if (count > 0) row_norms(rows + pos0 * dp, t.dtype, count, dp, sq + pos0, t.len.data() + pos0);
  }
  t.tile_len.assign(t.m_padded / kTileT, 0.0);
  for (int64_t pos = 0; pos < t.m; ++pos)
    t.tile_len[pos / kTileT] = std::max(t.tile_len[pos / kTileT], t.len[pos]);
}

}  // namespace

void row_norms(const void* x, DType dtype, int64_t n, int64_t dim, void* sq, double* len) {
  for (int64_t i = 0; i < n; ++i) {
    double s = 0.0;
    for (int64_t k = 0; k < dim; ++k) {
      const double v = dtype == kF32 ? static_cast<const float*>(x)[i * dim + k] : static_cast<const double*>(x)[i * dim + k];
      s += v * v;
    }
    // s is within (1 + gamma_dim) of |x|^2 in float64; sqrt adds half an ulp. dim < 2^40, so the
    // factor below (> (1 + dim 2^-53)(1 + 2^-52)) makes len an upper bound of ||x||.
    len[i] = std::sqrt(s) * (1.0 + (static_cast<double>(dim) + 8.0) * std::ldexp(1.0, -52));
    if (dtype == kF32) static_cast<float*>(sq)[i] = static_cast<float>(s);
    else static_cast<double*>(sq)[i] = s;
  }
}

// Blocks of kAbandonBlock dims by decreasing variance summed over the block (ties: lower block first).
// With only_if_concentrated, empty (visit in memory order) unless the most spread half of the blocks
// holds at least kConcentrated of the variance: out-of-order blocks cost the uint8 l1 kernel 13-23 %
// on data whose spread is even (uniform random: nothing to gain; Zen 5, AVX2 and AVX-512 VNNI, one
// thread, also after the first-vector test; prefetching the next block did not recover it on AVX2),
// and gain ~16 % on MNIST (Zen 5, AVX2).
constexpr double kConcentrated = 2.0 / 3.0;
static std::vector<int32_t> spread_order(const uint8_t* x, int64_t m, int64_t dim, int64_t dim_padded,
                                         bool only_if_concentrated) {
  std::vector<double> sum(dim, 0.0), sq(dim, 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t k = 0; k < dim; ++k) {
      const double v = x[i * dim + k];
      sum[k] += v;
      sq[k] += v * v;
    }
  const int64_t n_blocks = dim_padded / kAbandonBlock;
  std::vector<double> spread(n_blocks, 0.0);
  for (int64_t k = 0; k < dim && m > 0; ++k) {
    const double mean = sum[k] / static_cast<double>(m);
    spread[k / kAbandonBlock] += sq[k] / static_cast<double>(m) - mean * mean;
  }
  std::vector<int32_t> order(n_blocks);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return spread[a] > spread[b]; });
  if (only_if_concentrated) {
    double total = 0.0, top = 0.0;
    for (int64_t b = 0; b < n_blocks; ++b) total += spread[order[b]], top += b < (n_blocks + 1) / 2 ? spread[order[b]] : 0.0;
    if (!(top >= kConcentrated * total)) order.clear();
  }
  return order;
}

std::shared_ptr<const TrainLayout> build_train_layout(const void* x, DType dtype, int64_t m, int64_t dim,
                                                      const int32_t* class_id, Metric metric, int threads) {
#ifdef _OPENMP
  if (threads <= 0) threads = omp_get_max_threads();
#else
  threads = 1;
#endif
  auto t = std::make_shared<TrainLayout>();
  t->dtype = dtype;
  t->metric = metric;
  t->m = m;
  t->dim = dim;
  t->dim_padded = padded_dim(dtype, metric, dim);
  t->m_padded = round_up(std::max<int64_t>(m, 1), kTileT);

  // Sorting by class makes most tiles single-class; stability keeps ties resolvable by position.
  t->orig_of_pos.resize(m);
  std::iota(t->orig_of_pos.begin(), t->orig_of_pos.end(), 0);
  std::stable_sort(t->orig_of_pos.begin(), t->orig_of_pos.end(),
                   [&](int64_t a, int64_t b) { return class_id[a] < class_id[b]; });
  t->pos_of_orig.resize(m);
  for (int64_t pos = 0; pos < m; ++pos) t->pos_of_orig[t->orig_of_pos[pos]] = pos;
  t->t_class.assign(t->m_padded, kNoClass - 1);
  for (int64_t pos = 0; pos < m; ++pos) t->t_class[pos] = class_id[t->orig_of_pos[pos]];
  t->n_classes = m > 0 ? t->t_class[m - 1] + 1 : 0;  // sorted by class: the last is the largest

  const size_t es = element_size(dtype);
  const auto* src = static_cast<const uint8_t*>(x);
  if (dtype == kU8 && metric != kLinf) {
    t->data = AlignedBuffer(t->m_padded * t->dim_padded);
    pack_u8_grouped(src, dim, *t, t->data.data(), threads);
  } else {
    t->data = AlignedBuffer(t->m_padded * t->dim_padded * es);
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t pos = 0; pos < m; ++pos)
      std::memcpy(t->data.data() + pos * t->dim_padded * es, src + t->orig_of_pos[pos] * dim * es, dim * es);
  }
  if (dtype == kU8 && metric == kL2) {
    t->t_aux.assign(t->m_padded, 0);
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t pos = 0; pos < m; ++pos) {
      const uint8_t* r = src + t->orig_of_pos[pos] * dim;
      uint32_t s = 0;
      for (int64_t k = 0; k < dim; ++k) s += static_cast<uint32_t>(r[k]) * r[k];
      t->t_aux[pos] = s;
    }
  }
  if (dtype != kU8 && metric == kL2) {
    if (dtype == kF32) pack_panels<float>(*t, threads);
    else pack_panels<double>(*t, threads);
  }
  if (dtype == kU8 && metric == kLinf) t->block_order = spread_order(src, m, dim, t->dim_padded, false);
  if (dtype == kU8 && metric == kL1) t->block_order = spread_order(src, m, dim, t->dim_padded, true);
  return t;
}

size_t packed_query_bytes(DType dtype, Metric metric, int64_t n, int64_t dim_padded, bool u8_l2_words) {
  const size_t es = dtype == kU8 && metric == kL2 && u8_l2_words ? 2 : element_size(dtype);
  return static_cast<size_t>(round_up(std::max<int64_t>(n, 1), kTileQ) * dim_padded) * es;
}

void pack_queries(const void* x, DType dtype, Metric metric, int64_t n, int64_t dim, int64_t dim_padded,
                  uint8_t* out, int32_t* aux, bool u8_l2_words) {
  const size_t es = element_size(dtype);
  const auto* src = static_cast<const uint8_t*>(x);
  std::memset(out, 0, packed_query_bytes(dtype, metric, n, dim_padded, u8_l2_words));
  if (dtype == kU8 && metric == kL2 && u8_l2_words) {
    auto* words = reinterpret_cast<int16_t*>(out);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < dim; ++k) words[i * dim_padded + k] = src[i * dim + k];
  } else {
    for (int64_t i = 0; i < n; ++i) std::memcpy(out + i * dim_padded * es, src + i * dim * es, dim * es);
  }
  if (dtype == kU8 && metric == kL2) {
    for (int64_t i = 0; i < n; ++i) {
      const uint8_t* r = src + i * dim;
      uint32_t sq = 0, sum = 0;
      for (int64_t k = 0; k < dim; ++k) {
        sq += static_cast<uint32_t>(r[k]) * r[k];
        sum += r[k];
      }
      aux[i] = static_cast<int32_t>(sq - 256u * sum);
    }
  }
}

}  // namespace nnm::cpu
