// CUDA backend: same contract and results as the CPU backend.
//  - uint8 l2 (dims <= 32767): integer tensor cores (u8_l2_tensor_core.cu), exact int32 arithmetic,
//    training points streamed through device memory in chunks when they do not fit.
//  - everything else: an exact reference kernel, one thread per query, sequential float64 arithmetic
//    in the same order as the CPU's exact re-check, so results match index for index.
#include <cuda_runtime.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_backend.h"
#include "cuda_util.cuh"
#include "kernels.cuh"

namespace nnm::cuda {

// Set by every search (see last_kernel_ms); atomic because searches run with the GIL released.
std::atomic<double> g_last_kernel_ms{0.0};

namespace {

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
    if (a.metric == cpu::kL2) {  // packed groups of 16 points, 4 dims each, stored as value - 128
      const int64_t off = (pos / cpu::kGroupT) * cpu::kGroupT * a.dim_padded + (k / 4) * cpu::kGroupT * 4 +
                          (pos % cpu::kGroupT) * 4 + k % 4;
      return static_cast<double>(static_cast<int8_t>(a.train[off]) + 128);
    }
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

}  // namespace

bool built_with_cuda() { return true; }

double last_kernel_ms() { return g_last_kernel_ms.load(); }

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return count;
}

void search(const cpu::TrainLayout& train, const void* queries, int64_t n, const int32_t* query_class,
            const int64_t* skip_index, cpu::SearchOutput out) {
  if (device_count() == 0) throw std::runtime_error("no CUDA device is available");
  if (n <= 0) return;
  if (train.dtype == cpu::kU8 && train.metric == cpu::kL2 && train.dim <= kMaxTensorCoreDim &&
      train.m < 0xffffffffLL) {
    search_u8_l2_tensor_core(train, static_cast<const uint8_t*>(queries), n, query_class, skip_index, out);
    return;
  }
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
  KernelTimer timer;
  nearest_same_other<<<static_cast<unsigned>((n + threads - 1) / threads), threads>>>(args);
  check(cudaGetLastError(), "kernel launch");
  g_last_kernel_ms.store(timer.stop());
  check(cudaDeviceSynchronize(), "kernel");

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

}  // namespace nnm::cuda
