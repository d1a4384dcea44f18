// How each input dtype turns distances into ordered unsigned keys, and the candidate threshold.
//
// Everything here has internal linkage (anonymous namespace) on purpose: this header is compiled into
// every instruction-set variant of the kernels with different -m flags, and an inline function with
// external linkage would let the linker pick, say, the AVX-512 copy for the portable path.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

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
    T t = static_cast<T>(limit);
    if (static_cast<double>(t) < limit) t = std::nextafter(t, static_cast<T>(INFINITY));
    return key(t);
  }
};

using F32Codec = FloatCodec<float, uint32_t>;
using F64Codec = FloatCodec<double, uint64_t>;

}  // namespace
}  // namespace nnm::cpu
