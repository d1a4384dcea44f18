// Emulated warp collectives: __shfl_xor_sync and mma.sync m16n8k32 s8. The mma assembles the
// warp's A (16x32), B (32x8) and C (16x8) from the lanes' fragments using the PTX ISA's tables
// ("Matrix Fragments for mma.m16n8k32", .s8/.u8 multiplicands, .s32 accumulators), multiplies, and
// hands each lane its D fragment by the same table. The tables are written as the ISA states them
// (lane and element number -> row and column), never inverted by hand, so a kernel that builds its
// fragments differently gets different numbers, as it would on the hardware.
//
// NNMARGIN_CUDA_EMULATED_BUG plants a fragment-index bug in these tables (a_regs, b_k, c_col), so
// the tests can show that a wrong fragment index makes them fail.
#include <cstdlib>
#include <cstring>
#include <string>

#include "emulation.h"
#include "scheduler.h"

namespace nnm::cuda_emulated {
namespace {

enum Kind { kShfl32 = 1, kShfl64 = 2, kMma = 3 };

void shuffle(WarpExchange& ex) {
  for (int l = 0; l < kWarpSize; ++l) {
    const int src = static_cast<int>(ex.in[l][2]) < kWarpSize ? static_cast<int>(ex.in[l][2]) : l;
    ex.out[l][0] = ex.in[src][0];
    ex.out[l][1] = ex.in[src][1];
  }
}

uint64_t exchange_xor(int kind, unsigned mask, uint64_t value, int lane_mask) {
  int lane = 0;
  WarpExchange& ex = warp_exchange(&lane);
  ex.in[lane][0] = static_cast<uint32_t>(value);
  ex.in[lane][1] = static_cast<uint32_t>(value >> 32);
  ex.in[lane][2] = static_cast<uint32_t>(lane ^ lane_mask);
  warp_collective(kind, mask, &shuffle);
  return ex.out[lane][0] | static_cast<uint64_t>(ex.out[lane][1]) << 32;
}

int8_t byte_of(uint32_t reg, int i) { return static_cast<int8_t>(static_cast<uint8_t>(reg >> (8 * i))); }

std::string planted_bug() {
  const char* bug = std::getenv("NNMARGIN_CUDA_EMULATED_BUG");
  return bug ? bug : "";
}

// PTX ISA m16n8k32, .s8 A fragment: lane (groupID = lane >> 2, threadID_in_group = lane % 4),
// element i = 0..15 (four per .b32 register a0..a3, low byte first).
void a_position(int lane, int i, const std::string& bug, int* row, int* col) {
  const int g = lane >> 2, t = lane % 4;
  if (bug == "a_regs" && i >= 4 && i < 12) i = i < 8 ? i + 4 : i - 4;  // a1 and a2 exchanged
  *row = (i < 4 || (i >= 8 && i < 12)) ? g : g + 8;
  *col = t * 4 + (i & 3) + (i >= 8 ? 16 : 0);
}

// B fragment: element i = 0..7 (registers b0, b1).
void b_position(int lane, int i, const std::string& bug, int* row, int* col) {
  const int g = lane >> 2, t = lane % 4;
  *row = t * 4 + (i & 3) + (i >= 4 ? (bug == "b_k" ? 8 : 16) : 0);
  *col = g;
}

// C / D fragment: element i = 0..3 (registers c0..c3).
void c_position(int lane, int i, const std::string& bug, int* row, int* col) {
  const int g = lane >> 2, t = lane % 4;
  *row = i < 2 ? g : g + 8;
  *col = bug == "c_col" ? t + 4 * (i & 1) : t * 2 + (i & 1);
}

void mma(WarpExchange& ex) {
  const std::string bug = planted_bug();
  int8_t a[16][32] = {}, b[32][8] = {};
  uint32_t c[16][8] = {};
  int row = 0, col = 0;
  for (int lane = 0; lane < kWarpSize; ++lane) {
    for (int i = 0; i < 16; ++i) {
      a_position(lane, i, bug, &row, &col);
      a[row][col] = byte_of(ex.in[lane][i / 4], i % 4);
    }
    for (int i = 0; i < 8; ++i) {
      b_position(lane, i, bug, &row, &col);
      b[row][col] = byte_of(ex.in[lane][4 + i / 4], i % 4);
    }
    for (int i = 0; i < 4; ++i) {
      c_position(lane, i, bug, &row, &col);
      c[row][col] = ex.in[lane][6 + i];
    }
  }
  // .s32 accumulation without .satfinite wraps modulo 2^32: unsigned arithmetic does the same.
  for (int r = 0; r < 16; ++r)
    for (int n = 0; n < 8; ++n) {
      uint32_t sum = c[r][n];
      for (int k = 0; k < 32; ++k) sum += static_cast<uint32_t>(static_cast<int32_t>(a[r][k]) * b[k][n]);
      c[r][n] = sum;
    }
  for (int lane = 0; lane < kWarpSize; ++lane)
    for (int i = 0; i < 4; ++i) {
      c_position(lane, i, bug, &row, &col);
      ex.out[lane][i] = c[row][col];
    }
}

}  // namespace

unsigned shfl_xor_u32(unsigned mask, unsigned value, int lane_mask) {
  return static_cast<unsigned>(exchange_xor(kShfl32, mask, value, lane_mask));
}

unsigned long long shfl_xor_u64(unsigned mask, unsigned long long value, int lane_mask) {
  return exchange_xor(kShfl64, mask, value, lane_mask);
}

void mma_m16n8k32_s8(int (&acc)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  int lane = 0;
  WarpExchange& ex = warp_exchange(&lane);
  for (int r = 0; r < 4; ++r) ex.in[lane][r] = a[r];
  ex.in[lane][4] = b0;
  ex.in[lane][5] = b1;
  for (int r = 0; r < 4; ++r) ex.in[lane][6 + r] = static_cast<uint32_t>(acc[r]);
  warp_collective(kMma, 0xffffffffu, &mma);
  for (int r = 0; r < 4; ++r) acc[r] = static_cast<int>(ex.out[lane][r]);
}

}  // namespace nnm::cuda_emulated
