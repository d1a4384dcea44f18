// CUDA backend: same contract and results as the CPU backend.
//  - uint8 l2 (dims <= 32767): integer tensor cores (u8_l2_driver.cu, u8_l2_tensor_core.cu), exact
//    int32 arithmetic, training points resident on the device or streamed in chunks.
//  - everything else: an exact reference kernel, one thread per query, sequential float64 arithmetic
//    in the same order as the CPU's exact re-check, so results match index for index.
// Also compiled for the host against csrc/cuda/emulation (see cuda_api.h).
#include <cmath>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_api.h"
#include "cuda_backend.h"
#include "cuda_util.cuh"
#include "kernels.cuh"

namespace nnm::NNM_CUDA_NS {

namespace {

constexpr int kMinMajor = 8;  // mma.sync m16n8k32 s8 needs sm_80; the build has no older code

std::mutex stats_mutex;
SearchStats stats_of_last_search;

struct KernelArgs {
  const uint8_t* train;      // layout bytes (see train_layout.h)
  const int32_t* t_class;    // (m) per sorted position
  const int64_t* t_orig;     // (m) original index per sorted position
  const uint8_t* queries;    // (n, dim) original rows
  const int32_t* q_class;    // (n)
  const int64_t* q_skip;     // (n) sorted position to ignore, or -1
  int64_t n, m, dim, dim_padded;
  int dtype, metric;
  double* value;             // (n, 2)
  int64_t* index;            // (n, 2)
};

__device__ double train_value(const KernelArgs& a, int64_t pos, int64_t k) {
  if (a.dtype == cpu::kU8) {
    if (a.metric == cpu::kL2)  // stored as value - 128
      return static_cast<double>(static_cast<int8_t>(a.train[cpu::u8_l2_offset(pos, k, a.dim_padded)]) + 128);
    if (a.metric == cpu::kL1) return static_cast<double>(a.train[cpu::u8_l1_offset(pos, k, a.dim_padded)]);
    return static_cast<double>(a.train[pos * a.dim_padded + k]);
  }
  if (a.dtype == cpu::kF32) return static_cast<double>(reinterpret_cast<const float*>(a.train)[pos * a.dim_padded + k]);
  return reinterpret_cast<const double*>(a.train)[pos * a.dim_padded + k];
}

__device__ double query_value(const KernelArgs& a, int64_t i, int64_t k) {
  if (a.dtype == cpu::kU8) return static_cast<double>(a.queries[i * a.dim + k]);
  if (a.dtype == cpu::kF32) return static_cast<double>(reinterpret_cast<const float*>(a.queries)[i * a.dim + k]);
  return reinterpret_cast<const double*>(a.queries)[i * a.dim + k];
}

__global__ void nearest_same_other(KernelArgs a) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= a.n) return;
  double best_v[2] = {INFINITY, INFINITY};
  int64_t best_i[2] = {-1, -1};
  const int32_t y = a.q_class[i];
  for (int64_t pos = 0; pos < a.m; ++pos) {
    if (pos == a.q_skip[i]) continue;
    double s = 0.0;
    for (int64_t k = 0; k < a.dim; ++k) {
      const double d = __dsub_rn(query_value(a, i, k), train_value(a, pos, k));
      if (a.metric == cpu::kL2) s = __dadd_rn(s, __dmul_rn(d, d));  // no FMA: match the CPU re-check
      else if (a.metric == cpu::kL1) s = __dadd_rn(s, fabs(d));
      else s = fmax(s, fabs(d));
    }
    const int cat = a.t_class[pos] == y ? 0 : 1;
    const int64_t idx = a.t_orig[pos];
    if (s < best_v[cat] || (s == best_v[cat] && idx < best_i[cat])) {
      best_v[cat] = s;
      best_i[cat] = idx;
    }
  }
  for (int c = 0; c < 2; ++c) {
    a.value[2 * i + c] = best_v[c];
    a.index[2 * i + c] = best_i[c];
  }
}

std::string version_text(int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); }

void search_reference(const cpu::TrainLayout& train, const void* queries, int64_t n, const int32_t* query_class,
                      const int64_t* skip_index, cpu::SearchOutput out) {
  const size_t es = cpu::element_size(train.dtype);
  std::vector<int64_t> skip_pos(n, -1);
  if (skip_index)
    for (int64_t i = 0; i < n; ++i) skip_pos[i] = skip_index[i] >= 0 ? train.pos_of_orig[skip_index[i]] : -1;

  DeviceArray<uint8_t> d_train(train.data.data(), train.data.size());
  DeviceArray<int32_t> d_class(train.t_class.data(), train.m);
  DeviceArray<int64_t> d_orig(train.orig_of_pos.data(), train.m);
  DeviceArray<uint8_t> d_queries(static_cast<const uint8_t*>(queries), n * train.dim * es);
  DeviceArray<int32_t> d_qclass(query_class, n);
  DeviceArray<int64_t> d_skip(skip_pos.data(), n);
  DeviceArray<double> d_value(2 * n);
  DeviceArray<int64_t> d_index(2 * n);

  KernelArgs args{d_train.get(), d_class.get(), d_orig.get(), d_queries.get(), d_qclass.get(), d_skip.get(),
                  n, train.m, train.dim, train.dim_padded, train.dtype, train.metric, d_value.get(), d_index.get()};
  const int threads = 128;
  SearchStats stats;
  KernelTimer timer;
  launch_kernel(nearest_same_other, dim3(static_cast<unsigned>((n + threads - 1) / threads)), dim3(threads), nullptr, args);
  check(cudaGetLastError(), "kernel launch");
  stats.device_ms = timer.stop();
  stats.chunks = 1;
  check(cudaDeviceSynchronize(), "kernel");
  record_search_stats(stats);

  std::vector<double> value(2 * n);
  std::vector<int64_t> index(2 * n);
  check(cudaMemcpy(value.data(), d_value.get(), 2 * n * sizeof(double), cudaMemcpyDeviceToHost), "cudaMemcpy");
  check(cudaMemcpy(index.data(), d_index.get(), 2 * n * sizeof(int64_t), cudaMemcpyDeviceToHost), "cudaMemcpy");
  for (int64_t i = 0; i < n; ++i) {
    out.value_same[i] = value[2 * i];
    out.index_same[i] = index[2 * i];
    out.value_other[i] = value[2 * i + 1];
    out.index_other[i] = index[2 * i + 1];
  }
}

}  // namespace

#ifndef NNM_CUDA_EMULATION
bool built_with_cuda() { return true; }
#endif

void record_search_stats(const SearchStats& stats) {
  std::lock_guard<std::mutex> lock(stats_mutex);
  stats_of_last_search = stats;
}

SearchStats last_search_stats() {
  std::lock_guard<std::mutex> lock(stats_mutex);
  return stats_of_last_search;
}

// Says why there is no usable device, in the order a user would fix it: a driver at all, one new
// enough for this runtime (CUDA 13 runs on any driver of major version 13, "minor version
// compatibility"), a visible device, one the kernels can run on.
DeviceStatus device_status() {
  int driver = 0;
  if (cudaDriverGetVersion(&driver) != cudaSuccess || driver == 0) {
    cudaGetLastError();  // clear the sticky error
    return {0, "no CUDA driver found (no NVIDIA GPU, or its driver is not installed)"};
  }
  if (driver / 1000 < CUDART_VERSION / 1000)
    return {0, "the NVIDIA driver supports CUDA " + version_text(driver) + ", older than the CUDA " +
                   version_text(CUDART_VERSION) + " runtime nnmargin was built with: install a newer driver"};
  int count = 0;
  if (const cudaError_t err = cudaGetDeviceCount(&count); err != cudaSuccess) {
    cudaGetLastError();
    return {0, std::string("no CUDA device found (cudaGetDeviceCount: ") + cudaGetErrorString(err) + ")"};
  }
  if (count == 0) return {0, "no CUDA device found"};
  DeviceStatus status;
  std::string older;
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, d) != cudaSuccess) {
      cudaGetLastError();
      continue;
    }
    if (prop.major >= kMinMajor) ++status.usable;
    else older += (older.empty() ? "" : ", ") + std::string(prop.name) + " (" + std::to_string(prop.major) + "." + std::to_string(prop.minor) + ")";
  }
  if (status.usable == 0)
    status.reason = "no CUDA device of compute capability 8.0 or newer (the kernels use sm_80 tensor-core "
                    "instructions); found " + (older.empty() ? std::string("none readable") : older);
  return status;
}

void search(const cpu::TrainLayout& train, const void* queries, int64_t n, const int32_t* query_class,
            const int64_t* skip_index, cpu::SearchOutput out) {
  const DeviceStatus status = device_status();
  if (status.usable == 0) throw std::runtime_error("no usable CUDA device: " + status.reason);
  int device = 0, major = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), "cudaDeviceGetAttribute");
  if (major < kMinMajor)
    throw std::runtime_error("the current CUDA device " + std::to_string(device) +
                             " is older than compute capability 8.0; select another with CUDA_VISIBLE_DEVICES");
  if (n <= 0) return;
  if (train.dtype == cpu::kU8 && train.metric == cpu::kL2 && train.dim <= kMaxTensorCoreDim &&
      train.m < 0xffffffffLL) {
    search_u8_l2_tensor_core(train, static_cast<const uint8_t*>(queries), n, query_class, skip_index, out);
    return;
  }
  search_reference(train, queries, n, query_class, skip_index, out);
}

}  // namespace nnm::NNM_CUDA_NS
