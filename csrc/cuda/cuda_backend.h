// CUDA backend entry points. Compiled from cuda_backend.cu when a CUDA compiler is found, otherwise
// from no_cuda.cpp, so the dispatcher calls the same functions either way.
#pragma once

#include <cstdint>
#include <string>

#include "../cpu/scan_driver.h"
#include "../cpu/train_layout.h"

namespace nnm::cuda {

bool built_with_cuda();

// Number of usable CUDA devices; 0 without a build, a driver or a GPU (never throws).
int device_count();

// Same contract and results as cpu::search (exact values, lowest index on ties).
// Throws std::runtime_error when CUDA is unavailable.
void search(const cpu::TrainLayout& train, const void* queries, int64_t n, const int32_t* query_class,
            const int64_t* skip_index, cpu::SearchOutput out);

// Milliseconds the last search spent in its search kernels (CUDA events), for benchmarks.
double last_kernel_ms();

}  // namespace nnm::cuda
