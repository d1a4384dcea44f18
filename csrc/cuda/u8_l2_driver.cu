// Host side of the uint8-l2 tensor-core search: packs queries and training rows into the kernel's
// format, keeps the training set resident on the device when it fits (cached in the layout, per
// device), otherwise streams it through two pinned host buffers and two device buffers, so that
// packing chunk c + 1 on the CPU overlaps copying and searching chunk c on the GPU. The kernel's
// keys are a min under a total order, so chunks may finish in any order.
// Also compiled for the host against csrc/cuda/emulation (see cuda_api.h).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "cuda_api.h"
#include "cuda_util.cuh"
#include "kernels.cuh"

namespace nnm::NNM_CUDA_NS {
namespace {

#ifdef NNM_CUDA_EMULATION
constexpr int kBackend = 1;  // first half of the cache key: emulated copies are host memory
#else
constexpr int kBackend = 0;
#endif
constexpr int64_t kMaxChunkBytes = int64_t{1} << 30;  // per streaming buffer (two of them)

// One chunk of `rows` training points (a multiple of kTcRows) in one buffer: the int8 rows
// (rows x dp), then rows norms, classes and original indices (int32 / int32 / uint32).
struct ChunkFormat {
  int64_t rows, dp;
  size_t norm_at() const { return static_cast<size_t>(rows * dp); }
  size_t class_at() const { return norm_at() + 4 * rows; }
  size_t orig_at() const { return class_at() + 4 * rows; }
  size_t bytes() const { return orig_at() + 4 * rows; }
};

int64_t bytes_per_row(int64_t dp) { return dp + 12; }

// Training positions [begin, begin + count) of the layout into `dst` (format f, f.rows >=
// count): value - 128 (what the packed CPU layout stores), |t - 128|^2, class, original index.
// Padding rows are zero with class -2 and no index; the kernel never reads past f.rows.
void pack_chunk(const cpu::TrainLayout& t, int64_t begin, int64_t count, const ChunkFormat& f, uint8_t* dst) {
  auto* rows = reinterpret_cast<int8_t*>(dst);
  auto* norm = reinterpret_cast<int32_t*>(dst + f.norm_at());
  auto* cls = reinterpret_cast<int32_t*>(dst + f.class_at());
  auto* orig = reinterpret_cast<uint32_t*>(dst + f.orig_at());
  const auto* packed = reinterpret_cast<const int8_t*>(t.data.data());
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < f.rows; ++r) {
    int8_t* row = rows + r * f.dp;
    std::fill(row, row + f.dp, int8_t{0});
    if (r >= count) {
      norm[r] = 0;
      cls[r] = -2;
      orig[r] = 0xffffffffu;
      continue;
    }
    const int64_t pos = begin + r;
    int32_t sq = 0;
    for (int64_t k = 0; k < t.dim; ++k) {
      const int8_t v = packed[cpu::u8_l2_offset(pos, k, t.dim_padded)];
      row[k] = v;
      sq += static_cast<int32_t>(v) * v;
    }
    norm[r] = sq;
    cls[r] = t.t_class[pos];
    orig[r] = static_cast<uint32_t>(t.orig_of_pos[pos]);
  }
}

TensorCoreArgs with_chunk(TensorCoreArgs args, const ChunkFormat& f, const uint8_t* device_chunk, int64_t count) {
  args.train = reinterpret_cast<const int8_t*>(device_chunk);
  args.t_norm = reinterpret_cast<const int32_t*>(device_chunk + f.norm_at());
  args.t_class = reinterpret_cast<const int32_t*>(device_chunk + f.class_at());
  args.t_orig = reinterpret_cast<const uint32_t*>(device_chunk + f.orig_at());
  args.m_valid = count;
  return args;
}

// The whole training set as one chunk on one device: what TrainLayout::cuda_cache holds.
struct ResidentTrain {
  ChunkFormat format;
  DeviceArray<uint8_t> buffer;
  ResidentTrain(const cpu::TrainLayout& t, int64_t dp)
      : format{round_up(t.m, kTcRows), dp}, buffer(format.bytes()) {
    std::vector<uint8_t> host(format.bytes());
    pack_chunk(t, 0, t.m, format, host.data());
    check(cudaMemcpy(buffer.get(), host.data(), host.size(), cudaMemcpyHostToDevice), "cudaMemcpy to device");
  }
};

// Training rows per streamed chunk, or 0 to keep the set resident. NNMARGIN_CUDA_CHUNK_ROWS forces
// streaming in chunks of that many rows (tests, benchmarks). Otherwise the set stays resident when
// it takes at most 3/4 of the free memory (the rest for queries, keys and other users); else two
// chunk buffers take at most half of it, and each at most kMaxChunkBytes: larger chunks would only
// delay the first kernel.
int64_t streaming_rows(int64_t m, int64_t dp, size_t free_bytes) {
  if (const char* forced = std::getenv("NNMARGIN_CUDA_CHUNK_ROWS"); forced && *forced) {
    const long long rows = std::atoll(forced);
    if (rows <= 0) throw std::invalid_argument("NNMARGIN_CUDA_CHUNK_ROWS must be a positive number of rows");
    return round_up(std::min<int64_t>(rows, m), kTcRows);
  }
  const int64_t row = bytes_per_row(dp);
  if (round_up(m, kTcRows) * row <= static_cast<int64_t>(free_bytes / 4 * 3)) return 0;
  const int64_t budget = std::min<int64_t>(kMaxChunkBytes, static_cast<int64_t>(free_bytes / 4));
  return std::max<int64_t>(kTcRows, budget / row / kTcRows * kTcRows);
}

// The layout's resident copy for `device`, made on first use (under the lock: concurrent first
// searches of one TrainSet upload it once). Null when it is not cached and does not fit.
std::shared_ptr<const ResidentTrain> resident_copy(const cpu::TrainLayout& t, int device, int64_t dp,
                                                   bool may_create) {
  std::lock_guard<std::mutex> lock(t.cuda_cache_mutex);
  auto& slot = t.cuda_cache[{kBackend, device}];
  if (!slot && may_create) slot = std::make_shared<ResidentTrain>(t, dp);
  return std::static_pointer_cast<const ResidentTrain>(slot);
}

void read_keys(const DeviceArray<unsigned long long>& same_d, const DeviceArray<unsigned long long>& other_d,
               int64_t n, cpu::SearchOutput out) {
  std::vector<unsigned long long> same(n), other(n);
  check(cudaMemcpy(same.data(), same_d.get(), n * sizeof(unsigned long long), cudaMemcpyDeviceToHost), "cudaMemcpy");
  check(cudaMemcpy(other.data(), other_d.get(), n * sizeof(unsigned long long), cudaMemcpyDeviceToHost), "cudaMemcpy");
  for (int64_t i = 0; i < n; ++i) {
    out.value_same[i] = same[i] == ~0ull ? INFINITY : static_cast<double>(same[i] >> 32);
    out.index_same[i] = same[i] == ~0ull ? -1 : static_cast<int64_t>(same[i] & 0xffffffffu);
    out.value_other[i] = other[i] == ~0ull ? INFINITY : static_cast<double>(other[i] >> 32);
    out.index_other[i] = other[i] == ~0ull ? -1 : static_cast<int64_t>(other[i] & 0xffffffffu);
  }
}

}  // namespace

void search_u8_l2_tensor_core(const cpu::TrainLayout& t, const uint8_t* queries, int64_t n, const int32_t* query_class,
                              const int64_t* skip_index, cpu::SearchOutput out) {
  const int64_t dp = round_up(t.dim, kTcDims);
  const int64_t n_pad = round_up(n, kTcRows);
  std::vector<int8_t> q(n_pad * dp, 0);
  std::vector<int32_t> q_norm(n_pad, 0), q_class(n_pad, -1);
  std::vector<uint32_t> q_skip(n_pad, 0xffffffffu);
#pragma omp parallel for schedule(static)
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
  const TensorCoreArgs base{d_q.get(), d_q_norm.get(), d_q_class.get(), d_q_skip.get(), nullptr, nullptr, nullptr,
                            nullptr, n, 0, dp, key_same.get(), key_other.get()};

  int device = 0, sm_count = 1;
  check(cudaGetDevice(&device), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device), "cudaDeviceGetAttribute");
  size_t free_bytes = 0, total_bytes = 0;
  check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
  // A cached copy already occupies device memory, so it is reused before free memory is looked at:
  // deciding from free memory alone would stream a set that is resident.
  const char* forced = std::getenv("NNMARGIN_CUDA_CHUNK_ROWS");
  std::shared_ptr<const ResidentTrain> resident;
  if (!(forced && *forced)) resident = resident_copy(t, device, dp, false);
  const int64_t rows = resident ? 0 : streaming_rows(t.m, dp, free_bytes);
  if (!resident && rows == 0) resident = resident_copy(t, device, dp, true);

  SearchStats stats;
  KernelTimer timer;
  if (resident) {
    launch_u8_l2(with_chunk(base, resident->format, resident->buffer.get(), t.m), sm_count, nullptr);
    check(cudaGetLastError(), "tensor-core kernel launch");
    stats.chunks = 1;
    stats.resident = true;
  } else {
    Stream streams[2];
    std::unique_ptr<PinnedBuffer> host[2];
    std::unique_ptr<DeviceArray<uint8_t>> chunk[2];
    const ChunkFormat full{rows, dp};
    for (int64_t begin = 0, c = 0; begin < t.m; begin += rows, ++c) {
      const int s = static_cast<int>(c % 2);
      const int64_t count = std::min(rows, t.m - begin);
      const ChunkFormat f{round_up(count, kTcRows), dp};
      if (!host[s]) {
        host[s] = std::make_unique<PinnedBuffer>(full.bytes());
        chunk[s] = std::make_unique<DeviceArray<uint8_t>>(full.bytes());
      } else {
        check(cudaStreamSynchronize(streams[s].get()), "cudaStreamSynchronize");  // chunk c - 2 is done with both buffers
      }
      pack_chunk(t, begin, count, f, host[s]->get());
      check(cudaMemcpyAsync(chunk[s]->get(), host[s]->get(), f.bytes(), cudaMemcpyHostToDevice, streams[s].get()),
            "cudaMemcpyAsync");
      launch_u8_l2(with_chunk(base, f, chunk[s]->get(), count), sm_count, streams[s].get());
      check(cudaGetLastError(), "tensor-core kernel launch");
      stats.chunks = c + 1;
    }
    stats.device_ms = timer.stop();  // waits for both streams before their buffers are freed
  }
  if (stats.resident) stats.device_ms = timer.stop();
  record_search_stats(stats);
  read_keys(key_same, key_other, n, out);
}

}  // namespace nnm::NNM_CUDA_NS
