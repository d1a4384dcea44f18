// The one switch between the real CUDA toolchain and the host emulation (emulation/emulation.h).
// Every CUDA source of the backend includes this instead of <cuda_runtime.h> and opens
// `namespace nnm::NNM_CUDA_NS`, so the same source builds twice: as nnm::cuda with nvcc, and as
// nnm::cuda_emulated with the host compiler (NNM_CUDA_EMULATION defined), for the emulation tests.
#pragma once

#ifdef NNM_CUDA_EMULATION
#include "emulation/emulation.h"
#define NNM_CUDA_NS cuda_emulated
#else
#include <cuda_runtime.h>

#include <utility>
#define NNM_CUDA_NS cuda

namespace nnm::cuda {

// The only <<<...>>> of the backend: the emulation replaces this function, not the call sites.
template <class... Params, class... Args>
void launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t stream, Args&&... args) {
  kernel<<<grid, block, 0, stream>>>(std::forward<Args>(args)...);
}

// mma.sync m16n8k32 s8 x s8 -> s32 (sm_80+): D = A (16x32, row) x B (32x8, col) + C, in place on
// acc. Fragment layouts as in the PTX ISA; emulation/mma.cpp implements the same from its tables.
__device__ __forceinline__ void mma_m16n8k32_s8(int (&acc)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+r"(acc[0]), "+r"(acc[1]), "+r"(acc[2]), "+r"(acc[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

}  // namespace nnm::cuda
#endif
