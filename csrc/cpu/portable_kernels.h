// Portable SIMD kernels of the `generic` variant: what runs on any x86-64 CPU without AVX2 (SSE2 is
// the baseline) and on every other CPU (aarch64 NEON, ...). Written with GCC/Clang vector extensions
// (16-byte vectors, the width of SSE2 and NEON), register-blocked like the AVX kernels, so the
// compiler emits vector code for whatever target it compiles for; no scalar inner loops.
//
// The only operations vector extensions cannot spell directly are the widening multiply-add
// (pmaddwd) and the byte sum of absolute differences (psadbw). They sit in small helpers with an
// SSE2 form (baseline x86-64, always present when __SSE2__ is defined) and a portable form in plain
// vector arithmetic, exact as well, that every other target compiles (the aarch64 check in
// tools/aarch64/ runs it; -DNNM_PORTABLE_ONLY forces it on x86 too).
//
// Included only by scan_kernels.cpp when it is compiled without AVX2 / AVX-512 (the generic variant).
#pragma once

#include <cstdint>
#include <cstring>

#include "scan_common.h"

#if defined(__SSE2__) && !defined(NNM_PORTABLE_ONLY)
#include <emmintrin.h>
#define NNM_PORTABLE_SSE2 1
#endif

namespace nnm::cpu::portable {

typedef int8_t i8x16 __attribute__((vector_size(16)));
typedef uint8_t u8x16 __attribute__((vector_size(16)));
typedef int16_t i16x8 __attribute__((vector_size(16)));
typedef uint16_t u16x8 __attribute__((vector_size(16)));
typedef int32_t i32x4 __attribute__((vector_size(16)));
typedef uint32_t u32x4 __attribute__((vector_size(16)));
typedef uint64_t u64x2 __attribute__((vector_size(16)));
typedef uint8_t u8x4 __attribute__((vector_size(4)));
typedef int16_t i16x4 __attribute__((vector_size(8)));

// Unaligned loads and stores (memcpy of one vector compiles to one instruction).
template <class V, class T>
inline V load(const T* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}
template <class V, class T>
inline void store(T* p, V v) {
  std::memcpy(p, &v, sizeof(V));
}

// out[i] = a[2i] b[2i] + a[2i+1] b[2i+1] in int32 (pmaddwd). The callers' operands are a uint8 and
// an int8 value widened to int16, so each product (|a b| <= 255 * 128) fits int16 exactly and the
// portable form may multiply in 16 bits and then sign-extend and add the two halves of each int32.
inline i32x4 madd_pairs(i16x8 a, i16x8 b) {
#ifdef NNM_PORTABLE_SSE2
  return (i32x4)_mm_madd_epi16((__m128i)a, (__m128i)b);
#else
  const u32x4 p = (u32x4)(a * b);
  const i32x4 lo = (i32x4)(p << 16) >> 16;  // low int16 of each int32, sign-extended
  const i32x4 hi = (i32x4)p >> 16;          // high int16, sign-extended (arithmetic shift)
  return lo + hi;
#endif
}

// |a - b| per byte (unsigned).
inline u8x16 absdiff(u8x16 a, u8x16 b) {
#ifdef NNM_PORTABLE_SSE2
  return (u8x16)_mm_or_si128(_mm_subs_epu8((__m128i)a, (__m128i)b), _mm_subs_epu8((__m128i)b, (__m128i)a));
#else
  return (a > b ? a : b) - (a > b ? b : a);
#endif
}

inline u8x16 max_u8(u8x16 a, u8x16 b) {
#ifdef NNM_PORTABLE_SSE2
  return (u8x16)_mm_max_epu8((__m128i)a, (__m128i)b);
#else
  return a > b ? a : b;
#endif
}

// Sum of |a - b| over each 8 bytes, in two uint64 lanes (psadbw).
inline u64x2 sad(u8x16 a, u8x16 b) {
#ifdef NNM_PORTABLE_SSE2
  return (u64x2)_mm_sad_epu8((__m128i)a, (__m128i)b);
#else
  const u16x8 d = (u16x8)absdiff(a, b);
  const u32x4 s16 = (u32x4)((d & 0xff) + (d >> 8));         // byte pairs, <= 510 per uint16
  const u64x2 s32 = (u64x2)((s16 & 0xffff) + (s16 >> 16));  // <= 1020 per uint32
  return (s32 & 0xffffffffu) + (s32 >> 32);
#endif
}

// Sign-extend bytes 0-7 (widen_lo) or 8-15 (widen_hi) to int16: each byte doubled into both halves of
// a 16-bit lane, then an arithmetic shift by 8 (punpcklbw + psraw on SSE2; any byte order works).
inline i16x8 widen_lo(i8x16 v) {
  return (i16x8)__builtin_shufflevector(v, v, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7) >> 8;
}
inline i16x8 widen_hi(i8x16 v) {
  return (i16x8)__builtin_shufflevector(v, v, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15) >> 8;
}

// ---- uint8 l2 dot products ---------------------------------------------------------------------
// acc_out[r * kTileT + c] += q_r . t_c over dims [k_begin, k_end) for the kTileQ x kTileT tile, with
// q (uint8 rows, stride dp) and t the grouped training layout of train_layout.cpp ([group][dp / 4]
// [16 points][4 dims] of int8 value - 128, groups group_stride bytes apart). The final add into
// acc_out wraps modulo 2^32 like vpdpbusd (the key formula relies on it).
//
// Operands are widened to int16 so the products are exact: per 4-dim step one 16-byte load of the
// layout holds 4 points x 4 dims; widened it is two vectors of 2 points x 4 dims, and a query's 4
// dims are broadcast to both halves of a vector, so madd_pairs gives per point two partial sums
// (dims 0-1, 2-3) that are added at the end. Register block: 4 queries x 4 points (8 accumulators,
// 4 query and 2 training vectors: the 16 registers of SSE2 / 32 of NEON). Within one pass of at most
// 256 dims each int32 lane sums <= 64 madd results of magnitude <= 2 * 255 * 128, far from overflow.
inline void dot_u8_tile(const uint8_t* q, const int8_t* t, int64_t dp, int64_t group_stride, int64_t k_begin,
                        int64_t k_end, int32_t* acc_out) {
  constexpr int kSteps = 64;  // 4-dim steps per pass: 256 dims, widened queries 8 KB (L1 with the points)
  constexpr int kBlockQ = 4;  // queries per register block
  constexpr int kQuads = kTileT / 4;
  static_assert(kTileQ % kBlockQ == 0 && kTileT % kGroupT == 0, "register blocks must cover the tile");
  i16x8 qw[kTileQ][kSteps];  // query r, step s: its 4 dims as int16, twice
  for (int64_t k0 = k_begin; k0 < k_end; k0 += 4 * kSteps) {
    const int n_steps = static_cast<int>((k_end - k0) / 4 < kSteps ? (k_end - k0) / 4 : kSteps);
    for (int r = 0; r < kTileQ; ++r)
      for (int s = 0; s < n_steps; ++s) {
        const i16x4 w = __builtin_convertvector(load<u8x4>(q + r * dp + k0 + 4 * s), i16x4);
        qw[r][s] = __builtin_shufflevector(w, w, 0, 1, 2, 3, 0, 1, 2, 3);
      }
    for (int rb = 0; rb < kTileQ; rb += kBlockQ)
      for (int quad = 0; quad < kQuads; ++quad) {  // points 4 quad .. 4 quad + 3
        const int8_t* tq = t + (quad / 4) * group_stride + (quad % 4) * 16 + k0 * kGroupT;
        i32x4 acc[kBlockQ][2] = {};
        for (int s = 0; s < n_steps; ++s) {
          const i8x16 tb = load<i8x16>(tq + s * 4 * kGroupT);
          const i16x8 t01 = widen_lo(tb), t23 = widen_hi(tb);
#pragma GCC unroll 4
          for (int a = 0; a < kBlockQ; ++a) {
            acc[a][0] += madd_pairs(qw[rb + a][s], t01);
            acc[a][1] += madd_pairs(qw[rb + a][s], t23);
          }
        }
#pragma GCC unroll 4
        for (int a = 0; a < kBlockQ; ++a) {
          // lanes (point, dims 0-1), (point, dims 2-3): add each pair -> the 4 points' dot products
          const i32x4 even = __builtin_shufflevector(acc[a][0], acc[a][1], 0, 2, 4, 6);
          const i32x4 odd = __builtin_shufflevector(acc[a][0], acc[a][1], 1, 3, 5, 7);
          int32_t* out = acc_out + (rb + a) * kTileT + quad * 4;
          store(out, load<u32x4>(out) + (u32x4)(even + odd));  // unsigned: wraps mod 2^32
        }
      }
  }
}

// ---- uint8 linf: row-major rows (dp a multiple of 64), 16 bytes at a time ------------------------
// out[a][b] = linf distance of q row a and t row b, for a kSubQ x kSubT register block.
template <int kSubQ, int kSubT>
inline void subtile_u8_linf(const uint8_t* q, const uint8_t* t, int64_t dp, uint32_t out[kSubQ][kSubT]) {
  u8x16 mx[kSubQ][kSubT] = {};
  for (int64_t k = 0; k < dp; k += 16) {
    u8x16 qa[kSubQ], tb[kSubT];
    for (int a = 0; a < kSubQ; ++a) qa[a] = load<u8x16>(q + a * dp + k);
    for (int b = 0; b < kSubT; ++b) tb[b] = load<u8x16>(t + b * dp + k);
    for (int a = 0; a < kSubQ; ++a)
      for (int b = 0; b < kSubT; ++b) mx[a][b] = max_u8(mx[a][b], absdiff(qa[a], tb[b]));
  }
  for (int a = 0; a < kSubQ; ++a)
    for (int b = 0; b < kSubT; ++b) {
      u8x16 m = mx[a][b];  // fold the 16 lanes: 8, 4, 2, 1
      m = max_u8(m, __builtin_shufflevector(m, m, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7));
      m = max_u8(m, __builtin_shufflevector(m, m, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3));
      m = max_u8(m, __builtin_shufflevector(m, m, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1));
      m = max_u8(m, __builtin_shufflevector(m, m, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0));
      out[a][b] = m[0];
    }
}

}  // namespace nnm::cpu::portable
