// Types shared by the scan driver and every instruction-set variant of the scan kernels.
//
// The kernels never see the N x M distance matrix: they compute one tile of kTileQ queries x kTileT
// training points at a time, fold it into a running minimum per (query, same/other class), and hand
// the few entries that could still be the true minimum to a CandidateSink. The driver re-checks those
// candidates exactly (float64 or integer arithmetic) and breaks ties by the lowest training index.
//
// Values travel as unsigned "keys" whose integer order equals the distance order:
//   uint8 data  -> uint32 key = exact integer distance (squared for l2)
//   float32     -> uint32 key = bit pattern of the non-negative float32 screened value
//   float64     -> uint64 key = bit pattern of the non-negative float64 screened value
// All-ones is the "nothing seen yet" sentinel; it is larger than any finite or infinite value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nnm::cpu {

constexpr int kTileQ = 8;    // queries per tile
constexpr int kTileT = 48;   // training points per tile (three 16-lane AVX-512 vectors)
constexpr int kGroupT = 16;  // training points interleaved per group in the packed uint8-l2 layout
constexpr int64_t kMaxJobQueries = 256;  // queries per ScanJob at most (kernels size buffers by it)
constexpr int32_t kNoClass = -1;  // query label that no training point has
constexpr int kSadGroup = 8;  // training points interleaved per group in the packed uint8-l1 layout
constexpr int64_t kAbandonBlock = 64;  // dims per early-abandoning step of the uint8 l1 / l-inf kernels

// Byte offset of (sorted position pos, dim k) in the packed uint8 layouts of train_layout.cpp; the
// CUDA backend reads the same layouts, so the formulas live here once. dp = dim_padded.
#ifdef __CUDACC__
#define NNM_HOST_DEVICE __host__ __device__
#else
#define NNM_HOST_DEVICE
#endif
// uint8 l2: groups of kGroupT points, [dp / 4][kGroupT][4] (one 64-byte vector: 4 dims of 16 points).
NNM_HOST_DEVICE inline int64_t u8_l2_offset(int64_t pos, int64_t k, int64_t dp) {
  return (pos / kGroupT) * kGroupT * dp + (k / 4) * kGroupT * 4 + (pos % kGroupT) * 4 + k % 4;
}
// uint8 l1: groups of kSadGroup points, [dp / 8][kSadGroup][8] (one 64-byte vector: 8 dims of 8
// points, so psadbw leaves each point's sum in its own 64-bit lane).
NNM_HOST_DEVICE inline int64_t u8_l1_offset(int64_t pos, int64_t k, int64_t dp) {
  return (pos / kSadGroup) * kSadGroup * dp + (k / 8) * kSadGroup * 8 + (pos % kSadGroup) * 8 + k % 8;
}

enum Metric : int { kL2 = 0, kL1 = 1, kLinf = 2 };
enum DType : int { kU8 = 0, kF32 = 1, kF64 = 2 };

struct CandidateSink;
// Called by a kernel for a training point (sorted position `pos`) whose screened key is within the
// candidate threshold of query `query` (index local to the job) in `category` (0 same, 1 other class;
// for top-K jobs, the point's class id).
using PushFn = void (*)(CandidateSink* sink, int64_t query, int category, int64_t pos, uint64_t key);
struct CandidateSink {
  PushFn push;
};

// One kernel call: queries [0, n_q) against sorted training positions [t_begin, t_end).
// t_begin and t_end are multiples of kTileT (the training layout is padded to that).
struct ScanJob {
  const void* queries;      // (round_up(n_q, kTileQ), dim_padded) row-major, zero padded (pack_queries)
  int64_t n_q;
  const int32_t* q_class;   // (n_q) dense class id, kNoClass when absent from the training set
  const int64_t* q_skip;    // (n_q) sorted training position to ignore (leave-one-out), or -1
  const int32_t* q_aux;     // (n_q) uint8 l2 only: |q|^2 - 256 * sum(q), modulo 2^32
  const void* train;        // training layout for (dtype, metric), see train_layout.h
  const int32_t* t_class;   // (m_padded) dense class id per sorted position
  const uint32_t* t_aux;    // (m_padded) uint8 l2 only: |t|^2
  int64_t dim_padded;
  int64_t t_begin, t_end;
  int64_t m_valid;          // positions >= m_valid are padding
  // A screened value v is a candidate while v <= best * rho + alpha (rho = 1, alpha = 0 when exact).
  double rho, alpha;
  uint64_t* best;           // (n_q, 2) running minimum key: [2i] same class, [2i + 1] other class
  CandidateSink* sink;      // float keys: where candidates within the threshold go
  // Exact (uint8) keys need no candidates: the kernel keeps, beside each minimum, the lowest original
  // index attaining it, so ties (frequent in l-inf) cost a compare instead of a push.
  const int64_t* t_orig;    // (m) original index per sorted position
  int64_t* best_orig;       // (n_q, 2) original index of the point holding best, -1 while none
  // Float l2 in GEMM form (scan_kernels.cpp, "GEMM form"); left null by every other job. With
  // t_panel set, best[] holds the bits of a float64 upper bound of the true minimum (+inf at first)
  // and pushed keys are the bits of a float64 lower bound of the pair's true value.
  const void* t_panel;      // training points in panels [m_padded / kTileT][dim_padded][kTileT]
  const void* t_sq;         // (m_padded) |t|^2 in the input precision (float64 sum, rounded)
  const double* t_len;      // (m_padded) upper bound of ||t||
  const double* tile_len;   // (m_padded / kTileT) max of t_len over each tile
  const void* q_sq;         // (n_q) |x|^2 in the input precision
  const double* q_len;      // (n_q) upper bound of ||x||
  double gemm_gamma;        // gamma_{dim_padded + 4} of the input precision, rounded up
  double gemm_abs;          // absolute slack for underflow
  double direct_gamma;      // fallback tiles (direct differences): relative gamma ...
  double direct_alpha;      // ... and absolute slack, as screening_slack
  // Per-class top-K search (topk_driver.cpp); left null by every other job. The kernel pushes every
  // point whose key is <= class_thr[i * n_classes + its class] (category = the class id); the sink
  // keeps the K best per (query, class) and lowers the threshold as it fills.
  const uint64_t* class_thr;  // (n_q, n_classes) screening threshold keys, all-ones while not full
  int32_t n_classes;
  // uint8 l1 (nearest, top-K) and l-inf (nearest) searches (scan_kernels.cpp, "early abandoning"), or null
  // (memory order): the order in which the kernels visit the dim_padded / kAbandonBlock blocks.
  const int32_t* block_order;
};

using ScanFn = void (*)(const ScanJob& job);

// Same-class pivots of the bisector bound, at most; Python reads it as _core.MAX_PIVOTS.
constexpr int kMaxPivots = 3;

// Bisector lower bound of the robust radius (see bisector_driver.cpp). For each query x with
// same-class pivots p_k and every other-class training point t:
//   bound(x, t) = max_k (|x - t|^2 - |x - p_k|^2) / (2 ||t - p_k||_dual)
// and the job keeps min over t of bound(x, t), rounded down, with the position attaining it.
struct BisectorJob {
  ScanJob x;                      // queries vs training points in the l2 layout (defines t range, classes)
  ScanJob pivot[kMaxPivots];      // pivot rows (as queries) vs training points in the dual-norm layout
  int n_pivots;
  const double* pivot_sq_dist;    // (n_q, n_pivots) |x - p_k|^2, already rounded up
  double x_lo;                    // true |x - t|^2 >= screened value * x_lo (1 when exact)
  double pivot_hi;                // true ||t - p|| <= screened value * pivot_hi (1 when exact)
  const int64_t* t_orig;          // (m) original index per sorted position: ties go to the lowest
  double* best;                   // (n_q) running minimum of the bound, +inf initially
  int64_t* best_pos;              // (n_q) sorted position attaining it, -1 initially
};
using BisectFn = void (*)(const BisectorJob& job);

// One instruction-set variant: scan[dtype][metric] (nearest same/other), topk[dtype][metric] (per-class
// candidates for the K nearest, ScanJob::class_thr), bisect[dtype][dual norm metric].
struct KernelTable {
  const char* isa;
  ScanFn scan[3][3];
  ScanFn topk[3][3];
  BisectFn bisect[3][3];
  bool u8_l2_query_words;  // its uint8 l2 kernels read the queries as int16 words (pack_queries)
};

// Defined once per instruction set in scan_kernels.cpp (compiled with that set's flags).
// Also once per instruction set (peak_probe.cpp): the inner sequences each variant's kernels rely
// on, and their per-core throughput in GOP/s (2 ops per pair-dim), run from registers.
#define NNM_VARIANT_API(isa)                                              \
  namespace isa {                                                         \
  const KernelTable& kernel_table();                                      \
  std::vector<std::string> peak_sequences();                              \
  double peak_probe(const std::string& sequence, double seconds);         \
  }
NNM_VARIANT_API(generic)
NNM_VARIANT_API(avx2)
NNM_VARIANT_API(avx2_vnni)
NNM_VARIANT_API(avx512)
NNM_VARIANT_API(avx512_vnni)
#undef NNM_VARIANT_API

}  // namespace nnm::cpu
