// uint8 l2 nearest same-class / other-class search on the integer tensor cores (mma.sync
// m16n8k32 s8, sm_80+). One block: 64 queries x a strided set of 64-point training tiles; 4 warps,
// each 16 queries x 64 points (8 n-tiles). Never writes distances: each thread keeps, for its two
// query rows, the running minimum key (d^2 << 32 | original index) per same/other class, reduced
// over the 4 threads of a quad and merged with atomicMin. A min under that total order does not
// depend on block order or on how the training set was chunked, and ties go to the lowest index.
#include <cuda_runtime.h>

#include <mutex>

#include <algorithm>
#include <vector>

#include "cuda_util.cuh"
#include "kernels.cuh"

namespace nnm::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kRowStride = kTcDims + 16;  // shared rows padded: 8 fragment rows hit 8 bank groups

__device__ __forceinline__ void mma_s8(int (&acc)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+r"(acc[0]), "+r"(acc[1]), "+r"(acc[2]), "+r"(acc[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ unsigned load_u32(const int8_t* p) { return *reinterpret_cast<const unsigned*>(p); }

// Copy 64 rows x kTcDims bytes (rows of `stride` bytes in global memory) into shared memory.
__device__ __forceinline__ void stage(int8_t* dst, const int8_t* src, int64_t stride) {
  constexpr int kVectorsPerRow = kTcDims / 16;
  for (int v = threadIdx.x; v < kTcRows * kVectorsPerRow; v += kWarps * 32) {
    const int r = v / kVectorsPerRow, c = (v % kVectorsPerRow) * 16;
    *reinterpret_cast<int4*>(dst + r * kRowStride + c) = *reinterpret_cast<const int4*>(src + r * stride + c);
  }
}

__global__ void __launch_bounds__(kWarps * 32) u8_l2_kernel(TensorCoreArgs a) {
  __shared__ __align__(16) int8_t s_q[kTcRows * kRowStride];
  __shared__ __align__(16) int8_t s_t[kTcRows * kRowStride];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int group = lane >> 2, quad = lane & 3;  // fragment row group and thread within the quad
  const int64_t q0 = static_cast<int64_t>(blockIdx.x) * kTcRows;
  // This thread's two query rows in the accumulator fragments: group and group + 8 of its warp.
  const int rows[2] = {warp * 16 + group, warp * 16 + group + 8};
  int32_t q_norm[2], q_class[2];
  uint32_t q_skip[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    q_norm[h] = a.q_norm[q0 + rows[h]];
    q_class[h] = a.q_class[q0 + rows[h]];
    q_skip[h] = a.q_skip[q0 + rows[h]];
  }
  // Running minimum keys per row; indexed only by unrolled constants (a runtime index would move
  // them to local memory).
  unsigned long long best_same[2] = {~0ull, ~0ull}, best_other[2] = {~0ull, ~0ull};

  for (int64_t j0 = static_cast<int64_t>(blockIdx.y) * kTcRows; j0 < a.m_valid; j0 += static_cast<int64_t>(gridDim.y) * kTcRows) {
    int acc[8][4] = {};
    for (int64_t k0 = 0; k0 < a.dim_padded; k0 += kTcDims) {
      stage(s_q, a.queries + q0 * a.dim_padded + k0, a.dim_padded);
      stage(s_t, a.train + j0 * a.dim_padded + k0, a.dim_padded);
      __syncthreads();
#pragma unroll
      for (int kk = 0; kk < kTcDims; kk += 32) {
        // A (16 x 32, row-major): rows group / group + 8, bytes 4*quad.. and 16 + 4*quad..
        const int8_t* qa = s_q + rows[0] * kRowStride + kk + 4 * quad;
        const unsigned frag_a[4] = {load_u32(qa), load_u32(qa + 8 * kRowStride), load_u32(qa + 16),
                                    load_u32(qa + 8 * kRowStride + 16)};
#pragma unroll
        for (int nt = 0; nt < 8; ++nt) {
          // B (32 x 8, column-major = training rows): column group, the same byte offsets
          const int8_t* tb = s_t + (nt * 8 + group) * kRowStride + kk + 4 * quad;
          mma_s8(acc[nt], frag_a, load_u32(tb), load_u32(tb + 16));
        }
      }
      __syncthreads();
    }
    // C (16 x 8): acc[nt][0..1] row group, columns 2*quad + {0,1}; acc[nt][2..3] row group + 8.
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int h = e >> 1;
        const int64_t j = j0 + nt * 8 + 2 * quad + (e & 1);
        if (j >= a.m_valid) continue;
        const uint32_t orig = a.t_orig[j];
        if (orig == q_skip[h]) continue;
        const int32_t d2 = q_norm[h] + a.t_norm[j] - 2 * acc[nt][e];  // exact: |d2| < 2^31
        const unsigned long long key = (static_cast<unsigned long long>(static_cast<uint32_t>(d2)) << 32) | orig;
        const bool same = a.t_class[j] == q_class[h];
        best_same[h] = min(best_same[h], same ? key : ~0ull);
        best_other[h] = min(best_other[h], same ? ~0ull : key);
      }
  }
#pragma unroll
  for (int h = 0; h < 2; ++h)
#pragma unroll
    for (int cat = 0; cat < 2; ++cat) {
      unsigned long long v = cat == 0 ? best_same[h] : best_other[h];
      v = min(v, __shfl_xor_sync(0xffffffffu, v, 1));
      v = min(v, __shfl_xor_sync(0xffffffffu, v, 2));
      const int64_t i = q0 + rows[h];
      if (quad == 0 && i < a.n && v != ~0ull) atomicMin(cat == 0 ? a.key_same + i : a.key_other + i, v);
    }
}

void launch(const TensorCoreArgs& args, int sm_count) {
  const int64_t query_blocks = (args.n + kTcRows - 1) / kTcRows;
  const int64_t train_tiles = (args.m_valid + kTcRows - 1) / kTcRows;
  // Enough blocks for ~4 per multiprocessor: split the training tiles when queries are few.
  const int64_t splits = std::clamp<int64_t>((4 * sm_count + query_blocks - 1) / query_blocks, 1, std::min<int64_t>(train_tiles, 65535));
  const dim3 grid(static_cast<unsigned>(query_blocks), static_cast<unsigned>(splits));
  u8_l2_kernel<<<grid, kWarps * 32>>>(args);
}

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

}  // namespace

void search_u8_l2_tensor_core(const cpu::TrainLayout& t, const uint8_t* queries, int64_t n, const int32_t* query_class,
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
    if (one_chunk) {  // the cached device copy is shared by every thread searching this layout
      std::lock_guard<std::mutex> lock(t.cuda_cache_mutex);
      if (!t.cuda_cache) t.cuda_cache = std::make_shared<TensorCoreTrainChunk>(make_train_chunk(t, begin, count, dp));
      chunk = std::static_pointer_cast<TensorCoreTrainChunk>(t.cuda_cache);
    } else {
      chunk = std::make_shared<TensorCoreTrainChunk>(make_train_chunk(t, begin, count, dp));
    }
    args.train = chunk->rows.get();
    args.t_norm = chunk->norm.get();
    args.t_class = chunk->cls.get();
    args.t_orig = chunk->orig.get();
    args.m_valid = chunk->count;
    KernelTimer timer;
    launch(args, sm_count);
    check(cudaGetLastError(), "tensor-core kernel launch");
    kernel_ms += timer.stop();
  }
  g_last_kernel_ms.store(kernel_ms);

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

}  // namespace nnm::cuda
