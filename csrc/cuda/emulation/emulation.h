// Host emulation of the part of the CUDA programming model that nnmargin's kernels use, so that the
// real kernel and driver sources (csrc/cuda/*.cu) compile as plain C++ and run on the CPU in CI.
// Included instead of <cuda_runtime.h> when NNM_CUDA_EMULATION is defined (see cuda_api.h).
//
// Model: the blocks of a launch run one after another on the calling thread; the threads of a block
// are fibers (fiber.h) switched only at barriers (__syncthreads) and warp collectives (shuffles,
// mma.sync), so a block's "shared" memory is a per-OS-thread static and needs no locking. A barrier
// or collective that cannot complete (divergent __syncthreads, a warp collective missing a lane)
// is reported as an error instead of hanging. Everything lives in nnm::cuda_emulated, the
// namespace the emulated backend is compiled into, so none of it clashes with the real runtime
// linked into the same module.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>

// CUDA qualifiers: no meaning on the host. Shared memory is one static per OS thread (the block
// running on it); aligned like the real declaration.
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static thread_local
#define __align__(n) __attribute__((aligned(n)))
#define CUDART_VERSION 13000

namespace nnm::cuda_emulated {

struct uint3 {
  unsigned x = 0, y = 0, z = 0;
};
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct __attribute__((aligned(16))) int4 {
  int x, y, z, w;
};

// Built-in indices of the running CUDA thread (set by the scheduler before each fiber resumes).
extern thread_local uint3 threadIdx, blockIdx;
extern thread_local dim3 blockDim, gridDim;

// --- device built-ins -------------------------------------------------------------------------
void __syncthreads();
unsigned shfl_xor_u32(unsigned mask, unsigned value, int lane_mask);
unsigned long long shfl_xor_u64(unsigned mask, unsigned long long value, int lane_mask);
inline int __shfl_xor_sync(unsigned mask, int v, int m) { return static_cast<int>(shfl_xor_u32(mask, static_cast<unsigned>(v), m)); }
inline unsigned __shfl_xor_sync(unsigned mask, unsigned v, int m) { return shfl_xor_u32(mask, v, m); }
inline unsigned long long __shfl_xor_sync(unsigned mask, unsigned long long v, int m) { return shfl_xor_u64(mask, v, m); }
inline float __shfl_xor_sync(unsigned mask, float v, int m) {
  unsigned u;
  std::memcpy(&u, &v, 4);
  u = shfl_xor_u32(mask, u, m);
  std::memcpy(&v, &u, 4);
  return v;
}

// Atomic for real (another Python thread may run another emulated search), though the blocks of
// one launch never overlap.
inline unsigned long long atomicMin(unsigned long long* address, unsigned long long value) {
  unsigned long long old = __atomic_load_n(address, __ATOMIC_RELAXED);
  while (value < old && !__atomic_compare_exchange_n(address, &old, value, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
  return old;
}

inline int min(int a, int b) { return a < b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }

// Correctly rounded float64 operations: plain host arithmetic, compiled without FP contraction
// (CMake sets -ffp-contract=off on the emulated sources).
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }

// mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32, from the PTX ISA's fragment tables (mma.cpp).
void mma_m16n8k32_s8(int (&acc)[4], const unsigned (&a)[4], unsigned b0, unsigned b1);

// --- runtime API (the subset the backend calls) -----------------------------------------------
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInsufficientDriver = 35,
  cudaErrorNoDevice = 100,
  cudaErrorLaunchFailure = 719,
};
enum cudaMemcpyKind { cudaMemcpyHostToDevice = 1, cudaMemcpyDeviceToHost = 2, cudaMemcpyDeviceToDevice = 3 };
enum cudaDeviceAttr {
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
};
struct cudaDeviceProp {
  char name[256];
  int major, minor, multiProcessorCount;
  size_t totalGlobalMem;
};
using cudaStream_t = struct EmulatedStream*;
using cudaEvent_t = struct EmulatedEvent*;

const char* cudaGetErrorString(cudaError_t err);
cudaError_t cudaGetLastError();
cudaError_t cudaDriverGetVersion(int* version);
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);
cudaError_t cudaMalloc(void** ptr, size_t bytes);
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMallocHost(void** ptr, size_t bytes);
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* dst, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream = nullptr);
cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t stop);

// Runs body() as every thread of every block of the grid (scheduler.cpp). Work queued on streams
// runs at once, in call order, so stream ordering itself is not emulated. Throws on a launch the
// hardware would refuse and on a barrier that can never complete.
void run_grid(dim3 grid, dim3 block, const std::function<void()>& body);

// What cuda_api.h's launch_kernel does in the emulation.
template <class... Params, class... Args>
void launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t, Args&&... args) {
  run_grid(grid, block, [&] { kernel(args...); });
}

}  // namespace nnm::cuda_emulated
