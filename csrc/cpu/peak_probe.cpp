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

template <class V, int Chains = kChains>
uint64_t fold(const V* acc) {
  uint64_t h = 0;
  for (int c = 0; c < Chains; ++c) {
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
#define NNM_V(op) _mm512_##op
#define NNM_OR _mm512_or_si512
#elif defined(__AVX2__)
using VecI = __m256i;
using VecF = __m256;
constexpr int kBytes = 32;
inline VecI set1_i8(int v) { return _mm256_set1_epi8(static_cast<char>(v)); }
inline VecF set1_f(float v) { return _mm256_set1_ps(v); }
#define NNM_V(op) _mm256_##op
#define NNM_OR _mm256_or_si256
#endif

#if defined(__AVX512F__) || defined(__AVX2__)
// `Chains` independent chains acc = step(acc, a, b), `a` opaque at every step so nothing is hoisted;
// one step covers `pair_dims` pair-dims.
template <int Chains = kChains, class V, class Step>
double chain_probe(V a, V b, V zero, double pair_dims, double seconds, Step step) {
  auto body = [&](int64_t n) {
    V acc[Chains];
    for (int c = 0; c < Chains; ++c) acc[c] = zero;
    for (int64_t i = 0; i < n; ++i)
#pragma GCC unroll 12
      for (int c = 0; c < Chains; ++c) {
        acc[c] = step(acc[c], a, b);
        NNM_OPAQUE(a);
      }
    return fold<V, Chains>(acc);
  };
  return measure(body, Chains * pair_dims, seconds);
}

double float_probe(double seconds, bool with_difference) {
  const VecF a = set1_f(1.0f), b = set1_f(0.999f);
  if (with_difference)  // d = a - b; acc += d * d: the direct-difference float kernels
    return chain_probe(a, b, set1_f(0.0f), kBytes / 4.0, seconds, [](VecF acc, VecF x, VecF y) {
      const VecF d = NNM_V(sub_ps)(x, y);
      return NNM_V(fmadd_ps)(d, d, acc);
    });
  return chain_probe(a, b, set1_f(0.0f), kBytes / 4.0, seconds,  // acc += a * b: the GEMM-form screen
                     [](VecF acc, VecF x, VecF y) { return NNM_V(fmadd_ps)(x, y, acc); });
}

double int_probe(const std::string& sequence, double seconds) {
  const VecI a = set1_i8(3), b = set1_i8(-7), zero = set1_i8(0);
  const double pd = kBytes;  // every integer step covers one vector of byte pair-dims
  if (sequence == "u8_absmax")  // acc = max(acc, (a -sat b) | (b -sat a)): uint8 l-inf
    return chain_probe(a, b, zero, pd, seconds, [](VecI acc, VecI x, VecI y) {
      return NNM_V(max_epu8)(acc, NNM_OR(NNM_V(subs_epu8)(x, y), NNM_V(subs_epu8)(y, x)));
    });
  if (sequence == "u8_sad")  // acc += sad(a, b): uint8 l1
    return chain_probe(a, b, zero, pd, seconds,
                       [](VecI acc, VecI x, VecI y) { return NNM_V(add_epi64)(acc, NNM_V(sad_epu8)(x, y)); });
#if (defined(__AVX512VNNI__) && defined(__AVX512BW__)) || defined(__AVXVNNI__)
  if (sequence == "u8_dpbusd")  // acc += dpbusd(q, t): the VNNI uint8 l2 step
    return chain_probe(a, b, zero, pd, seconds, [](VecI acc, VecI x, VecI y) {
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
      return _mm512_dpbusd_epi32(acc, x, y);
#else
      // Written out: through _mm256_dpbusd_avx_epi32, GCC 12 moved chains to the stack and back
      // around every step, and the probe measured those round trips (0.6x the kernel's own rate).
      __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(x), "x"(y));
      return acc;
#endif
    });
#endif
  // Without VNNI, two vpmaddubsw per vector (low and high nibble of the query bytes):
  if (sequence == "u8_maddubs_nibble")  // int16 sums, widened only every 8 steps (AVX-512 without VNNI)
    return chain_probe(a, b, zero, pd, seconds, [](VecI acc, VecI x, VecI y) {
      return NNM_V(add_epi16)(NNM_V(add_epi16)(acc, NNM_V(maddubs_epi16)(x, y)), NNM_V(maddubs_epi16)(y, x));
    });
  // acc += vpmaddwd(q, t) on int16 words: the AVX2 uint8 l2 step. 6 chains (the chain is one add):
  // with 8 to 12, GCC 12 kept most of them on the stack (83-117 GOP/s instead of 187 on Zen 4).
  if (sequence == "u8_madd_words")
    return chain_probe<6>(a, b, zero, pd / 2, seconds, [](VecI acc, VecI x, VecI y) {
      return NNM_V(add_epi32)(acc, NNM_V(madd_epi16)(x, y));
    });
  return -1.0;
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
  out.insert(out.end(), {"fp32_fma", "fp32_diff_fma", "u8_absmax", "u8_sad", "u8_maddubs_nibble", "u8_madd_words"});
#endif
#if (defined(__AVX512VNNI__) && defined(__AVX512BW__)) || defined(__AVXVNNI__)
  out.push_back("u8_dpbusd");
#endif
  out.push_back("scalar_fma");
  return out;
}

double peak_probe(const std::string& sequence, double seconds) {
  if (sequence == "scalar_fma") return scalar_fma(seconds);
#if defined(__AVX512F__) || defined(__AVX2__)
  if (sequence == "fp32_fma" || sequence == "fp32_diff_fma") return float_probe(seconds, sequence == "fp32_diff_fma");
  return int_probe(sequence, seconds);
#else
  return -1.0;
#endif
}

}  // namespace nnm::cpu::NNM_ISA
