// CUDA backend: same contract and results as the CPU backend.
//  - uint8 l2 (dims <= 32767): integer tensor cores (u8_l2_tensor_core.cu), exact int32 arithmetic,
//    training points streamed through device memory in chunks when they do not fit.
//  - everything else: an exact reference kernel, one thread per query, sequential float64 arithmetic
//    in the same order as the CPU's exact re-check, so results match index for index.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_backend.h"
#include "kernels.cuh"

namespace nnm::cuda {
namespace {

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(err));
}

// Owns one device allocation.
template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n) : size_(n) { check(cudaMalloc(&ptr_, (n > 0 ? n : 1) * sizeof(T)), "cudaMalloc"); }
  DeviceArray(const T* host, size_t n) : DeviceArray(n) {
    if (n) check(cudaMemcpy(ptr_, host, n * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy to device");
  }
  ~DeviceArray() { cudaFree(ptr_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  DeviceArray(DeviceArray&& other) noexcept : ptr_(other.ptr_), size_(other.size_) { other.ptr_ = nullptr; }
  DeviceArray& operator=(DeviceArray&&) = delete;
  T* get() const { return ptr_; }
  size_t size() const { return size_; }

 private:
  T* ptr_ = nullptr;
  size_t size_ = 0;
};

template <class T>
DeviceArray<T> upload(const std::vector<T>& host) { return DeviceArray<T>(host.data(), host.size()); }

double g_last_kernel_ms = 0.0;

// Times the kernels between construction and stop() with CUDA events.
class KernelTimer {
 public:
  KernelTimer() {
    check(cudaEventCreate(&start_), "cudaEventCreate");
    check(cudaEventCreate(&stop_), "cudaEventCreate");
    check(cudaEventRecord(start_), "cudaEventRecord");
  }
  ~KernelTimer() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  double stop() {
    check(cudaEventRecord(stop_), "cudaEventRecord");
    check(cudaEventSynchronize(stop_), "cudaEventSynchronize");
    float ms = 0.f;
    check(cudaEventElapsedTime(&ms, start_, stop_), "cudaEventElapsedTime");
    return ms;
  }

 private:
  cudaEvent_t start_, stop_;
};

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

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Training rows [begin, begin + rows) of a uint8-l2 layout as row-major int8 (value - 128, which is
// what the packed CPU layout stores), padded to whole tiles, with norms, classes, original indices.
struct TensorCoreTrainChunk {
  DeviceArray<int8_t> rows;
  DeviceArray<int32_t> norm, cls;
  DeviceArray<uint32_t> orig;
  int64_t count;
};

TensorCoreTrainChunk make_train_chunk(const cpu::TrainLayout& t, int64_t begin, int64_t count, int64_t dp) {
  const int64_t padded = round_up(count, kTcRows);
  std::vector<int8_t> rows(padded * dp, 0);
  std::vector<int32_t> norm(padded, 0), cls(padded, -2);
  std::vector<uint32_t> orig(padded, 0xffffffffu);
  const auto* packed = reinterpret_cast<const int8_t*>(t.data.data());
  for (int64_t r = 0; r < count; ++r) {
    const int64_t pos = begin + r;
    const int8_t* group = packed + (pos / cpu::kGroupT) * cpu::kGroupT * t.dim_padded + (pos % cpu::kGroupT) * 4;
    int32_t sq = 0;
    for (int64_t k = 0; k < t.dim; ++k) {
      const int8_t v = group[(k / 4) * cpu::kGroupT * 4 + k % 4];
      rows[r * dp + k] = v;
      sq += static_cast<int32_t>(v) * v;
    }
    norm[r] = sq;
    cls[r] = t.t_class[pos];
    orig[r] = static_cast<uint32_t>(t.orig_of_pos[pos]);
  }
  return TensorCoreTrainChunk{upload(rows), upload(norm), upload(cls), upload(orig), count};
}

void search_tensor_core(const cpu::TrainLayout& t, const uint8_t* queries, int64_t n, const int32_t* query_class,
                        const int64_t* skip_index, cpu::SearchOutput out) {
  const int64_t dp = round_up(t.dim, kTcDims);
  const int64_t n_pad = round_up(n, kTcRows);
  std::vector<int8_t> q(n_pad * dp, 0);
  std::vector<int32_t> q_norm(n_pad, 0), q_class(n_pad, -1);
  std::vector<uint32_t> q_skip(n_pad, 0xffffffffu);
  for (int64_t i = 0; i < n; ++i) {
    int32_t sq = 0;
    for (int64_t k = 0; k < t.dim; ++k) {
      const int8_t v = static_cast<int8_t>(static_cast<int>(queries[i * t.dim + k]) - 128);
      q[i * dp + k] = v;
      sq += static_cast<int32_t>(v) * v;
    }
    q_norm[i] = sq;
    q_class[i] = query_class[i];
    if (skip_index && skip_index[i] >= 0) q_skip[i] = static_cast<uint32_t>(skip_index[i]);
  }
  auto d_q = upload(q);
  auto d_q_norm = upload(q_norm);
  auto d_q_class = upload(q_class);
  auto d_q_skip = upload(q_skip);
  DeviceArray<unsigned long long> key_same(n), key_other(n);
  check(cudaMemset(key_same.get(), 0xff, n * sizeof(unsigned long long)), "cudaMemset");
  check(cudaMemset(key_other.get(), 0xff, n * sizeof(unsigned long long)), "cudaMemset");

  int device = 0, sm_count = 1;
  check(cudaGetDevice(&device), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device), "cudaDeviceGetAttribute");
  size_t free_bytes = 0, total_bytes = 0;
  check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
  // Training rows per chunk: half of the free memory; the whole set when it fits (then cached).
  const int64_t fit = std::max<int64_t>(kTcRows, static_cast<int64_t>(free_bytes / 2) / (dp + 16) / kTcRows * kTcRows);
  const bool one_chunk = t.m <= fit;

  TensorCoreArgs args{d_q.get(), d_q_norm.get(), d_q_class.get(), d_q_skip.get(), nullptr, nullptr, nullptr, nullptr,
                      n, 0, dp, key_same.get(), key_other.get()};
  double kernel_ms = 0.0;
  for (int64_t begin = 0; begin < t.m; begin += one_chunk ? t.m : fit) {
    const int64_t count = std::min(t.m - begin, one_chunk ? t.m : fit);
    std::shared_ptr<TensorCoreTrainChunk> chunk;
    if (one_chunk && t.cuda_cache) {
      chunk = std::static_pointer_cast<TensorCoreTrainChunk>(t.cuda_cache);
    } else {
      chunk = std::make_shared<TensorCoreTrainChunk>(make_train_chunk(t, begin, count, dp));
      if (one_chunk) t.cuda_cache = chunk;
    }
    args.train = chunk->rows.get();
    args.t_norm = chunk->norm.get();
    args.t_class = chunk->cls.get();
    args.t_orig = chunk->orig.get();
    args.m_valid = chunk->count;
    KernelTimer timer;
    launch_u8_l2_tensor_core(args, sm_count);
    check(cudaGetLastError(), "tensor-core kernel launch");
    kernel_ms += timer.stop();
  }
  g_last_kernel_ms = kernel_ms;

  std::vector<unsigned long long> same(n), other(n);
  check(cudaMemcpy(same.data(), key_same.get(), n * sizeof(unsigned long long), cudaMemcpyDeviceToHost), "cudaMemcpy");
  check(cudaMemcpy(other.data(), key_other.get(), n * sizeof(unsigned long long), cudaMemcpyDeviceToHost), "cudaMemcpy");
  constexpr double kInf = INFINITY;
  for (int64_t i = 0; i < n; ++i) {
    out.value_same[i] = same[i] == ~0ull ? kInf : static_cast<double>(same[i] >> 32);
    out.index_same[i] = same[i] == ~0ull ? -1 : static_cast<int64_t>(same[i] & 0xffffffffu);
    out.value_other[i] = other[i] == ~0ull ? kInf : static_cast<double>(other[i] >> 32);
    out.index_other[i] = other[i] == ~0ull ? -1 : static_cast<int64_t>(other[i] & 0xffffffffu);
  }
}

}  // namespace

bool built_with_cuda() { return true; }

double last_kernel_ms() { return g_last_kernel_ms; }

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
    search_tensor_core(train, static_cast<const uint8_t*>(queries), n, query_class, skip_index, out);
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
  g_last_kernel_ms = timer.stop();
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
