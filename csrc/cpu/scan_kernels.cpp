// Scan kernels: this one source is compiled once per instruction set (CMakeLists.txt adds it once per
// variant with its -m flags and NNM_ISA = generic | avx2 | avx2_vnni | avx512 | avx512_vnni), the way
// faiss builds its SIMD variants. cpu_features.cpp picks a variant at run time. Only kernel_table()
// has external linkage.
//
// Each kernel fills a kTileQ x kTileT tile of keys (see scan_common.h) and reduce_tile() folds it into
// the running minima. Layouts (built by train_layout.cpp):
//   uint8 l2   : training points in groups of 16: [group][dim_padded / 4][16][4] int8 (value - 128);
//                queries row-major uint8 (int16 words for the AVX2 variant: KernelTable::
//                u8_l2_query_words). |q - t|^2 = (|q|^2 - 256 sum q) + |t|^2 - 2 q.(t - 128),
//                exact modulo 2^32 and the true value fits in uint32 (dim <= 66051).
//   uint8 l1   : training points in groups of 8: [group][dim_padded / 8][8][8] uint8; queries row-major.
//   the others : row-major, zero padded to dim_padded, for training points and queries alike.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#else
#include "portable_kernels.h"  // the generic variant's vector-extension kernels
#endif

#include "key_codec.h"
#include "scan_common.h"

#ifndef NNM_ISA
#error "compile scan_kernels.cpp with -DNNM_ISA=<generic|avx2|avx2_vnni|avx512|avx512_vnni>"
#endif
#define NNM_STR2(x) #x
#define NNM_STR(x) NNM_STR2(x)

namespace nnm::cpu::NNM_ISA {
namespace {

#if defined(__AVX512F__)
constexpr int kVecBytes = 64;
#elif defined(__AVX2__)
constexpr int kVecBytes = 32;
#else
constexpr int kVecBytes = 16;
#endif
// Training points per register sub-tile of the row-major kernels: 4 x 4 accumulators fit AVX-512's
// 32 registers; narrower sets have 16 registers, so 4 x 3 (the operands partly from memory: uint8 l1
// on AVX2 ran 1.2x faster than with 4 x 2 on Zen 5, alternating builds).
constexpr int kSubQ = 4;
constexpr int kSubT = kVecBytes == 64 ? 4 : 3;
static_assert(kTileQ % kSubQ == 0 && kTileT % kSubT == 0, "sub-tiles must cover the tile");

template <class K>
inline K min_key(K a, K b) { return a < b ? a : b; }

// The smallest key of each category (0: the query's class y, 1: any other) in one row of a tile,
// leaving out padding (t >= cols) and the leave-one-out column skip. Training points are sorted by
// class, so most tiles hold one class and no padding: a row's minimum is then a plain loop the
// compiler vectorises instead of the masked one (which costs as much as the kernel at small D).
template <class Key>
inline void row_minima(const Key* v, const int32_t* t_class, int32_t y, int64_t cols, int64_t skip,
                       bool one_class, Key out[2]) {
  constexpr Key kMax = kNoKey<Key>;
  out[0] = out[1] = kMax;
  if (one_class && (skip < 0 || skip >= kTileT)) {
    Key m = kMax;
    for (int t = 0; t < kTileT; ++t) m = v[t] < m ? v[t] : m;
    out[t_class[0] == y ? 0 : 1] = m;
    return;
  }
  for (int t = 0; t < kTileT; ++t) {
    const bool ok = t < cols && t != skip;
    const bool same = t_class[t] == y;
    out[0] = min_key(out[0], ok && same ? v[t] : kMax);
    out[1] = min_key(out[1], ok && !same ? v[t] : kMax);
  }
}

// A tile of training positions [j0, j0 + kTileT) holds one class and no padding.
inline bool one_class_tile(const ScanJob& job, int64_t j0) {
  return job.m_valid - j0 >= kTileT && job.t_class[j0] == job.t_class[j0 + kTileT - 1];
}

// Fold one tile into job.best and push the entries within the candidate threshold.
template <class Codec>
void reduce_tile(const typename Codec::Key* tile, int64_t q0, int64_t j0, const ScanJob& job) {
  using Key = typename Codec::Key;
  constexpr Key kMax = kNoKey<Key>;
  const int32_t* t_class = job.t_class + j0;
  const int64_t rows = job.n_q - q0 < kTileQ ? job.n_q - q0 : kTileQ;
  const int64_t cols = job.m_valid - j0 < kTileT ? job.m_valid - j0 : kTileT;  // rest is padding
  const bool one_class = one_class_tile(job, j0);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = q0 + r;
    const int32_t y = job.q_class[i];
    const int64_t skip = job.q_skip[i] - j0;  // leave-one-out column, usually outside the tile
    const Key* v = tile + r * kTileT;
    Key tile_min[2];
    row_minima(v, t_class, y, cols, skip, one_class, tile_min);
    const Key min_same = tile_min[0], min_other = tile_min[1];
    uint64_t* best = job.best + 2 * i;
    if constexpr (Codec::kExact) {
      for (int cat = 0; cat < 2; ++cat) {
        const Key m = tile_min[cat];
        if (m == kMax || m > best[cat]) continue;
        // a tie with the held minimum: a one-class tile's points are in original index order, so
        // none can win the tie when its first already has a higher index (l-inf ties are frequent)
        if (m == best[cat] && one_class && job.t_orig[j0] > job.best_orig[2 * i + cat]) continue;
        int64_t lowest = -1;  // the lowest original index among this tile's points at value m
        for (int t = 0; t < cols; ++t) {
          if (t == skip || v[t] != m || (t_class[t] == y) != (cat == 0)) continue;
          const int64_t orig = job.t_orig[j0 + t];
          if (lowest < 0 || orig < lowest) lowest = orig;
        }
        int64_t& held = job.best_orig[2 * i + cat];
        if (m < best[cat] || lowest < held) {
          best[cat] = m;
          held = lowest;
        }
      }
      continue;
    }
    if (min_same < best[0]) best[0] = min_same;
    if (min_other < best[1]) best[1] = min_other;
    const Key thr_same = Codec::threshold(static_cast<Key>(best[0]), job.rho, job.alpha);
    const Key thr_other = Codec::threshold(static_cast<Key>(best[1]), job.rho, job.alpha);
    bool any = false;
    for (int t = 0; t < kTileT; ++t) {
      const bool ok = t < cols && t != skip;
      any |= ok && v[t] <= (t_class[t] == y ? thr_same : thr_other);
    }
    if (!any) continue;  // the common case once the minima have settled
    for (int t = 0; t < kTileT; ++t) {
      const bool same = t_class[t] == y;
      if (t < cols && t != skip && v[t] <= (same ? thr_same : thr_other))
        job.sink->push(job.sink, i, same ? 0 : 1, j0 + t, v[t]);
    }
  }
}

// ---- uint8, l2: integer dot products (AVX-512 VNNI vpdpbusd where available) ----------------------
// Dims are processed in chunks of kChunkDims so the 48-point slice of the training layout (48 x 256
// bytes) stays in L1 while every query tile of the job uses it; the int32 accumulators of all query
// tiles live in a per-thread buffer between chunks.
constexpr int64_t kChunkDims = 256;
static_assert(kChunkDims % 4 == 0, "chunks hold whole 4-byte groups");
// Nibble path (AVX-512 without VNNI): dims summed in int16 before widening to int32; 8 steps of 4
// dims keep the int16 sums exact.
constexpr int64_t kWidenDims = 32;
static_assert(kChunkDims % kWidenDims == 0, "widening blocks tile a chunk");

#if defined(__AVX512BW__) && !defined(__AVX512VNNI__)
// Without vpdpbusd the query bytes are split into nibbles (q = 16 hi + lo) for vpmaddubsw; split
// once per call into nib[0] (lo) and nib[1] (hi), [query][dim - k_begin], so the inner loops only
// broadcast (the split's and / shift at every broadcast would outnumber the int16 adds).
inline void split_nibbles(const uint8_t* q, int64_t dp, int64_t k_begin, int64_t k_end,
                          uint8_t (&nib)[2][kTileQ][kChunkDims]) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const int64_t len = k_end - k_begin;
  for (int r = 0; r < kTileQ; ++r) {
    const uint8_t* row = q + r * dp + k_begin;
    int64_t k = 0;
    for (; k + 32 <= len; k += 32) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + k));
      _mm256_store_si256(reinterpret_cast<__m256i*>(&nib[0][r][k]), _mm256_and_si256(v, low4));
      _mm256_store_si256(reinterpret_cast<__m256i*>(&nib[1][r][k]), _mm256_and_si256(_mm256_srli_epi16(v, 4), low4));
    }
    for (; k < len; ++k) nib[0][r][k] = row[k] & 15, nib[1][r][k] = row[k] >> 4;  // the row's last < 32 dims
  }
}
#endif

#if defined(__AVX2__) && !defined(__AVX512BW__) && !defined(__AVXVNNI__)
#define NNM_U8_L2_WORDS 1
// AVX2 without VNNI: the dot products in int16 words by vpmaddwd (q in [0, 255] times t - 128, pairs
// summed into int32: no saturation and no int16 sums to widen, unlike a vpmaddubsw path, which needs
// two products per pair-dim (query nibbles) and a widening every 32 dims; both instructions run on
// the same two pipes on Zen 3 / 4 and Intel cores). Zen 4, one thread, 256 x 8000 x 3072: 166 GOP/s
// against 141 for the nibble kernel it replaced (147 with that kernel's blocks written in asm). Each
// chunk of the training tile is sign-extended to words once, as [group][dim pair][16 points][2
// dims], and used by every query tile of the job; the queries arrive as words (pack_queries).
struct WordChunk {
  alignas(32) int16_t t[3][kChunkDims / 2][kGroupT * 2];  // [group][dim pair][16 points x 2 dims]
};

void widen_train_chunk(const int8_t* t, int64_t group_stride, int64_t k_begin, int64_t k_end, WordChunk& w) {
  // Dword lanes (a point's 2 dims) of 4 points x 4 dims, reordered: dims 0-1 of the 4, then 2-3.
  const __m256i pair_order = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  for (int g = 0; g < 3; ++g)
    for (int64_t j = 0; j < (k_end - k_begin) / 4; ++j) {
      const int8_t* src = t + g * group_stride + (k_begin + 4 * j) * kGroupT;  // 16 points x 4 dims
      __m256i v[4];  // points 4c .. 4c + 3
      for (int c = 0; c < 4; ++c)
        v[c] = _mm256_permutevar8x32_epi32(
            _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 16 * c))), pair_order);
      for (int h = 0; h < 2; ++h) {  // points 0-7, 8-15
        _mm256_store_si256(reinterpret_cast<__m256i*>(&w.t[g][2 * j][16 * h]), _mm256_permute2x128_si256(v[2 * h], v[2 * h + 1], 0x20));
        _mm256_store_si256(reinterpret_cast<__m256i*>(&w.t[g][2 * j + 1][16 * h]), _mm256_permute2x128_si256(v[2 * h], v[2 * h + 1], 0x31));
      }
    }
}

// acc[kTileQ][kTileT] += q(word rows q0.., dims [k_begin, k_end)) . t(the widened chunk), int32 mod
// 2^32. Register tile: 4 queries x 16 points, 8 int32 sums over the whole chunk; each step takes 2 dims
// (a 32-bit broadcast of the query's pair: steps of 4 dims with 64-bit broadcasts over 8 points ran
// at 0.8x in a microbenchmark on Zen 4).
void dot_u8_words(const ScanJob& job, int64_t q0, const WordChunk& w, int64_t k_begin, int64_t k_end,
                  int32_t* acc_out) {
  const int64_t dp = job.dim_padded, pairs = (k_end - k_begin) / 2;
  // The queries come as int16 words (pack_queries with u8_l2_query_words), rows dp words apart.
  const int16_t* qw = static_cast<const int16_t*>(job.queries) + q0 * dp + k_begin;
  for (int rb = 0; rb < kTileQ; rb += 4)
    for (int g = 0; g < 3; ++g) {
      const int16_t* tw = &w.t[g][0][0];
      __m256i a[4][2];
      for (auto& row : a) row[0] = row[1] = _mm256_setzero_si256();
#pragma GCC unroll 8
      for (int64_t j = 0; j < pairs; ++j) {
        const __m256i t0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(tw + 32 * j));       // points 0-7
        const __m256i t1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(tw + 32 * j + 16));  // points 8-15
#pragma GCC unroll 4
        for (int r = 0; r < 4; ++r) {
          int32_t q2;
          std::memcpy(&q2, qw + (rb + r) * dp + 2 * j, 4);
          const __m256i qb = _mm256_set1_epi32(q2);
          a[r][0] = _mm256_add_epi32(a[r][0], _mm256_madd_epi16(qb, t0));
          a[r][1] = _mm256_add_epi32(a[r][1], _mm256_madd_epi16(qb, t1));
        }
        // Pins the sums in registers at each step: GCC would otherwise reassociate the adds into
        // a tree whose partial products all live at once (spills). Emits nothing. (The same step
        // written out in asm, 22 instructions per 8 vpmaddwd instead of GCC's 26, ran at 0.92x:
        // GCC's order, broadcasts first and the adds after the multiplies, schedules better.)
        __asm__("" : "+x"(a[0][0]), "+x"(a[0][1]), "+x"(a[1][0]), "+x"(a[1][1]),
                     "+x"(a[2][0]), "+x"(a[2][1]), "+x"(a[3][0]), "+x"(a[3][1]));
      }
#pragma GCC unroll 4
      for (int r = 0; r < 4; ++r)
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
          __m256i* out = reinterpret_cast<__m256i*>(acc_out + (rb + r) * kTileT + g * kGroupT + 8 * h);
          _mm256_storeu_si256(out, _mm256_add_epi32(_mm256_loadu_si256(out), a[r][h]));
        }
    }
}
#endif

#if !defined(NNM_U8_L2_WORDS)
// acc[kTileQ][kTileT] += q(rows q0.., dims [k_begin, k_end)) . t(tile at j0), int32 arithmetic mod 2^32.
void dot_u8_tile(const ScanJob& job, int64_t q0, int64_t j0, int64_t k_begin, int64_t k_end, int32_t* acc_out) {
  const int64_t dp = job.dim_padded;
  const uint8_t* q = static_cast<const uint8_t*>(job.queries) + q0 * dp;
  const int8_t* t = static_cast<const int8_t*>(job.train) + j0 * dp;  // first of 3 groups
  const int64_t group_stride = kGroupT * dp;
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
  // Fully unrolled so the 24 accumulators stay in registers (an indexed array would live on the stack).
  __m512i acc[kTileQ][3];
#pragma GCC unroll 8
  for (int r = 0; r < kTileQ; ++r)
#pragma GCC unroll 3
    for (int c = 0; c < 3; ++c) acc[r][c] = _mm512_loadu_si512(acc_out + r * kTileT + 16 * c);
  for (int64_t k = k_begin; k < k_end; k += 4) {
    // 16 training points x 4 dims per vector; 4 query bytes broadcast to every lane.
    const __m512i b0 = _mm512_loadu_si512(t + k * kGroupT);
    const __m512i b1 = _mm512_loadu_si512(t + group_stride + k * kGroupT);
    const __m512i b2 = _mm512_loadu_si512(t + 2 * group_stride + k * kGroupT);
#pragma GCC unroll 8
    for (int r = 0; r < kTileQ; ++r) {
      int32_t q4;
      std::memcpy(&q4, q + r * dp + k, 4);
      const __m512i a = _mm512_set1_epi32(q4);
      acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], a, b0);
      acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], a, b1);
      acc[r][2] = _mm512_dpbusd_epi32(acc[r][2], a, b2);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < kTileQ; ++r)
#pragma GCC unroll 3
    for (int c = 0; c < 3; ++c) _mm512_storeu_si512(acc_out + r * kTileT + 16 * c, acc[r][c]);
#elif defined(__AVX512BW__)
  // AVX-512 without VNNI (Skylake-SP): vpmaddubsw, which multiplies unsigned by signed bytes but
  // saturates its int16 pair sums, on the query bytes split into nibbles (both <= 15: |pair sum| <=
  // 3840); the int16 sums accumulate for kWidenDims dims (8 steps: |sum| <= 30720, exact) before
  // vpmaddwd by 1 and by 16 widens them into int32. One group of 16 points x 4 dims per vector.
  // Register tile: 2 queries x 48 points, int16 accumulators (low, high nibble) and the int32 sums
  // they widen into: 18 of the 32 registers (4 x 48 spilled 8 accumulators to the stack: 0.57 of the
  // sequence peak).
  alignas(32) uint8_t nib[2][kTileQ][kChunkDims];
  split_nibbles(q, dp, k_begin, k_end, nib);
  const __m512i ones = _mm512_set1_epi16(1), sixteens = _mm512_set1_epi16(16);
  for (int rb = 0; rb < kTileQ; rb += 2) {
    __m512i wide[2][3];
#pragma GCC unroll 2
    for (int r = 0; r < 2; ++r)
#pragma GCC unroll 3
      for (int g = 0; g < 3; ++g) wide[r][g] = _mm512_loadu_si512(acc_out + (rb + r) * kTileT + 16 * g);
    for (int64_t k0 = k_begin; k0 < k_end; k0 += kWidenDims) {
      const int64_t k1 = k0 + kWidenDims < k_end ? k0 + kWidenDims : k_end;
      __m512i lo[2][3], hi[2][3];
#pragma GCC unroll 2
      for (int r = 0; r < 2; ++r)
#pragma GCC unroll 3
        for (int g = 0; g < 3; ++g) lo[r][g] = hi[r][g] = _mm512_setzero_si512();
      const int8_t* tk = t + k0 * kGroupT;            // pointers stepped once per 4 dims
      const uint8_t* nk = &nib[0][rb][k0 - k_begin];  // lo of query rb; hi at +kTileQ * kChunkDims
#pragma GCC unroll 8
      for (int64_t k = k0; k < k1; k += 4, tk += 4 * kGroupT, nk += 4) {
        const __m512i tv[3] = {_mm512_loadu_si512(tk), _mm512_loadu_si512(tk + group_stride),
                               _mm512_loadu_si512(tk + 2 * group_stride)};
#pragma GCC unroll 2
        for (int r = 0; r < 2; ++r) {
          int32_t l4, h4;
          std::memcpy(&l4, nk + r * kChunkDims, 4);
          std::memcpy(&h4, nk + (kTileQ + r) * kChunkDims, 4);
          const __m512i q_lo = _mm512_set1_epi32(l4), q_hi = _mm512_set1_epi32(h4);
#pragma GCC unroll 3
          for (int g = 0; g < 3; ++g) {
            lo[r][g] = _mm512_add_epi16(lo[r][g], _mm512_maddubs_epi16(q_lo, tv[g]));
            hi[r][g] = _mm512_add_epi16(hi[r][g], _mm512_maddubs_epi16(q_hi, tv[g]));
          }
        }
      }
#pragma GCC unroll 2
      for (int r = 0; r < 2; ++r)
#pragma GCC unroll 3
        for (int g = 0; g < 3; ++g)
          wide[r][g] = _mm512_add_epi32(wide[r][g], _mm512_add_epi32(_mm512_madd_epi16(lo[r][g], ones),
                                                                     _mm512_madd_epi16(hi[r][g], sixteens)));
    }
#pragma GCC unroll 2
    for (int r = 0; r < 2; ++r)
#pragma GCC unroll 3
      for (int g = 0; g < 3; ++g) _mm512_storeu_si512(acc_out + (rb + r) * kTileT + 16 * g, wide[r][g]);
  }
#elif defined(__AVXVNNI__)
  // AVX-VNNI (Intel client cores, Zen 5): the VEX vpdpbusd on 32-byte vectors, exact like the
  // AVX-512 path. Register tile: 4 queries x 16 points (one group, two halves of 8 points).
  for (int rb = 0; rb < kTileQ; rb += 4)
    for (int g = 0; g < 3; ++g) {
      const int8_t* tg = t + g * group_stride;
      int32_t* out = acc_out + rb * kTileT + g * kGroupT;
      __m256i acc[4][2];
#pragma GCC unroll 4
      for (int r = 0; r < 4; ++r)
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) acc[r][h] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(out + r * kTileT + 8 * h));
      for (int64_t k = k_begin; k < k_end; k += 4) {
        const __m256i t0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tg + k * kGroupT));       // points 0-7
        const __m256i t1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tg + k * kGroupT + 32));  // points 8-15
#pragma GCC unroll 4
        for (int r = 0; r < 4; ++r) {
          int32_t q4;
          std::memcpy(&q4, q + (rb + r) * dp + k, 4);
          const __m256i qb = _mm256_set1_epi32(q4);
          acc[r][0] = _mm256_dpbusd_avx_epi32(acc[r][0], qb, t0);
          acc[r][1] = _mm256_dpbusd_avx_epi32(acc[r][1], qb, t1);
        }
      }
#pragma GCC unroll 4
      for (int r = 0; r < 4; ++r)
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + r * kTileT + 8 * h), acc[r][h]);
    }
#else
  // SSE2 / NEON / any target: int16-widened multiply-add, register-blocked (portable_kernels.h).
  portable::dot_u8_tile(q, t, dp, group_stride, k_begin, k_end, acc_out);
#endif
}
#endif  // !NNM_U8_L2_WORDS

// Keys (exact |q - t|^2) of every query of the job against the tile at j0, into keys[q * kTileT + c].
// The int32 dot products accumulate in the same buffer first.
void produce_u8_l2(const ScanJob& job, int64_t j0, uint32_t* keys) {
  int32_t* acc = reinterpret_cast<int32_t*>(keys);
  const int64_t rows = (job.n_q + kTileQ - 1) / kTileQ * kTileQ;
  const int64_t dp = job.dim_padded;
  std::memset(acc, 0, sizeof(int32_t) * kTileT * rows);
  for (int64_t k0 = 0; k0 < dp; k0 += kChunkDims) {
    const int64_t k1 = k0 + kChunkDims < dp ? k0 + kChunkDims : dp;
#if defined(NNM_U8_L2_WORDS)
    alignas(32) static thread_local WordChunk words;
    widen_train_chunk(static_cast<const int8_t*>(job.train) + j0 * dp, kGroupT * dp, k0, k1, words);
    for (int64_t q0 = 0; q0 < job.n_q; q0 += kTileQ) dot_u8_words(job, q0, words, k0, k1, acc + q0 * kTileT);
#else
    for (int64_t q0 = 0; q0 < job.n_q; q0 += kTileQ) dot_u8_tile(job, q0, j0, k0, k1, acc + q0 * kTileT);
#endif
  }
  // |q - t|^2 = (|q|^2 - 256 sum q) + |t|^2 - 2 q.(t - 128), exact modulo 2^32
  for (int64_t i = 0; i < job.n_q; ++i) {
    const uint32_t qa = static_cast<uint32_t>(job.q_aux[i]);
    for (int c = 0; c < kTileT; ++c)
      keys[i * kTileT + c] = qa + job.t_aux[j0 + c] - 2u * static_cast<uint32_t>(acc[i * kTileT + c]);
  }
}

// ---- uint8, l1 / linf: row-major, 64 bytes at a time ----------------------------------------------
#if defined(__AVX2__)
inline uint32_t hmax_epu8(__m128i s) {
  s = _mm_max_epu8(s, _mm_srli_si128(s, 8));
  s = _mm_max_epu8(s, _mm_srli_si128(s, 4));
  s = _mm_max_epu8(s, _mm_srli_si128(s, 2));
  s = _mm_max_epu8(s, _mm_srli_si128(s, 1));
  return static_cast<uint32_t>(_mm_cvtsi128_si32(s) & 0xff);
}
inline uint32_t hmax_epu8(__m256i v) {
  return hmax_epu8(_mm_max_epu8(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)));
}
#endif
#if defined(__AVX512BW__)
inline uint32_t hmax_epu8(__m512i v) {
  return hmax_epu8(_mm256_max_epu8(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1)));
}
#endif

// out[a][b] = l-inf distance of query row a and training row b (row-major, dp apart), for the top-K
// and bisector jobs (the nearest search abandons pairs early, below).
void subtile_u8_linf(const uint8_t* q, const uint8_t* t, int64_t dp, uint32_t out[kSubQ][kSubT]) {
#if defined(__AVX512BW__)
  __m512i acc[kSubQ][kSubT];
  for (int a = 0; a < kSubQ; ++a)
    for (int b = 0; b < kSubT; ++b) acc[a][b] = _mm512_setzero_si512();
  for (int64_t k = 0; k < dp; k += 64) {
    __m512i qa[kSubQ], tb[kSubT];
    for (int a = 0; a < kSubQ; ++a) qa[a] = _mm512_loadu_si512(q + a * dp + k);
    for (int b = 0; b < kSubT; ++b) tb[b] = _mm512_loadu_si512(t + b * dp + k);
    for (int a = 0; a < kSubQ; ++a)
      for (int b = 0; b < kSubT; ++b) {  // |a - b| = (a -sat b) | (b -sat a) for unsigned bytes
        const __m512i d = _mm512_or_si512(_mm512_subs_epu8(qa[a], tb[b]), _mm512_subs_epu8(tb[b], qa[a]));
        acc[a][b] = _mm512_max_epu8(acc[a][b], d);
      }
  }
  for (int a = 0; a < kSubQ; ++a)
    for (int b = 0; b < kSubT; ++b) out[a][b] = hmax_epu8(acc[a][b]);
#elif defined(__AVX2__)
  __m256i acc[kSubQ][kSubT];
  for (int a = 0; a < kSubQ; ++a)
    for (int b = 0; b < kSubT; ++b) acc[a][b] = _mm256_setzero_si256();
  for (int64_t k = 0; k < dp; k += 32) {
    __m256i qa[kSubQ], tb[kSubT];
    for (int a = 0; a < kSubQ; ++a) qa[a] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + a * dp + k));
    for (int b = 0; b < kSubT; ++b) tb[b] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + b * dp + k));
    for (int a = 0; a < kSubQ; ++a)
      for (int b = 0; b < kSubT; ++b) {
        const __m256i d = _mm256_or_si256(_mm256_subs_epu8(qa[a], tb[b]), _mm256_subs_epu8(tb[b], qa[a]));
        acc[a][b] = _mm256_max_epu8(acc[a][b], d);
      }
  }
  for (int a = 0; a < kSubQ; ++a)
    for (int b = 0; b < kSubT; ++b) out[a][b] = hmax_epu8(acc[a][b]);
#else
  // 16-byte vectors: pmaxub on SSE2, its portable form elsewhere (portable_kernels.h).
  portable::subtile_u8_linf<kSubQ, kSubT>(q, t, dp, out);
#endif
}

// ---- uint8, l-inf with early abandoning (the nearest search) ---------------------------------------
// A pair's l-inf distance is a maximum over dims, so once its partial maximum exceeds the limit of
// abandon_limit (the running minimum of the pair's category, less one where the pair could only lose
// a tie, which the lowest index wins), the pair can change nothing reduce_tile keeps: it is abandoned
// and reports kAbandoned. The kernel visits blocks of kAbandonBlock dims in job.block_order (most
// spread first), one query against a run of kAbandonRun points at a time, and stops the run once all
// its pairs are above. Every distance that can matter is computed in full, so results equal
// produce_rows' (l-inf distances crowd at the minimum, so ties are common: tests/test_search.py).
// The vector primitives of each instruction set; limit_vector(lim) is what any_above compares with.
#if defined(__AVX512BW__)
using VecU8 = __m512i;
inline VecU8 absdiff_max(VecU8 acc, VecU8 a, VecU8 b) {
  return _mm512_max_epu8(acc, _mm512_or_si512(_mm512_subs_epu8(a, b), _mm512_subs_epu8(b, a)));
}
inline VecU8 load_u8(const uint8_t* p) { return _mm512_loadu_si512(p); }
inline VecU8 limit_vector(uint32_t lim) { return _mm512_set1_epi8(static_cast<char>(lim)); }
inline bool any_above(VecU8 acc, VecU8 limit) { return _mm512_cmpgt_epu8_mask(acc, limit) != 0; }
inline VecU8 zero_u8() { return _mm512_setzero_si512(); }
#elif defined(__AVX2__)
using VecU8 = __m256i;
inline VecU8 absdiff_max(VecU8 acc, VecU8 a, VecU8 b) {
  return _mm256_max_epu8(acc, _mm256_or_si256(_mm256_subs_epu8(a, b), _mm256_subs_epu8(b, a)));
}
inline VecU8 load_u8(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
// acc > lim for some byte: max(acc, lim + 1) == acc there (no unsigned byte compare on AVX2); lim < 255
inline VecU8 limit_vector(uint32_t lim) { return _mm256_set1_epi8(static_cast<char>(lim + 1)); }
inline bool any_above(VecU8 acc, VecU8 limit) {
  return _mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_max_epu8(acc, limit), acc)) != 0;
}
inline VecU8 zero_u8() { return _mm256_setzero_si256(); }
#else
// Portable 16-byte vectors (SSE2, NEON, ...): the compiler picks the instructions.
typedef uint8_t VecU8 __attribute__((vector_size(16)));
inline VecU8 absdiff_max(VecU8 acc, VecU8 a, VecU8 b) {
  const VecU8 d = a > b ? a - b : b - a;
  return acc > d ? acc : d;
}
inline VecU8 load_u8(const uint8_t* p) {
  VecU8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline VecU8 limit_vector(uint32_t lim) { return VecU8{} + static_cast<uint8_t>(lim); }
inline bool any_above(VecU8 acc, VecU8 limit) {
  const auto above = acc > limit;  // lanes of all ones where above
  uint64_t w[2];
  std::memcpy(w, &above, sizeof w);
  return (w[0] | w[1]) != 0;
}
inline VecU8 zero_u8() { return VecU8{}; }
inline uint32_t hmax_epu8(VecU8 v) {
  uint8_t m = 0;
  for (int l = 0; l < 16; ++l) m = v[l] > m ? v[l] : m;
  return m;
}
#endif
constexpr int kU8Lanes = static_cast<int>(sizeof(VecU8));
inline int64_t round_up_tiles(int64_t n) { return (n + kTileQ - 1) / kTileQ * kTileQ; }
static_assert(kAbandonBlock % kU8Lanes == 0, "an abandoning block holds whole vectors");

// Blocks visited before the first abandoning test (the first ones rarely settle every pair).
constexpr int64_t kFirstCheck = 2;
// What an abandoned pair reports: above every limit (<= 255), so reduce_tile discards it as it would
// the true distance, which is above the limit too.
constexpr uint32_t kAbandoned = 256;

// Training points per abandoning run, against one query: a run stops once all its pairs are above,
// so few pairs per run (registers allow more) stop sooner.
constexpr int kAbandonRun = 8;
static_assert(kTileT % kAbandonRun == 0, "runs cover the tile");

// out[b] for the kAbandonRun rows at t against query q: the l-inf distance, or kAbandoned once the
// pair is above lim (nothing is abandoned when lim >= 255: no byte exceeds it).
void run_u8_linf(const uint8_t* q, const uint8_t* t, int64_t dp, const int32_t* order, uint32_t lim,
                 uint32_t out[kAbandonRun]) {
  const bool may_abandon = lim < 255;
  const VecU8 limit = limit_vector(lim < 255 ? lim : 254);  // unused when lim >= 255
  VecU8 acc[kAbandonRun];  // in registers: every loop over the run is unrolled
#pragma GCC unroll 8
  for (int b = 0; b < kAbandonRun; ++b) acc[b] = zero_u8();
  const int64_t n_blocks = dp / kAbandonBlock;
  for (int64_t s = 0; s < n_blocks; ++s) {
    const int64_t k0 = (order != nullptr ? order[s] : s) * kAbandonBlock;
    for (int64_t k = k0; k < k0 + kAbandonBlock; k += kU8Lanes) {
      const VecU8 qv = load_u8(q + k);
#pragma GCC unroll 8
      for (int b = 0; b < kAbandonRun; ++b) acc[b] = absdiff_max(acc[b], qv, load_u8(t + b * dp + k));
    }
    if (may_abandon && s + 1 >= kFirstCheck) {
      bool all_above = true;
#pragma GCC unroll 8
      for (int b = 0; b < kAbandonRun; ++b) all_above &= any_above(acc[b], limit);
      if (all_above) break;
    }
  }
  // a pair above the limit reports kAbandoned instead of its (partial) maximum: the horizontal
  // reduction would cost about as much as the blocks skipped
#pragma GCC unroll 8
  for (int b = 0; b < kAbandonRun; ++b)
    out[b] = may_abandon && any_above(acc[b], limit) ? kAbandoned : hmax_epu8(acc[b]);
}

// The largest value a pair of query i with the run of points at sorted positions [p, p + run) can
// still matter at: the minimum of the pair's category (same / other class; a mixed run: the larger
// minimum), one less when the run is one class whose first (lowest) index is above the index holding
// that minimum, since such a pair loses a tie. kNoKey while the category has seen nothing.
uint64_t abandon_limit(const ScanJob& job, int64_t i, int64_t p, int run) {
  if (i >= job.n_q) return 0;  // padding query rows are never reduced: any limit will do
  const int32_t first = job.t_class[p], last = job.t_class[p + run - 1];
  const uint64_t same = job.best[2 * i], other = job.best[2 * i + 1];
  if (first != last) return same > other ? same : other;
  const int cat = first == job.q_class[i] ? 0 : 1;
  uint64_t m = job.best[2 * i + cat];
  const bool real = p + run <= job.m_valid;
  if (real && m != kNoKey<uint64_t> && m >= 1 && job.t_orig[p] > job.best_orig[2 * i + cat]) --m;
  return m;
}

// Top-K jobs: reduce_topk pushes a pair while its key is <= its class's threshold, so a run may stop
// once every pair is above the largest threshold among the run's classes (thresholds only fall).
uint64_t topk_limit(const ScanJob& job, int64_t i, int64_t p, int run) {
  if (i >= job.n_q) return 0;
  const uint64_t* thr = job.class_thr + i * job.n_classes;
  uint64_t m = 0;
  for (int64_t c = p; c < p + run && c < job.m_valid; ++c) m = thr[job.t_class[c]] > m ? thr[job.t_class[c]] : m;
  return m;
}

// What the abandoning kernels compare a pair's partial distance with: the nearest search's or top-K's.
inline uint64_t pair_limit(const ScanJob& job, int64_t i, int64_t p, int run) {
  return job.class_thr != nullptr ? topk_limit(job, i, p, run) : abandon_limit(job, i, p, run);
}

void produce_u8_linf(const ScanJob& job, int64_t j0, uint32_t* keys) {
  const int64_t dp = job.dim_padded;
  const uint8_t* t = static_cast<const uint8_t*>(job.train) + j0 * dp;
  for (int64_t i = 0; i < round_up_tiles(job.n_q); ++i) {
    const uint8_t* q = static_cast<const uint8_t*>(job.queries) + i * dp;
    for (int b0 = 0; b0 < kTileT; b0 += kAbandonRun) {
      const uint64_t lim = pair_limit(job, i, j0 + b0, kAbandonRun);
      run_u8_linf(q, t + b0 * dp, dp, job.block_order, lim < 255 ? static_cast<uint32_t>(lim) : 255, keys + i * kTileT + b0);
    }
  }
}

// ---- uint8, l1: points in lanes, early abandoning --------------------------------------------------
// The l1 layout (scan_common.h, u8_l1_offset) holds 8 dims of 8 points per 64 bytes, so psadbw of a
// layout vector against 8 query bytes broadcast to every 64-bit lane leaves each point's partial sum
// in its own lane: no horizontal sums at the end, and an abandoning test is one compare per vector.
// A run is kSadRunQ queries x kSadRunT points (below); it visits the blocks of kAbandonBlock dims in
// job.block_order (memory order when there is none) and, when abandoning, stops once every pair of
// the run is above its query's limit (pair_limit). A stopped pair reports its partial sum, which is above the
// limit like its true distance, so reduce_tile keeps exactly what it would keep from the full sums.
// Top-K and bisector jobs (no abandoning) run the same loop to the end.
inline int64_t bytes8(const uint8_t* p) {  // 8 query bytes, to broadcast to every 64-bit lane
  int64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
#if defined(__AVX512BW__)
using SadBytes = __m512i;
using SadSums = __m512i;
inline SadBytes load_sad(const uint8_t* p) { return _mm512_loadu_si512(p); }
inline SadBytes bcast8(const uint8_t* p) { return _mm512_set1_epi64(bytes8(p)); }
inline SadSums sad_add(SadSums acc, SadBytes a, SadBytes b) { return _mm512_add_epi64(acc, _mm512_sad_epu8(a, b)); }
inline SadSums sum_lanes(uint64_t v) { return _mm512_set1_epi64(static_cast<int64_t>(v)); }
// above(acc, lim): the lanes where acc > lim; the run's masks are and-ed, then all_set tests them once
using SadMask = __mmask8;
inline SadMask above(SadSums acc, SadSums lim) { return _mm512_cmpgt_epu64_mask(acc, lim); }
inline SadMask both(SadMask a, SadMask b) { return a & b; }
inline bool all_set(SadMask m) { return m == 0xff; }
inline void store_sums(uint32_t* out, SadSums acc) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm512_cvtepi64_epi32(acc));
}
inline SadSums load_sums(const uint32_t* in) {
  return _mm512_cvtepu32_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(in)));
}
#elif defined(__AVX2__)
using SadBytes = __m256i;
using SadSums = __m256i;
inline SadBytes load_sad(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline SadBytes bcast8(const uint8_t* p) { return _mm256_set1_epi64x(bytes8(p)); }
inline SadSums sad_add(SadSums acc, SadBytes a, SadBytes b) { return _mm256_add_epi64(acc, _mm256_sad_epu8(a, b)); }
inline SadSums sum_lanes(uint64_t v) { return _mm256_set1_epi64x(static_cast<int64_t>(v)); }
using SadMask = __m256i;  // signed 64-bit compare: sums and limits stay below 2^31 (kSadNever)
inline SadMask above(SadSums acc, SadSums lim) { return _mm256_cmpgt_epi64(acc, lim); }
inline SadMask both(SadMask a, SadMask b) { return _mm256_and_si256(a, b); }
inline bool all_set(SadMask m) { return _mm256_movemask_pd(_mm256_castsi256_pd(m)) == 0xf; }
inline void store_sums(uint32_t* out, SadSums acc) {  // the low 32 bits of the 4 lanes
  const __m256i low = _mm256_permutevar8x32_epi32(acc, _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(low));
}
inline SadSums load_sums(const uint32_t* in) {
  return _mm256_cvtepu32_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in)));
}
#else
using SadBytes = portable::u8x16;
using SadSums = portable::u64x2;
inline SadBytes load_sad(const uint8_t* p) { return portable::load<SadBytes>(p); }
inline SadBytes bcast8(const uint8_t* p) {
  const auto v = static_cast<uint64_t>(bytes8(p));
  return (SadBytes)(SadSums{v, v});
}
inline SadSums sad_add(SadSums acc, SadBytes a, SadBytes b) { return acc + portable::sad(a, b); }
inline SadSums sum_lanes(uint64_t v) { return SadSums{v, v}; }
// Compared as int32 lanes (no 64-bit compare on SSE2): sums and limits stay below 2^31 (kSadNever),
// and the high halves (0 in both) compare false.
using SadMask = portable::i32x4;
inline SadMask above(SadSums acc, SadSums lim) { return (SadMask)acc > (SadMask)lim; }
inline SadMask both(SadMask a, SadMask b) { return a & b; }
inline bool all_set(SadMask m) { return (m[0] & m[2]) != 0; }  // the low halves
inline void store_sums(uint32_t* out, SadSums acc) {
  out[0] = static_cast<uint32_t>(acc[0]);
  out[1] = static_cast<uint32_t>(acc[1]);
}
inline SadSums load_sums(const uint32_t* in) { return SadSums{in[0], in[1]}; }
#endif
constexpr int kSadLanes = static_cast<int>(sizeof(SadSums) / 8);  // points per vector
// A run: kSadRunQ queries x kSadRunT points, kSadVecs vectors per query, 8 accumulators: AVX-512
// 4 x 16, AVX2 2 x 16, 16-byte vectors 2 x 8 (the training vectors partly from memory). Measured
// slower on uniform random data (Zen 5, alternating builds): AVX-512 8 x 24 (1.4x), 4 x 24 (same
// speed, coarser abandoning), AVX2 4 x 8 (1.1x).
constexpr int kSadRunT = kSadLanes == 2 ? 8 : 16;
constexpr int kSadVecs = kSadRunT / kSadLanes;
constexpr int kSadRunQ = 8 / kSadVecs;
// A limit no sum reaches: sums are <= 255 dim < 2^31 - 1 (dim <= 8421504, checked by nn_search.cpp).
constexpr uint64_t kSadNever = 0x7fffffff;
static_assert(kTileT % kSadRunT == 0 && kTileQ % kSadRunQ == 0, "runs cover the tile");
static_assert(kAbandonBlock % 8 == 0, "an abandoning block holds whole 8-dim lanes");

// Blocks per pass over a run's points: 24 KB of them stay in L1 (32 KB on Zen 3 / 4 and most Intel
// cores) while every run of queries reads them; whole rows at D = 3072 (48 KB for 16 points) came
// from L2 for every run (random data 1.4x slower). 16 KB chunks measured ~1.1x slower than 24 or 32
// KB on AVX-512 (Zen 5, 128 x 4000 x 3072, one thread), within this VM's noise.
constexpr int64_t kSadChunkBlocks = (24 << 10) / (kSadRunT * kAbandonBlock);

// Blocks [s_begin, s_end) of job.block_order for the run of queries q (rows dp apart) and the
// kSadRunT points at t (a group boundary): out[a * kTileT + c] (a < kSadRunQ, c < kSadRunT) holds the
// partial sums (read back unless s_begin is 0) and receives them. With kAbandon, returns true once
// every pair of the run is above its query's limit lim[a] (the run is then done; its sums, partial,
// are above the limits too).
template <bool kAbandon, bool kOrdered>
bool run_u8_l1(const uint8_t* q, const uint8_t* t, int64_t dp, const int32_t* order, int64_t s_begin,
               int64_t s_end, const uint64_t* lim, uint32_t* out) {
  SadSums acc[kSadRunQ][kSadVecs], limit[kSadRunQ];
#pragma GCC unroll 8
  for (int a = 0; a < kSadRunQ; ++a) {
    limit[a] = sum_lanes(kAbandon && lim[a] < kSadNever ? lim[a] : kSadNever);
#pragma GCC unroll 8
    for (int v = 0; v < kSadVecs; ++v) acc[a][v] = s_begin == 0 ? sum_lanes(0) : load_sums(out + a * kTileT + v * kSadLanes);
  }
  const int64_t group_stride = kSadGroup * dp;
  bool abandoned = false;
  for (int64_t s = s_begin; s < s_end && !abandoned; ++s) {
    const int64_t k0 = (kOrdered ? order[s] : s) * kAbandonBlock;
    for (int64_t k = k0; k < k0 + kAbandonBlock; k += 8) {
      SadBytes tv[kSadVecs];  // vector v: points v * kSadLanes .. of the run, dims k .. k + 7
#pragma GCC unroll 8
      for (int v = 0; v < kSadVecs; ++v) {
        const int first = v * kSadLanes;
        tv[v] = load_sad(t + (first / kSadGroup) * group_stride + k * kSadGroup + (first % kSadGroup) * 8);
      }
#pragma GCC unroll 8
      for (int a = 0; a < kSadRunQ; ++a) {
        const SadBytes qb = bcast8(q + a * dp + k);
#pragma GCC unroll 8
        for (int v = 0; v < kSadVecs; ++v) acc[a][v] = sad_add(acc[a][v], qb, tv[v]);
      }
    }
    // the first vector alone decides most tests (all of them on uniform random data, where nothing
    // is abandoned): the full test only when it passes (AVX-512, random data: checks cost 15 % else)
    if (kAbandon && s + 1 >= kFirstCheck && all_set(above(acc[0][0], limit[0]))) {
      SadMask all = above(acc[0][0], limit[0]);
#pragma GCC unroll 8
      for (int a = 0; a < kSadRunQ; ++a)
#pragma GCC unroll 8
        for (int v = a == 0 ? 1 : 0; v < kSadVecs; ++v) all = both(all, above(acc[a][v], limit[a]));
      abandoned = all_set(all);
    }
  }
#pragma GCC unroll 8
  for (int a = 0; a < kSadRunQ; ++a)
#pragma GCC unroll 8
    for (int v = 0; v < kSadVecs; ++v) store_sums(out + a * kTileT + v * kSadLanes, acc[a][v]);
  return abandoned;
}

template <bool kAbandon>
void produce_u8_l1(const ScanJob& job, int64_t j0, uint32_t* keys) {
  const int64_t dp = job.dim_padded, n_blocks = dp / kAbandonBlock, rows = round_up_tiles(job.n_q);
  const uint8_t* q = static_cast<const uint8_t*>(job.queries);
  const uint8_t* t = static_cast<const uint8_t*>(job.train) + j0 * dp;  // groups start every kSadGroup rows
  const int32_t* order = kAbandon ? job.block_order : nullptr;
  uint64_t lim[kMaxJobQueries];
  bool done[kMaxJobQueries / kSadRunQ];
  for (int c0 = 0; c0 < kTileT; c0 += kSadRunT) {  // one run of points at a time: its chunk stays in L1
    for (int64_t i = 0; i < rows; ++i) lim[i] = kAbandon ? pair_limit(job, i, j0 + c0, kSadRunT) : kSadNever;
    std::fill(done, done + rows / kSadRunQ, false);
    for (int64_t s0 = 0; s0 < n_blocks; s0 += kSadChunkBlocks) {
      const int64_t s1 = s0 + kSadChunkBlocks < n_blocks ? s0 + kSadChunkBlocks : n_blocks;
      for (int64_t i0 = 0; i0 < rows; i0 += kSadRunQ) {
        bool& run_done = done[i0 / kSadRunQ];
        if (run_done) continue;
        const auto run = order != nullptr ? run_u8_l1<kAbandon, true> : run_u8_l1<kAbandon, false>;
        run_done = run(q + i0 * dp, t + c0 * dp, dp, order, s0, s1, lim + i0, keys + i0 * kTileT + c0);
      }
    }
  }
}

// ---- float32 / float64: direct differences, so the rounding error is relative (no cancellation) ----
template <class T, int kMetric>
void subtile_float(const T* q, const T* t, int64_t dp, T out[kSubQ][kSubT]) {
  typedef T Vec __attribute__((vector_size(kVecBytes)));
  constexpr int kLanes = kVecBytes / static_cast<int>(sizeof(T));
  Vec acc[kSubQ][kSubT];
  for (int a = 0; a < kSubQ; ++a)
    for (int b = 0; b < kSubT; ++b) acc[a][b] = Vec{} ;
  for (int64_t k = 0; k < dp; k += kLanes) {
    Vec qa[kSubQ], tb[kSubT];
    for (int a = 0; a < kSubQ; ++a) std::memcpy(&qa[a], q + a * dp + k, sizeof(Vec));
    for (int b = 0; b < kSubT; ++b) std::memcpy(&tb[b], t + b * dp + k, sizeof(Vec));
    for (int a = 0; a < kSubQ; ++a)
      for (int b = 0; b < kSubT; ++b) {
        const Vec d = qa[a] - tb[b];
        if (kMetric == kL2) {
          acc[a][b] += d * d;
        } else {
          const Vec ad = d < 0 ? -d : d;
          if (kMetric == kL1) acc[a][b] += ad;
          else acc[a][b] = acc[a][b] > ad ? acc[a][b] : ad;
        }
      }
  }
  for (int a = 0; a < kSubQ; ++a)
    for (int b = 0; b < kSubT; ++b) {
      T s = acc[a][b][0];
      for (int l = 1; l < kLanes; ++l) {
        if (kMetric == kLinf) s = s > acc[a][b][l] ? s : acc[a][b][l];
        else s += acc[a][b][l];
      }
      out[a][b] = s;
    }
}

template <class T, class Codec, int kMetric>
void tile_rows(const ScanJob& job, int64_t q0, int64_t j0, typename Codec::Key* tile) {
  const int64_t dp = job.dim_padded;
  const T* q = static_cast<const T*>(job.queries) + q0 * dp;
  const T* t = static_cast<const T*>(job.train) + j0 * dp;
  for (int tb = 0; tb < kTileT; tb += kSubT)
    for (int qa = 0; qa < kTileQ; qa += kSubQ) {
      if constexpr (Codec::kExact) {
        uint32_t out[kSubQ][kSubT];
        subtile_u8_linf(q + qa * dp, t + tb * dp, dp, out);
        for (int a = 0; a < kSubQ; ++a)
          for (int b = 0; b < kSubT; ++b) tile[(qa + a) * kTileT + tb + b] = out[a][b];
      } else {
        T out[kSubQ][kSubT];
        subtile_float<T, kMetric>(q + qa * dp, t + tb * dp, dp, out);
        for (int a = 0; a < kSubQ; ++a)
          for (int b = 0; b < kSubT; ++b) tile[(qa + a) * kTileT + tb + b] = Codec::key(out[a][b]);
      }
    }
}

template <class T, class Codec, int kMetric>
void produce_rows(const ScanJob& job, int64_t j0, typename Codec::Key* keys) {
  for (int64_t q0 = 0; q0 < job.n_q; q0 += kTileQ) tile_rows<T, Codec, kMetric>(job, q0, j0, keys + q0 * kTileT);
}

// ---- float32 / float64 l2 in GEMM form ------------------------------------------------------------
// screened(x, t) = max(0, fl(fl(|x|^2^ + |t|^2^) - 2 fl(x.t))), all in the input precision T (unit
// roundoff u, gamma_n = n u / (1 - n u)); |x|^2^, |t|^2^ are float64 sums rounded to T.
// Error bound (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., sec. 3.1), D = dim:
//   |x|^2^ = |x|^2 (1 + t1), |t1| <= gamma_{D+1} (float64 sum, then one rounding to T; same for t)
//   fl(x.t) = x.t + d,        |d| <= gamma_D sum_k |x_k t_k| <= gamma_D ||x|| ||t|| (any order, FMA or not)
//   a = fl(|x|^2^ + |t|^2^):  |a - (|x|^2 + |t|^2)| <= gamma_{D+2} (|x|^2 + |t|^2)
//   s = fl(a - 2 fl(x.t)):    |s - (a - 2 fl(x.t))| <= u (|a| + 2 |fl(x.t)|)
// so |s - |x - t|^2| <= gamma_{D+3} (|x|^2 + |t|^2) + 2 gamma_{D+1} ||x|| ||t|| <= gamma_{D+3} (||x|| + ||t||)^2,
// and clamping s at 0 only moves it towards the (non-negative) truth. The kernels use
//   E(x, t) = gamma_{dim_padded+4} (len(x) + len(t))^2 + gemm_abs,
// with len >= the norm, every float64 step rounded up, and gemm_abs covering underflowed products
// (none occur inside the _F32_SAFE / _F64_SAFE ranges, where no square over- or underflows either).
// Then true(t) lies in [s - E, s + E]. Per (query, class) the kernel keeps U, an upper bound of the
// true minimum (min over seen points of s + E), and pushes every point with s - E(x, t) <= U: the
// true argmin and all points tied with it satisfy this when seen (U only decreases afterwards), so
// the float64 re-check in the driver never misses one. The cheap per-row filter uses the tile's
// largest len(t) (s <= U + E_max of the tile; a superset), then each survivor gets its own E(x, t).
// The bound is absolute: far from the origin with tiny mutual distances it exceeds the distances and
// every point would be a candidate. A tile with more than kGemmMaxPushes survivors is therefore
// recomputed with direct differences (relative error, the bound of screening_gamma) and that query
// tile stays direct for the next kDirectRun training tiles before trying GEMM again.
constexpr int64_t kGemmChunk = 128;  // dims per pass: a 48-point panel chunk (24 KB float32) in L1
constexpr int kGemmMaxPushes = 64;   // survivors per 8 x 48 tile before falling back to direct
constexpr int kDirectRun = 16;
constexpr double kRoundUp = 1.0 + 0x1p-48;   // covers a few float64 roundings of a positive chain
constexpr double kRoundDown = 1.0 - 0x1p-48;

template <class T>
struct GemmShape {
  static constexpr int kLanes = kVecBytes / static_cast<int>(sizeof(T));
  static constexpr int kNV = 3;  // vectors of training points per block: 8 x 3 accumulators of AVX-512's 32
                                 // registers, 4 x 3 of the 16 of AVX2 / 16-byte vectors (4 x 2 measured slower)
  static constexpr int kPts = kNV * kLanes;          // training points per register block
  static constexpr int kMQ = kVecBytes == 64 ? 8 : 4;  // queries per register block
  static_assert(kTileT % kPts == 0 && kTileQ % kMQ == 0, "register blocks must cover the tile");
};

// acc[r * kTileT + c] += sum_{k in [k0, k1)} q[r][k] * panel[k][c] for a kMQ x kPts block (= with
// from_zero, the first chunk: no zeroing pass over the accumulators, no reload).
template <class T>
inline void gemm_block(const T* q, int64_t dp, const T* panel, int64_t k0, int64_t k1, T* acc_out, bool from_zero) {
  using S = GemmShape<T>;
  typedef T Vec __attribute__((vector_size(kVecBytes)));
  Vec acc[S::kMQ][S::kNV];
#pragma GCC unroll 8
  for (int r = 0; r < S::kMQ; ++r)
#pragma GCC unroll 3
    for (int v = 0; v < S::kNV; ++v) {
      if (from_zero) acc[r][v] = Vec{};
      else std::memcpy(&acc[r][v], acc_out + r * kTileT + v * S::kLanes, sizeof(Vec));
    }
  for (int64_t k = k0; k < k1; ++k) {
    Vec tv[S::kNV];
#pragma GCC unroll 3
    for (int v = 0; v < S::kNV; ++v) std::memcpy(&tv[v], panel + k * kTileT + v * S::kLanes, sizeof(Vec));
#pragma GCC unroll 8
    for (int r = 0; r < S::kMQ; ++r) {
      const Vec a = q[r * dp + k] - Vec{};  // broadcast
#pragma GCC unroll 3
      for (int v = 0; v < S::kNV; ++v) acc[r][v] += a * tv[v];
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < S::kMQ; ++r)
#pragma GCC unroll 3
    for (int v = 0; v < S::kNV; ++v) std::memcpy(acc_out + r * kTileT + v * S::kLanes, &acc[r][v], sizeof(Vec));
}

inline double bits_to_double(uint64_t b) {
  double d;
  std::memcpy(&d, &b, sizeof d);
  return d;
}
inline uint64_t double_to_bits(double d) {
  uint64_t b;
  std::memcpy(&b, &d, sizeof b);
  return b;
}

// Fold one tile of screened values (keys of T) into the float64 upper bounds job.best and push the
// points whose lower bound is <= that bound (see above). kDirect: values from direct differences
// (|s - true| <= g true + alpha). Returns false, having pushed nothing, when a GEMM tile has more
// than kGemmMaxPushes survivors.
//
// Row skip (one-class tiles without the leave-one-out column, nearly all of them): a row whose
// minimum is above skip[2i + cat] = key(round_up((U + E_job) kRoundUp)), E_job the E_max bound with
// the largest tile length of the job, can neither lower U nor hold a survivor (E_job >= E_max), so
// it costs one compare instead of the float64 bound arithmetic. A skip key made from an older, larger
// U is still valid (only less sharp), and every U update below refreshes it.
template <class Key>
struct RowSkip {
  Key key[2 * kMaxJobQueries];  // [2 (i - job's first query) + cat]
  double tile_len_max;          // max of tile_len over the job's training tiles
};

template <class T, class Codec>
inline void refresh_skip(RowSkip<typename Codec::Key>& skip, const ScanJob& job, int64_t i, int cat, double u) {
  const double l = job.q_len[i] + skip.tile_len_max;
  const double e_job = (job.gemm_gamma * (l * l) + job.gemm_abs) * kRoundUp;
  skip.key[2 * i + cat] = Codec::key(round_up_float<T>((u + e_job) * kRoundUp));
}

template <class T, class Codec, bool kDirect>
bool reduce_bound(const typename Codec::Key* tile, int64_t q0, int64_t j0, const ScanJob& job,
                  RowSkip<typename Codec::Key>& skip) {
  using Key = typename Codec::Key;
  constexpr Key kMax = kNoKey<Key>;
  const int32_t* t_class = job.t_class + j0;
  const int64_t rows = job.n_q - q0 < kTileQ ? job.n_q - q0 : kTileQ;
  const int64_t cols = job.m_valid - j0 < kTileT ? job.m_valid - j0 : kTileT;
  const double g = job.direct_gamma, alpha = job.direct_alpha;
  const double tile_len = job.tile_len[j0 / kTileT];
  Key thr[kTileQ][2];
  bool quiet[kTileQ] = {};  // rows skipped by the row-skip test: nothing to push
  int survivors = 0;
  const bool one_class = one_class_tile(job, j0);  // then the survivor count is a plain loop too
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = q0 + r;
    const int32_t y = job.q_class[i];
    const int64_t skip_col = job.q_skip[i] - j0;
    const Key* v = tile + r * kTileT;
    const bool uniform = one_class && (skip_col < 0 || skip_col >= kTileT);
    const int uniform_cat = t_class[0] == y ? 0 : 1;
    Key min_key2[2];
    row_minima(v, t_class, y, cols, skip_col, one_class, min_key2);
    if (!kDirect && uniform && min_key2[uniform_cat] > skip.key[2 * i + uniform_cat]) {
      quiet[r] = true;
      continue;
    }
    const double l = job.q_len[i] + tile_len;
    const double e_max = (job.gemm_gamma * (l * l) + job.gemm_abs) * kRoundUp;
    for (int cat = 0; cat < 2; ++cat) {
      double u = bits_to_double(job.best[2 * i + cat]);
      if (min_key2[cat] != kMax) {
        const double s = Codec::value(min_key2[cat]);
        const double upper = kDirect ? (s + alpha) / (1.0 - g) * kRoundUp : (s + e_max) * kRoundUp;
        if (upper < u) {
          u = upper;
          job.best[2 * i + cat] = double_to_bits(u);
          refresh_skip<T, Codec>(skip, job, i, cat, u);
        }
      }
      // s - E <= U  <=  s <= U + E_max (GEMM);  (s - alpha) / (1 + g) <= U  <=>  s <= U (1 + g) + alpha
      const double limit = kDirect ? (u * (1.0 + g) * kRoundUp + alpha) * kRoundUp : (u + e_max) * kRoundUp;
      thr[r][cat] = Codec::key(round_up_float<T>(limit));  // +inf while nothing is seen: its key < kMax
    }
    if (uniform) {
      const Key limit = thr[r][uniform_cat];
      int count = 0;
      for (int t = 0; t < kTileT; ++t) count += v[t] <= limit;
      survivors += count;
    } else {
      for (int t = 0; t < kTileT; ++t) {
        const bool ok = t < cols && t != skip_col;
        survivors += ok && v[t] <= thr[r][t_class[t] == y ? 0 : 1];
      }
    }
  }
  if (!kDirect && survivors > kGemmMaxPushes) return false;
  if (survivors == 0) return true;
  for (int64_t r = 0; r < rows; ++r) {
    if (quiet[r]) continue;
    const int64_t i = q0 + r;
    const int32_t y = job.q_class[i];
    const int64_t skip_col = job.q_skip[i] - j0;
    const Key* v = tile + r * kTileT;
    for (int t = 0; t < cols; ++t) {
      const int cat = t_class[t] == y ? 0 : 1;
      if (t == skip_col || v[t] > thr[r][cat]) continue;
      const double s = Codec::value(v[t]);
      double lower;
      if (kDirect) {
        lower = (s - alpha) / (1.0 + g) * kRoundDown;
      } else {
        const double l = job.q_len[i] + job.t_len[j0 + t];
        const double e = (job.gemm_gamma * (l * l) + job.gemm_abs) * kRoundUp;
        lower = std::nextafter(std::nextafter(s - e, 0.0), 0.0);  // fl(s - e) is within half an ulp
      }
      if (!(lower > 0.0)) lower = 0.0;
      if (lower > bits_to_double(job.best[2 * i + cat])) continue;
      job.sink->push(job.sink, i, cat, j0 + t, double_to_bits(lower));
    }
  }
  return true;
}

// Nearest same-class / other-class search, float l2, GEMM form with per-tile direct fallback.
template <class T, class Codec>
void scan_gemm(const ScanJob& job) {
  using Key = typename Codec::Key;
  using S = GemmShape<T>;
  static_assert(sizeof(Key) == sizeof(T), "keys hold the values' bits");
  alignas(64) static thread_local T acc[kMaxJobQueries * kTileT];
  alignas(64) static thread_local Key direct[kTileQ * kTileT];
  int direct_left[kMaxJobQueries / kTileQ] = {};
  RowSkip<Key> skip;  // on the stack: a thread_local costs a __tls_get_addr call per row in the .so
  skip.tile_len_max = 0.0;
  for (int64_t j0 = job.t_begin; j0 < job.t_end; j0 += kTileT)
    skip.tile_len_max = std::max(skip.tile_len_max, job.tile_len[j0 / kTileT]);
  for (int64_t i = 0; i < job.n_q; ++i)
    for (int cat = 0; cat < 2; ++cat) refresh_skip<T, Codec>(skip, job, i, cat, bits_to_double(job.best[2 * i + cat]));
  const int64_t dp = job.dim_padded;
  const T* queries = static_cast<const T*>(job.queries);
  const T* q_sq = static_cast<const T*>(job.q_sq);
  const T* t_sq = static_cast<const T*>(job.t_sq);
  const int64_t n_tiles_q = (job.n_q + kTileQ - 1) / kTileQ;
  for (int64_t j0 = job.t_begin; j0 < job.t_end; j0 += kTileT) {
    const T* panel = static_cast<const T*>(job.t_panel) + j0 * dp;
    for (int64_t k0 = 0; k0 < dp; k0 += kGemmChunk) {
      const int64_t k1 = k0 + kGemmChunk < dp ? k0 + kGemmChunk : dp;
      for (int64_t qt = 0; qt < n_tiles_q; ++qt) {
        if (direct_left[qt] > 0) continue;
        for (int qb = 0; qb < kTileQ; qb += S::kMQ)
          for (int cb = 0; cb < kTileT; cb += S::kPts)
            gemm_block<T>(queries + (qt * kTileQ + qb) * dp, dp, panel + cb, k0, k1,
                          acc + (qt * kTileQ + qb) * kTileT + cb, k0 == 0);
      }
    }
    for (int64_t qt = 0; qt < n_tiles_q; ++qt) {
      const int64_t q0 = qt * kTileQ;
      if (direct_left[qt] == 0) {
        Key* keys = reinterpret_cast<Key*>(acc + q0 * kTileT);
        for (int r = 0; r < kTileQ; ++r) {
          const T qs = q_sq[q0 + r < job.n_q ? q0 + r : 0];
          T* a = acc + (q0 + r) * kTileT;
          for (int c = 0; c < kTileT; ++c) {
            const T s = (qs + t_sq[j0 + c]) - 2 * a[c];
            keys[r * kTileT + c] = Codec::key(s > 0 ? s : T(0));
          }
        }
        if (reduce_bound<T, Codec, false>(keys, q0, j0, job, skip)) continue;
        direct_left[qt] = kDirectRun + 1;
      }
      --direct_left[qt];
      tile_rows<T, Codec, kL2>(job, q0, j0, direct);
      reduce_bound<T, Codec, true>(direct, q0, j0, job, skip);
    }
  }
}

template <class Codec>
using ProduceFn = void (*)(const ScanJob&, int64_t, typename Codec::Key*);


// Per-class top-K candidates: push every point whose key is within its class's threshold. Training
// points are sorted by class, so most tiles hold one class and compare against one threshold.
template <class Codec>
void reduce_topk(const typename Codec::Key* tile, int64_t q0, int64_t j0, const ScanJob& job) {
  using Key = typename Codec::Key;
  const int32_t* t_class = job.t_class + j0;
  const int64_t rows = job.n_q - q0 < kTileQ ? job.n_q - q0 : kTileQ;
  const int64_t cols = job.m_valid - j0 < kTileT ? job.m_valid - j0 : kTileT;
  const bool one_class = t_class[0] == t_class[cols - 1];
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = q0 + r;
    const int64_t skip = job.q_skip[i] - j0;
    const Key* v = tile + r * kTileT;
    const uint64_t* thr = job.class_thr + i * job.n_classes;
    if (one_class) {
      const Key limit = static_cast<Key>(thr[t_class[0]]);
      bool any = false;
      for (int t = 0; t < kTileT; ++t) any |= t < cols && t != skip && v[t] <= limit;
      if (!any) continue;  // the common case once the class's K best have settled
    }
    for (int t = 0; t < cols; ++t) {
      // re-read: a push may lower the threshold
      if (t != skip && v[t] <= static_cast<Key>(thr[t_class[t]])) job.sink->push(job.sink, i, t_class[t], j0 + t, v[t]);
    }
  }
}

template <class Codec>
using ReduceFn = void (*)(const typename Codec::Key*, int64_t, int64_t, const ScanJob&);

// Training tiles outside, queries inside, so each training tile is used by every query of the job
// while it is in cache: kProduce fills a tile's keys, kReduce folds them (reduce_tile: the nearest
// same-class / other-class point; reduce_topk: per-class top-K candidates).
template <class Codec, ProduceFn<Codec> kProduce, ReduceFn<Codec> kReduce = reduce_tile<Codec>>
void scan(const ScanJob& job) {
  alignas(64) static thread_local typename Codec::Key keys[kMaxJobQueries * kTileT];
  for (int64_t j0 = job.t_begin; j0 < job.t_end; j0 += kTileT) {
    kProduce(job, j0, keys);
    for (int64_t q0 = 0; q0 < job.n_q; q0 += kTileQ) kReduce(keys + q0 * kTileT, q0, j0, job);
  }
}

template <class Codec, ProduceFn<Codec> kProduce>
constexpr ScanFn scan_topk = scan<Codec, kProduce, reduce_topk<Codec>>;

// Bisector bound (scan_common.h). The driver groups queries by class, so a training tile holding only
// the class of every query in the job has no other-class point and is skipped.
template <class Codec, ProduceFn<Codec> kProduceX, ProduceFn<Codec> kProducePivot, int kDual>
void bisect(const BisectorJob& job) {
  using Key = typename Codec::Key;
  alignas(64) static thread_local Key keys_x[kMaxJobQueries * kTileT];
  alignas(64) static thread_local Key keys_p[kMaxPivots][kMaxJobQueries * kTileT];
  constexpr double kRoundDown = 1.0 - 0x1p-50;  // covers the few roundings after the screening slack
  const ScanJob& xj = job.x;
  const int32_t* t_class = xj.t_class;
  const bool one_class = xj.q_class[0] == xj.q_class[xj.n_q - 1];
  for (int64_t j0 = xj.t_begin; j0 < xj.t_end; j0 += kTileT) {
    const int64_t cols = xj.m_valid - j0 < kTileT ? xj.m_valid - j0 : kTileT;
    if (one_class && t_class[j0] == xj.q_class[0] && t_class[j0 + cols - 1] == xj.q_class[0]) continue;
    kProduceX(xj, j0, keys_x);
    for (int k = 0; k < job.n_pivots; ++k) kProducePivot(job.pivot[k], j0, keys_p[k]);
    for (int64_t i = 0; i < xj.n_q; ++i) {
      double sq[kTileT], bound[kTileT];
      for (int c = 0; c < kTileT; ++c) {
        sq[c] = Codec::value(keys_x[i * kTileT + c]) * job.x_lo;
        bound[c] = -INFINITY;
      }
      for (int k = 0; k < job.n_pivots; ++k) {
        const double pivot_sq = job.pivot_sq_dist[i * job.n_pivots + k];
        const Key* kp = keys_p[k] + i * kTileT;
        for (int c = 0; c < kTileT; ++c) {
          // Screened float values lose their last bits in sq * x_lo and in the subtraction.
          const double slack = Codec::kExact ? 0.0 : 0x1p-51 * (sq[c] + pivot_sq);
          const double num = sq[c] - pivot_sq - slack;
          const double norm = Codec::value(kp[c]) * job.pivot_hi;
          const double den = 2.0 * (kDual == kL2 ? std::sqrt(norm) : norm);
          // den = 0: t equals the pivot, whose bisector is everything; 0 is a valid lower bound.
          const double b = den > 0.0 ? num / den : 0.0;
          bound[c] = bound[c] > b ? bound[c] : b;
        }
      }
      const int32_t y = xj.q_class[i];
      double best = job.best[i];
      int64_t best_pos = job.best_pos[i];
      for (int c = 0; c < cols; ++c) {
        if (t_class[j0 + c] == y) continue;
        const double b = bound[c] > 0.0 ? bound[c] * kRoundDown : bound[c] * (2.0 - kRoundDown);
        if (b < best || (b == best && best_pos >= 0 && job.t_orig[j0 + c] < job.t_orig[best_pos])) {
          best = b;
          best_pos = j0 + c;
        }
      }
      job.best[i] = best;
      job.best_pos[i] = best_pos;
    }
  }
}

}  // namespace

const KernelTable& kernel_table() {
  using U8 = U8Codec;
  using F32 = F32Codec;
  using F64 = F64Codec;
  static const KernelTable table = {
      NNM_STR(NNM_ISA),
      {
          {scan<U8, produce_u8_l2>, scan<U8, produce_u8_l1<true>>, scan<U8, produce_u8_linf>},
          {scan_gemm<float, F32>, scan<F32, produce_rows<float, F32, kL1>>,
           scan<F32, produce_rows<float, F32, kLinf>>},
          {scan_gemm<double, F64>, scan<F64, produce_rows<double, F64, kL1>>,
           scan<F64, produce_rows<double, F64, kLinf>>},
      },
      {
          // float l2 top-K screens by direct differences: its thresholds follow the sink's K-th
          // best, which the GEMM form's bound bookkeeping does not track
          // uint8 l1 top-K abandons pairs above their class's threshold (MNIST, k = 5: 1.13x); l-inf
          // top-K gained nothing from it there (its thresholds sit near the crowded maximum)
          {scan_topk<U8, produce_u8_l2>, scan_topk<U8, produce_u8_l1<true>>,
           scan_topk<U8, produce_rows<uint8_t, U8, kLinf>>},
          {scan_topk<F32, produce_rows<float, F32, kL2>>, scan_topk<F32, produce_rows<float, F32, kL1>>,
           scan_topk<F32, produce_rows<float, F32, kLinf>>},
          {scan_topk<F64, produce_rows<double, F64, kL2>>, scan_topk<F64, produce_rows<double, F64, kL1>>,
           scan_topk<F64, produce_rows<double, F64, kLinf>>},
      },
      {
          {bisect<U8, produce_u8_l2, produce_u8_l2, kL2>,
           bisect<U8, produce_u8_l2, produce_u8_l1<false>, kL1>,
           bisect<U8, produce_u8_l2, produce_rows<uint8_t, U8, kLinf>, kLinf>},
          {bisect<F32, produce_rows<float, F32, kL2>, produce_rows<float, F32, kL2>, kL2>,
           bisect<F32, produce_rows<float, F32, kL2>, produce_rows<float, F32, kL1>, kL1>,
           bisect<F32, produce_rows<float, F32, kL2>, produce_rows<float, F32, kLinf>, kLinf>},
          {bisect<F64, produce_rows<double, F64, kL2>, produce_rows<double, F64, kL2>, kL2>,
           bisect<F64, produce_rows<double, F64, kL2>, produce_rows<double, F64, kL1>, kL1>,
           bisect<F64, produce_rows<double, F64, kL2>, produce_rows<double, F64, kLinf>, kLinf>},
      },
#if defined(NNM_U8_L2_WORDS)
      true,
#else
      false,
#endif
  };
  return table;
}

}  // namespace nnm::cpu::NNM_ISA
