// How each input dtype turns distances into ordered unsigned keys, and the candidate threshold.
//
// Everything here has internal linkage (anonymous namespace) on purpose: this header is compiled into
// every instruction-set variant of the kernels with different -m flags, and an inline function with
// external linkage would let the linker pick, say, the AVX-512 copy for the portable path.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "scan_common.h"

namespace nnm::cpu {
namespace {

template <class K>
constexpr K kNoKey = ~K(0);

// uint8 input: the key is the exact integer distance. No candidates: the scan keeps each minimum and
// the lowest original index attaining it (ScanJob::best_orig).
struct U8Codec {
  using Key = uint32_t;
  static constexpr bool kExact = true;
  static double value(Key key) { return static_cast<double>(key); }
  static Key threshold(Key best, double /*rho*/, double /*alpha*/) { return best; }
};

// The smallest T >= v (v a double, T float or double): the nearest T, moved one step up when it fell
// below. For non-negative finite values the step is the next bit pattern (no libm call: this runs per
// query and tile in the GEMM-form screen).
template <class T>
inline T round_up_float(double v) {
  T t = static_cast<T>(v);
  if (!(static_cast<double>(t) < v)) return t;
  if (t == T(0)) return std::numeric_limits<T>::denorm_min();  // +0 or -0: v > 0
  if (t > T(0) && t < std::numeric_limits<T>::infinity()) {
    using Bits = typename std::conditional<sizeof(T) == 4, uint32_t, uint64_t>::type;
    Bits b;
    std::memcpy(&b, &t, sizeof b);
    ++b;  // positive finite floats: the next bit pattern is the next value up
    std::memcpy(&t, &b, sizeof b);
    return t;
  }
  return std::nextafter(t, static_cast<T>(INFINITY));
}

// Floating input: the key is the bit pattern of a non-negative screened value, whose integer order is
// its numeric order. The threshold is rounded up so rounding never drops a true candidate.
template <class T, class K>
struct FloatCodec {
  using Key = K;
  static_assert(sizeof(T) == sizeof(K), "key must hold the float's bits");
  static constexpr bool kExact = false;
  static double value(Key key) {
    T v;
    std::memcpy(&v, &key, sizeof v);
    return static_cast<double>(v);
  }
  static Key key(T v) {
    Key k;
    std::memcpy(&k, &v, sizeof k);
    return k;
  }
  static Key threshold(Key best, double rho, double alpha) {
    if (best == kNoKey<Key>) return best;
    const double limit = value(best) * rho + alpha;  // rho carries a margin for this product's rounding
    return key(round_up_float<T>(limit));
  }
};

using F32Codec = FloatCodec<float, uint32_t>;
using F64Codec = FloatCodec<double, uint64_t>;

}  // namespace
}  // namespace nnm::cpu
