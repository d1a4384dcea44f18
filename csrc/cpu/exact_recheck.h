// The exact re-check of screened candidates, shared by the nearest (scan_driver.cpp) and the top-K
// (topk_driver.cpp) searches. Compile its users with -ffp-contract=off: every product and sum of the
// re-check is rounded on its own, so a candidate gets the same float64 value whoever checks it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "scan_common.h"

namespace nnm::cpu {

constexpr double kInfDistance = std::numeric_limits<double>::infinity();

// Float64 distance between an original query row and a training row (same dtype), in the metric's
// reported form (squared for l2). Sequential order: every candidate gets the same treatment.
template <class T>
double exact_distance(const T* q, const T* t, int64_t dim, Metric metric) {
  double s = 0.0;
  for (int64_t k = 0; k < dim; ++k) {
    const double d = static_cast<double>(q[k]) - static_cast<double>(t[k]);
    if (metric == kL2) s += d * d;
    else if (metric == kL1) s += std::fabs(d);
    else s = std::max(s, std::fabs(d));
  }
  return s;
}

// A point can beat (or tie) a screened value b only if its own screened value is <= b * rho + alpha.
void screening_slack(DType dtype, Metric metric, int64_t dim, double* rho, double* alpha);

// An exact distance with its original training index, ordered by (value, index): the total order
// under which every search breaks ties (lowest index first).
struct Champion {
  double value = kInfDistance;
  int64_t index = -1;  // original training index
  bool beats(const Champion& o) const { return value < o.value || (value == o.value && index < o.index); }
  void offer(double v, int64_t idx) {
    if (Champion{v, idx}.beats(*this)) *this = Champion{v, idx};
  }
};

}  // namespace nnm::cpu
