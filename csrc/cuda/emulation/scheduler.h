// The emulated block scheduler's interface to the built-ins that need more than one thread: block
// barriers and warp collectives (shuffles, mma.sync). See scheduler.cpp.
#pragma once

#include <cstdint>
#include <string>

namespace nnm::cuda_emulated {

constexpr int kWarpSize = 32;

// What the lanes of one warp exchange in a collective: each lane writes its inputs (`in`), the
// last lane to arrive runs the collective's action over all lanes, then each lane reads its `out`.
struct WarpExchange {
  int kind[kWarpSize];
  uint32_t in[kWarpSize][12];
  uint32_t out[kWarpSize][4];
};

// The running thread's lane and its warp's exchange area.
WarpExchange& warp_exchange(int* lane);

// Every lane of the warp arrives with the same `kind` (else the emulation reports a divergent
// collective); the last one runs action(exchange) before any lane continues.
void warp_collective(int kind, unsigned mask, void (*action)(WarpExchange&));

// Ends the emulated launch with an error (thrown by run_grid on the launching thread).
[[noreturn]] void emulation_error(const std::string& message);

}  // namespace nnm::cuda_emulated
