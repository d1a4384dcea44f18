#include <stdexcept>

#include "cuda_backend.h"

namespace nnm::cuda {

bool built_with_cuda() { return false; }
DeviceStatus device_status() { return {0, "nnmargin was built without CUDA"}; }
SearchStats last_search_stats() { return {}; }

void search(const cpu::TrainLayout&, const void*, int64_t, const int32_t*, const int64_t*, cpu::SearchOutput) {
  throw std::runtime_error("nnmargin was built without CUDA (no CUDA compiler found, or NNMARGIN_CUDA=OFF)");
}

}  // namespace nnm::cuda
