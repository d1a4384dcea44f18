// Peak probe: the per-core throughput of the inner instruction sequence each kernel relies on, run
// from registers only (no loads), so benchmarks can report a kernel as a fraction of what this core
// can do with that sequence. Compiled once per instruction-set variant, like scan_kernels.cpp.
//
// Every sequence is counted in the kernels' nominal unit: 2 ops per (query, training point, dim)
// triple ("pair-dim"), the unit of the benchmark's GOP/s (2 N M D per search). Each sequence keeps
// kChains independent accumulator chains so latency never limits it, and folds them into the
// returned checksum so the compiler cannot drop the work.
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "scan_common.h"

#ifndef NNM_ISA
#error "compile peak_probe.cpp with -DNNM_ISA=<variant>"
#endif

namespace nnm::cpu::NNM_ISA {
namespace {

constexpr int kChains = 12;

// Makes a value opaque to the optimiser (it may have changed), so the work that reads it is redone.
#if defined(__x86_64__) || defined(__i386__)
#define NNM_OPAQUE(x) __asm__ volatile("" : "+v"(x))
#elif defined(__aarch64__)
#define NNM_OPAQUE(x) __asm__ volatile("" : "+w"(x))
#else
#define NNM_OPAQUE(x) __asm__ volatile("" : "+r"(x))
#endif
constexpr int64_t kStep = 1 << 14;  // iterations between clock reads

// Runs body(iterations) until `seconds` pass; returns pair-dims per iteration x iterations / time.
template <class Body>
double measure(Body body, double pair_dims_per_iteration, double seconds) {
  using Clock = std::chrono::steady_clock;
  body(kStep);  // warm up (clock ramp, AVX-512 licence)
  int64_t done = 0;
  const auto start = Clock::now();
  double elapsed = 0.0;
  volatile uint64_t sink = 0;
  do {
    sink = sink + body(kStep);
    done += kStep;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < seconds);
  return 2.0 * pair_dims_per_iteration * static_cast<double>(done) / elapsed / 1e9;
}

template <class V>
uint64_t fold(const V* acc) {
  uint64_t h = 0;
  for (int c = 0; c < kChains; ++c) {
    uint64_t w[sizeof(V) / 8];
    std::memcpy(w, &acc[c], sizeof(V));
    for (uint64_t x : w) h ^= x;
  }
  return h;
}

#if defined(__AVX512F__)
using VecI = __m512i;
using VecF = __m512;
constexpr int kBytes = 64;
inline VecI set1_i8(int v) { return _mm512_set1_epi8(static_cast<char>(v)); }
inline VecF set1_f(float v) { return _mm512_set1_ps(v); }
#elif defined(__AVX2__)
using VecI = __m256i;
using VecF = __m256;
constexpr int kBytes = 32;
inline VecI set1_i8(int v) { return _mm256_set1_epi8(static_cast<char>(v)); }
inline VecF set1_f(float v) { return _mm256_set1_ps(v); }
#endif

#if defined(__AVX512F__) || defined(__AVX2__)
// d = a - b; acc += d * d: the float kernels' step (one sub + one FMA per lane).
double fp32_diff_fma(double seconds) {
  auto body = [](int64_t n) {
    VecF acc[kChains], a = set1_f(1.0f), b = set1_f(0.999f);
    for (int c = 0; c < kChains; ++c) acc[c] = set1_f(0.0f);
    for (int64_t i = 0; i < n; ++i)
#pragma GCC unroll 12
      for (int c = 0; c < kChains; ++c) {
#if defined(__AVX512F__)
        const VecF d = _mm512_sub_ps(a, b);
        acc[c] = _mm512_fmadd_ps(d, d, acc[c]);
#else
        const VecF d = _mm256_sub_ps(a, b);
        acc[c] = _mm256_fmadd_ps(d, d, acc[c]);
#endif
        NNM_OPAQUE(a);  // so the difference is not hoisted
      }
    return fold(acc);
  };
  return measure(body, kChains * kBytes / 4.0, seconds);
}

// acc += a * b: the GEMM-form float l2 screen (one FMA per lane per pair-dim).
double fp32_fma(double seconds) {
  auto body = [](int64_t n) {
    VecF acc[kChains], a = set1_f(1.0f), b = set1_f(0.999f);
    for (int c = 0; c < kChains; ++c) acc[c] = set1_f(0.0f);
    for (int64_t i = 0; i < n; ++i)
#pragma GCC unroll 12
      for (int c = 0; c < kChains; ++c) {
#if defined(__AVX512F__)
        acc[c] = _mm512_fmadd_ps(a, b, acc[c]);
#else
        acc[c] = _mm256_fmadd_ps(a, b, acc[c]);
#endif
        NNM_OPAQUE(a);
      }
    return fold(acc);
  };
  return measure(body, kChains * kBytes / 4.0, seconds);
}

// acc = max(acc, (a -sat b) | (b -sat a)): the uint8 l-inf step.
double u8_absmax(double seconds) {
  auto body = [](int64_t n) {
    VecI acc[kChains], a = set1_i8(3), b = set1_i8(200);
    for (int c = 0; c < kChains; ++c) acc[c] = set1_i8(0);
    for (int64_t i = 0; i < n; ++i)
#pragma GCC unroll 12
      for (int c = 0; c < kChains; ++c) {
#if defined(__AVX512BW__)
        acc[c] = _mm512_max_epu8(acc[c], _mm512_or_si512(_mm512_subs_epu8(a, b), _mm512_subs_epu8(b, a)));
#elif defined(__AVX2__) && !defined(__AVX512F__)
        acc[c] = _mm256_max_epu8(acc[c], _mm256_or_si256(_mm256_subs_epu8(a, b), _mm256_subs_epu8(b, a)));
#endif
        NNM_OPAQUE(a);
      }
    return fold(acc);
  };
  return measure(body, kChains * kBytes, seconds);
}

// acc += sad(a, b): the uint8 l1 step.
double u8_sad(double seconds) {
  auto body = [](int64_t n) {
    VecI acc[kChains], a = set1_i8(3), b = set1_i8(200);
    for (int c = 0; c < kChains; ++c) acc[c] = set1_i8(0);
    for (int64_t i = 0; i < n; ++i)
#pragma GCC unroll 12
      for (int c = 0; c < kChains; ++c) {
#if defined(__AVX512BW__)
        acc[c] = _mm512_add_epi64(acc[c], _mm512_sad_epu8(a, b));
#elif defined(__AVX2__) && !defined(__AVX512F__)
        acc[c] = _mm256_add_epi64(acc[c], _mm256_sad_epu8(a, b));
#endif
        NNM_OPAQUE(a);
      }
    return fold(acc);
  };
  return measure(body, kChains * kBytes, seconds);
}
#endif

#if (defined(__AVX512VNNI__) && defined(__AVX512BW__)) || defined(__AVXVNNI__)
// acc += dpbusd(q, t): 4 uint8 x int8 products per 32-bit lane, the VNNI uint8 l2 step.
double u8_dpbusd(double seconds) {
  auto body = [](int64_t n) {
    VecI acc[kChains], a = set1_i8(3), b = set1_i8(-7);
    for (int c = 0; c < kChains; ++c) acc[c] = set1_i8(0);
    for (int64_t i = 0; i < n; ++i)
#pragma GCC unroll 12
      for (int c = 0; c < kChains; ++c) {
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
        acc[c] = _mm512_dpbusd_epi32(acc[c], a, b);
#else
        acc[c] = _mm256_dpbusd_avx_epi32(acc[c], a, b);
#endif
        NNM_OPAQUE(a);
      }
    return fold(acc);
  };
  return measure(body, kChains * kBytes, seconds);
}
#endif

#if defined(__AVX512BW__) || (defined(__AVX2__) && !defined(__AVX512F__))
// The AVX2 uint8 l2 step: two vpmaddubsw (low and high nibble of the query bytes) widened at once
// by vpmaddwd (x1, x16) into int32, per vector of pair-dims.
double u8_maddubs_widen(double seconds) {
  auto body = [](int64_t n) {
    VecI acc[kChains], lo = set1_i8(3), hi = set1_i8(5), b = set1_i8(-7);
#if defined(__AVX512BW__)
    const VecI ones = _mm512_set1_epi16(1), sixteens = _mm512_set1_epi16(16);
#else
    const VecI ones = _mm256_set1_epi16(1), sixteens = _mm256_set1_epi16(16);
#endif
    for (int c = 0; c < kChains; ++c) acc[c] = set1_i8(0);
    for (int64_t i = 0; i < n; ++i)
#pragma GCC unroll 12
      for (int c = 0; c < kChains; ++c) {
#if defined(__AVX512BW__)
        acc[c] = _mm512_add_epi32(acc[c], _mm512_add_epi32(_mm512_madd_epi16(_mm512_maddubs_epi16(lo, b), ones),
                                                           _mm512_madd_epi16(_mm512_maddubs_epi16(hi, b), sixteens)));
#else
        acc[c] = _mm256_add_epi32(acc[c], _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(lo, b), ones),
                                                           _mm256_madd_epi16(_mm256_maddubs_epi16(hi, b), sixteens)));
#endif
        NNM_OPAQUE(lo);
      }
    return fold(acc);
  };
  return measure(body, kChains * kBytes, seconds);
}

// The nibble-split uint8 l2 step without VNNI: two vpmaddubsw (low and high nibble of the query
// bytes) into int16 accumulators per vector of pair-dims; the kernels widen those to int32 only
// every 8 steps, which this sequence leaves out.
double u8_maddubs_nibble(double seconds) {
  auto body = [](int64_t n) {
    VecI acc[kChains], lo = set1_i8(3), hi = set1_i8(5), b = set1_i8(-7);
    for (int c = 0; c < kChains; ++c) acc[c] = set1_i8(0);
    for (int64_t i = 0; i < n; ++i)
#pragma GCC unroll 6
      for (int c = 0; c < kChains; c += 2) {
#if defined(__AVX512BW__)
        acc[c] = _mm512_add_epi16(acc[c], _mm512_maddubs_epi16(lo, b));
        acc[c + 1] = _mm512_add_epi16(acc[c + 1], _mm512_maddubs_epi16(hi, b));
#else
        acc[c] = _mm256_add_epi16(acc[c], _mm256_maddubs_epi16(lo, b));
        acc[c + 1] = _mm256_add_epi16(acc[c + 1], _mm256_maddubs_epi16(hi, b));
#endif
        NNM_OPAQUE(lo);
      }
    return fold(acc);
  };
  return measure(body, kChains / 2 * kBytes, seconds);
}
#endif

// Scalar reference sequences of the portable variant.
double scalar_fma(double seconds) {
  auto body = [](int64_t n) {
    float acc[kChains] = {}, a = 1.0f, b = 0.999f;
    for (int64_t i = 0; i < n; ++i)
      for (int c = 0; c < kChains; ++c) {
        const float d = a - b;
        acc[c] += d * d;
        NNM_OPAQUE(a);
      }
    uint64_t h = 0;
    for (float v : acc) {
      uint32_t w;
      std::memcpy(&w, &v, 4);
      h ^= w;
    }
    return h;
  };
  return measure(body, kChains, seconds);
}

}  // namespace

std::vector<std::string> peak_sequences() {
  std::vector<std::string> out;
#if defined(__AVX512F__) || defined(__AVX2__)
  out.insert(out.end(), {"fp32_fma", "fp32_diff_fma", "u8_absmax", "u8_sad"});
#endif
#if (defined(__AVX512VNNI__) && defined(__AVX512BW__)) || defined(__AVXVNNI__)
  out.push_back("u8_dpbusd");
#endif
#if defined(__AVX512BW__) || (defined(__AVX2__) && !defined(__AVX512F__))
  out.insert(out.end(), {"u8_maddubs_nibble", "u8_maddubs_widen"});
#endif
  out.push_back("scalar_fma");
  return out;
}

double peak_probe(const std::string& sequence, double seconds) {
#if defined(__AVX512F__) || defined(__AVX2__)
  if (sequence == "fp32_fma") return fp32_fma(seconds);
  if (sequence == "fp32_diff_fma") return fp32_diff_fma(seconds);
  if (sequence == "u8_absmax") return u8_absmax(seconds);
  if (sequence == "u8_sad") return u8_sad(seconds);
#endif
#if (defined(__AVX512VNNI__) && defined(__AVX512BW__)) || defined(__AVXVNNI__)
  if (sequence == "u8_dpbusd") return u8_dpbusd(seconds);
#endif
#if defined(__AVX512BW__) || (defined(__AVX2__) && !defined(__AVX512F__))
  if (sequence == "u8_maddubs_nibble") return u8_maddubs_nibble(seconds);
  if (sequence == "u8_maddubs_widen") return u8_maddubs_widen(seconds);
#endif
  if (sequence == "scalar_fma") return scalar_fma(seconds);
  return -1.0;
}

}  // namespace nnm::cpu::NNM_ISA
