// uint8 l2 nearest same-class / other-class search on the integer tensor cores (mma.sync
// m16n8k32 s8, sm_80+). One block: 64 queries x a strided set of 64-point training tiles; 4 warps,
// each 16 queries x 64 points (8 n-tiles). Never writes distances: each thread keeps, for its two
// query rows, the running minimum key (d^2 << 32 | original index) per same/other class, reduced
// over the 4 threads of a quad and merged with atomicMin. A min under that total order does not
// depend on block order or on how the training set was chunked, and ties go to the lowest index.
// Also compiled for the host against csrc/cuda/emulation (see cuda_api.h).
#include <algorithm>

#include "cuda_api.h"
#include "kernels.cuh"

namespace nnm::NNM_CUDA_NS {
namespace {

constexpr int kWarps = 4;
constexpr int kRowStride = kTcDims + 16;  // shared rows padded: 8 fragment rows hit 8 bank groups

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
          mma_m16n8k32_s8(acc[nt], frag_a, load_u32(tb), load_u32(tb + 16));
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

}  // namespace

void launch_u8_l2(const TensorCoreArgs& args, int sm_count, cudaStream_t stream) {
  const int64_t query_blocks = (args.n + kTcRows - 1) / kTcRows;
  const int64_t train_tiles = (args.m_valid + kTcRows - 1) / kTcRows;
  // Enough blocks for ~4 per multiprocessor: split the training tiles when queries are few.
  const int64_t splits = std::clamp<int64_t>((4 * sm_count + query_blocks - 1) / query_blocks, 1, std::min<int64_t>(train_tiles, 65535));
  const dim3 grid(static_cast<unsigned>(query_blocks), static_cast<unsigned>(splits));
  launch_kernel(u8_l2_kernel, grid, dim3(kWarps * 32), stream, args);
}

}  // namespace nnm::NNM_CUDA_NS
