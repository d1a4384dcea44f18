// CUDA backend entry points. nnm::cuda is compiled from cuda_backend.cu when a CUDA compiler is
// found, otherwise from no_cuda.cpp, so the dispatcher calls the same functions either way.
// nnm::cuda_emulated is the same backend source compiled for the host against csrc/cuda/emulation
// (always built): the tests run the real kernels through it on machines without a GPU.
#pragma once

#include <cstdint>
#include <string>

#include "../cpu/scan_driver.h"
#include "../cpu/train_layout.h"

namespace nnm::cuda {

// Devices the kernels can run on (compute capability >= 8.0: they use sm_80 tensor-core
// instructions), and why there are none.
struct DeviceStatus {
  int usable = 0;
  std::string reason;  // empty when usable > 0, else what a user should know (no driver, old driver, ...)
};

// What the last search on this backend did, for tests and benchmarks.
struct SearchStats {
  double device_ms = 0.0;  // device time of the search loop (CUDA events): kernels, and copies when streaming
  int64_t chunks = 0;      // training chunks searched (1 when the set is resident on the device)
  bool resident = false;   // the training set's cached device copy was used (or made) by this search
};

bool built_with_cuda();
DeviceStatus device_status();  // never throws

// Same contract and results as cpu::search (exact values, lowest index on ties). Throws
// std::runtime_error when no usable device is present.
void search(const cpu::TrainLayout& train, const void* queries, int64_t n, const int32_t* query_class,
            const int64_t* skip_index, cpu::SearchOutput out);

SearchStats last_search_stats();

}  // namespace nnm::cuda

namespace nnm::cuda_emulated {

using cuda::DeviceStatus;
using cuda::SearchStats;

DeviceStatus device_status();
void search(const cpu::TrainLayout& train, const void* queries, int64_t n, const int32_t* query_class,
            const int64_t* skip_index, cpu::SearchOutput out);
SearchStats last_search_stats();

}  // namespace nnm::cuda_emulated
