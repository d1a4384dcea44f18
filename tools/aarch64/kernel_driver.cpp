// Kernel test driver without Python: the generic scan kernels (scan_kernels.cpp compiled with
// NNM_ISA=generic) behind the real search driver (scan_driver.cpp, train_layout.cpp), against a
// brute-force reference, on random and adversarial cases. Built for aarch64 and run under qemu by
// tools/aarch64/run.sh; it builds natively just as well. Exit status 1 on any mismatch.
//
// The contract checked: per query, the nearest training point of its own class and of any other
// class, value in the metric's exact form (uint8: integers, squared for l2; float: float64 of the
// inputs summed in dim order, as the driver's re-check does) and the lowest original index among
// the points at that value; +inf and -1 for a class without points. Compared exactly.
#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "../../csrc/cpu/scan_common.h"
#include "../../csrc/cpu/scan_driver.h"
#include "../../csrc/cpu/train_layout.h"

using namespace nnm::cpu;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
const char* const kMetricName[] = {"l2", "l1", "linf"};
const char* const kTypeName[] = {"uint8", "float32", "float64"};

// Exact reference distance: integers for uint8, float64 in dim order for floats.
template <class T>
double ref_distance(const T* a, const T* b, int64_t d, Metric metric) {
  if constexpr (std::is_same_v<T, uint8_t>) {
    int64_t s = 0;
    for (int64_t k = 0; k < d; ++k) {
      const int64_t diff = static_cast<int64_t>(a[k]) - b[k];
      const int64_t ad = diff < 0 ? -diff : diff;
      if (metric == kL2) s += diff * diff;
      else if (metric == kL1) s += ad;
      else s = s > ad ? s : ad;
    }
    return static_cast<double>(s);
  } else {
    double s = 0.0;
    for (int64_t k = 0; k < d; ++k) {
      const double diff = static_cast<double>(a[k]) - static_cast<double>(b[k]);
      if (metric == kL2) s += diff * diff;
      else if (metric == kL1) s += std::fabs(diff);
      else s = std::max(s, std::fabs(diff));
    }
    return s;
  }
}

struct Case {
  std::string name;
  int64_t n, m, d;
  int classes;
};

int g_failures = 0, g_checks = 0;

// Runs one (dtype, metric) search and compares every output with the reference.
template <class T>
void check(const Case& c, DType dtype, Metric metric, const std::vector<T>& train, const std::vector<int32_t>& t_class,
           const std::vector<T>& q, const std::vector<int32_t>& q_class, const std::vector<int64_t>* skip) {
  const auto layout = build_train_layout(train.data(), dtype, c.m, c.d, t_class.data(), metric);
  std::vector<double> vs(c.n), vo(c.n);
  std::vector<int64_t> is(c.n), io(c.n);
  search(*layout, generic::kernel_table(), q.data(), c.n, q_class.data(), skip ? skip->data() : nullptr, 1,
         SearchOutput{vs.data(), is.data(), vo.data(), io.data()});
  int bad = 0;
  for (int64_t i = 0; i < c.n; ++i) {
    double best[2] = {kInf, kInf};
    int64_t idx[2] = {-1, -1};
    for (int64_t j = 0; j < c.m; ++j) {
      if (skip && (*skip)[i] == j) continue;
      const int cat = t_class[j] == q_class[i] ? 0 : 1;
      const double v = ref_distance(q.data() + i * c.d, train.data() + j * c.d, c.d, metric);
      if (v < best[cat]) {  // j ascending: the first point at the minimum has the lowest index
        best[cat] = v;
        idx[cat] = j;
      }
    }
    if (vs[i] != best[0] || is[i] != idx[0] || vo[i] != best[1] || io[i] != idx[1]) {
      if (bad++ < 3)
        std::printf("  MISMATCH query %" PRId64 ": same %.17g #%" PRId64 " (want %.17g #%" PRId64 "), other %.17g #%" PRId64
                    " (want %.17g #%" PRId64 ")\n",
                    i, vs[i], is[i], best[0], idx[0], vo[i], io[i], best[1], idx[1]);
    }
  }
  ++g_checks;
  if (bad) ++g_failures;
  std::printf("%-4s %-7s %-5s %-34s n=%-4" PRId64 " m=%-5" PRId64 " d=%-6" PRId64 " %s\n", bad ? "FAIL" : "ok",
              kTypeName[dtype], kMetricName[metric], c.name.c_str(), c.n, c.m, c.d, bad ? "" : "");
}

template <class T>
T draw(std::mt19937_64& rng) {
  if constexpr (std::is_same_v<T, uint8_t>) return static_cast<uint8_t>(rng() >> 56);
  else return static_cast<T>(static_cast<double>(rng() >> 11) * 0x1p-53 * 2.0 - 1.0);
}

// Builds the data of one case; `kind` picks the adversarial structure.
template <class T>
void run_case(const Case& c, const std::string& kind, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<T> train(c.m * c.d), q(c.n * c.d);
  std::vector<int32_t> t_class(c.m), q_class(c.n);
  for (auto& v : train) v = draw<T>(rng);
  for (auto& v : q) v = draw<T>(rng);
  for (auto& y : t_class) y = static_cast<int32_t>(rng() % c.classes);
  // query labels: one more than the training classes, the extra one absent (kNoClass)
  for (auto& y : q_class) {
    const int32_t v = static_cast<int32_t>(rng() % (c.classes + 1));
    y = v == c.classes ? kNoClass : v;
  }
  const bool is_u8 = std::is_same_v<T, uint8_t>;
  if (kind == "near_ties" || kind == "duplicates") {
    // Training points are copies of queries, each then moved by one unit (uint8) or one ulp-sized
    // step (float) in one dim, or (duplicates) left identical: many exact ties across classes.
    for (int64_t j = 0; j < c.m; ++j) {
      const T* src = q.data() + (j % c.n) * c.d;
      T* dst = train.data() + j * c.d;
      for (int64_t k = 0; k < c.d; ++k) dst[k] = src[k];
      if (kind == "near_ties") {
        const int64_t k = static_cast<int64_t>(rng() % c.d);
        if constexpr (is_u8) dst[k] = dst[k] == 255 ? 254 : dst[k] == 0 ? 1 : static_cast<T>(dst[k] + (rng() & 1 ? 1 : -1));
        else dst[k] = std::nextafter(dst[k], rng() & 1 ? T(2) : T(-2));
      }
    }
  } else if (kind == "extremes" && is_u8) {
    // 0 / 255 only: largest products (|q (t - 128)| = 255 * 128), int32 dot products that wrap
    for (auto& v : train) v = rng() & 1 ? 255 : 0;
    for (auto& v : q) v = rng() & 1 ? 255 : 0;
    for (int64_t k = 0; k < c.d; ++k) q[k] = 255, train[k] = 0;  // query 0 vs point 0: all dims far
  }
  std::vector<int64_t> skip;
  const bool loo = kind == "leave_one_out";
  if (loo) {  // the queries are the first n training points, each ignoring itself
    for (int64_t i = 0; i < c.n; ++i) {
      for (int64_t k = 0; k < c.d; ++k) q[i * c.d + k] = train[i * c.d + k];
      q_class[i] = t_class[i];
      skip.push_back(i);
    }
  }
  const DType dtype = is_u8 ? kU8 : std::is_same_v<T, float> ? kF32 : kF64;
  for (Metric metric : {kL2, kL1, kLinf}) check<T>(c, dtype, metric, train, t_class, q, q_class, loo ? &skip : nullptr);
}

template <class T>
void run_all() {
  const bool is_u8 = std::is_same_v<T, uint8_t>;
  const std::vector<std::pair<Case, std::string>> cases = {
      {{"random D=1", 37, 301, 1, 3}, "random"},
      {{"random odd D=3", 20, 150, 3, 2}, "random"},
      {{"random odd D=77", 45, 500, 77, 4}, "random"},
      {{"random D=300 (chunk split)", 19, 400, 300, 3}, "random"},
      {{"random CIFAR D=3072", 9, 100, 3072, 10}, "random"},
      {{"N=1", 1, 97, 33, 2}, "random"},
      {{"M=1", 11, 1, 29, 2}, "random"},
      {{"one class (other empty)", 13, 120, 50, 1}, "random"},
      {{"near ties one unit apart", 24, 480, 41, 3}, "near_ties"},
      {{"near ties D=1", 30, 200, 1, 2}, "near_ties"},
      {{"duplicates", 12, 300, 65, 3}, "duplicates"},
      {{"leave one out", 40, 200, 23, 3}, "leave_one_out"},
  };
  uint64_t seed = 1;
  for (const auto& [c, kind] : cases) run_case<T>(c, kind, seed++);
  if (is_u8) {
    run_case<T>({"extremes 0/255", 17, 96, 257, 2}, "extremes", 100);
    // |q|^2 terms and q.(t - 128) beyond 2^31: the int32 accumulation must wrap (the true distance
    // 255^2 * 66000 still fits uint32)
    run_case<T>({"extremes, int32 wrap D=66000", 3, 20, 66000, 2}, "extremes", 101);
  }
}

}  // namespace

int main() {
  std::printf("nnmargin generic kernels vs brute force (isa %s)\n", generic::kernel_table().isa);
  run_all<uint8_t>();
  run_all<float>();
  run_all<double>();
  std::printf("%d checks, %d failed\n", g_checks, g_failures);
  return g_failures ? 1 : 0;
}
