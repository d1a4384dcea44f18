// Internal interface between the CUDA dispatcher (cuda_backend.cu), the uint8-l2 streaming driver
// (u8_l2_driver.cu) and its kernel (u8_l2_tensor_core.cu).
#pragma once

#include <cstdint>

#include "../cpu/scan_driver.h"
#include "../cpu/train_layout.h"
#include "cuda_api.h"
#include "cuda_backend.h"

namespace nnm::NNM_CUDA_NS {

// uint8 l2 on the integer tensor cores. Inputs are shifted by -128 (|x - y|^2 is unchanged) so they
// are int8; dot products accumulate exactly in int32 for dims <= kMaxTensorCoreDim.
constexpr int64_t kMaxTensorCoreDim = 32767;
constexpr int kTcRows = 64;    // queries per block and training points per tile
constexpr int kTcDims = 128;   // dims per shared-memory stage; rows are padded to a multiple of it

struct TensorCoreArgs {
  const int8_t* queries;     // (n_pad, dim_padded) q - 128, zero padded rows and dims
  const int32_t* q_norm;     // (n_pad) sum (q - 128)^2
  const int32_t* q_class;    // (n_pad) dense class id, -1 for absent classes and padding
  const uint32_t* q_skip;    // (n_pad) original training index to ignore, 0xffffffff for none
  const int8_t* train;       // (m_rows, dim_padded) t - 128 of one chunk, sorted by class
  const int32_t* t_norm;     // (m_rows)
  const int32_t* t_class;    // (m_rows)
  const uint32_t* t_orig;    // (m_rows) original index
  int64_t n, m_valid, dim_padded;  // m_valid <= m_rows (a multiple of kTcRows)
  unsigned long long* key_same;    // (n) running min of (d^2 << 32 | original index)
  unsigned long long* key_other;   // (n)
};

// Queues the tensor-core kernel for one training chunk on `stream`; sm_count sizes the grid.
void launch_u8_l2(const TensorCoreArgs& args, int sm_count, cudaStream_t stream);

// The whole uint8-l2 search for a layout with dim <= kMaxTensorCoreDim: queries (n, dim) uint8; the
// training points resident on the device when they fit, else streamed in chunks; cpu::search's outputs.
void search_u8_l2_tensor_core(const cpu::TrainLayout& train, const uint8_t* queries, int64_t n,
                              const int32_t* query_class, const int64_t* skip_index, cpu::SearchOutput out);

// Records what the running search did (cuda_backend.cu; read back by last_search_stats).
void record_search_stats(const SearchStats& stats);

}  // namespace nnm::NNM_CUDA_NS
