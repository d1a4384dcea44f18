// Emulated CUDA blocks: each thread of a block is a fiber (ucontext) on the launching OS thread.
// A fiber runs until it reaches a barrier or a warp collective, then hands over to the next fiber
// that can run; the last thread to arrive completes the barrier and carries on. Switching only at
// those points is exact for race-free CUDA code: between barriers the threads of a block may run in
// any order, and this is one such order. Shuffles and mma.sync are collectives of the 32 lanes of
// a warp, so they are barriers of the warp. NNMARGIN_CUDA_EMULATED_ORDER=reverse hands over in the
// opposite order (last thread first): a race between threads of a block, such as a missing
// __syncthreads, tends to change the results under one of the two orders.
#include <ucontext.h>

#include <cstdlib>
#include <cstring>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "emulation.h"
#include "scheduler.h"

namespace nnm::cuda_emulated {

thread_local uint3 threadIdx, blockIdx;
thread_local dim3 blockDim, gridDim;

namespace {

constexpr size_t kStackBytes = 128 * 1024;  // the kernels' frames are a few KB; room for -O0 builds

struct Barrier {
  int arrived = 0;
  unsigned generation = 0;
};

struct Fiber {
  ucontext_t context;
  uint3 index;
  bool done = false;
  const Barrier* waiting = nullptr;  // the barrier this fiber waits at, or nullptr
  unsigned generation = 0;           // its generation when the fiber arrived
};

class Block {
 public:
  explicit Block(dim3 dim)
      : threads_(static_cast<int>(dim.x * dim.y * dim.z)), warps_((threads_ + kWarpSize - 1) / kWarpSize),
        fibers_(threads_), warp_barriers_(warps_), exchange_(warps_),
        stacks_(new char[kStackBytes * static_cast<size_t>(threads_)]) {
    const char* order = std::getenv("NNMARGIN_CUDA_EMULATED_ORDER");
    step_ = order && std::strcmp(order, "reverse") == 0 ? threads_ - 1 : 1;
    for (int t = 0; t < threads_; ++t)
      fibers_[t].index = uint3{t % dim.x, (t / dim.x) % dim.y, t / (dim.x * dim.y)};
  }

  // Runs body() as every thread of the block; throws if a thread failed or a barrier never completed.
  void run(const std::function<void()>& body) {
    body_ = &body;
    live_ = threads_;
    block_barrier_ = Barrier{};
    for (auto& b : warp_barriers_) b = Barrier{};
    for (int t = 0; t < threads_; ++t) {
      Fiber& f = fibers_[t];
      f.done = false;
      f.waiting = nullptr;
      getcontext(&f.context);
      f.context.uc_stack.ss_sp = stacks_.get() + kStackBytes * static_cast<size_t>(t);
      f.context.uc_stack.ss_size = kStackBytes;
      f.context.uc_link = nullptr;  // a finished fiber switches away itself (finish())
      makecontext(&f.context, &Block::entry, 0);
    }
    current_ = step_ == 1 ? 0 : threads_ - 1;
    threadIdx = fibers_[current_].index;
    swapcontext(&main_, &fibers_[current_].context);
    if (!error_.empty()) throw std::runtime_error("emulated CUDA kernel: " + error_);
    if (live_ > 0)
      throw std::runtime_error("emulated CUDA kernel: " + std::to_string(live_) +
                               " threads wait at a barrier that can never complete (a __syncthreads or "
                               "warp collective not reached by every thread)");
  }

  void sync_block() {
    if (++block_barrier_.arrived == live_) return release(block_barrier_);
    wait(block_barrier_);
  }

  void warp_collective(int kind, unsigned mask, void (*action)(WarpExchange&)) {
    const int warp = current_ / kWarpSize, lanes = lanes_in(warp);
    if (mask != 0xffffffffu || lanes != kWarpSize) fail("warp collectives need all 32 lanes (full mask, full warp)");
    WarpExchange& ex = exchange_[warp];
    ex.kind[current_ % kWarpSize] = kind;
    Barrier& b = warp_barriers_[warp];
    for (int l = 0; l < lanes; ++l)
      if (fibers_[warp * kWarpSize + l].done) fail("a warp collective after a lane of its warp has exited");
    if (++b.arrived < lanes) return wait(b);
    for (int l = 1; l < lanes; ++l)
      if (ex.kind[l] != ex.kind[0]) fail("lanes of one warp reached different collectives");
    action(ex);
    release(b);
  }

  WarpExchange& exchange(int* lane) {
    *lane = current_ % kWarpSize;
    return exchange_[current_ / kWarpSize];
  }

  [[noreturn]] void fail(const std::string& message) {
    if (error_.empty()) error_ = message;
    swapcontext(&fibers_[current_].context, &main_);  // never resumed: run() throws
    std::abort();
  }

  static thread_local Block* active;

 private:
  int lanes_in(int warp) const { return std::min(kWarpSize, threads_ - warp * kWarpSize); }

  static void entry() { active->start_fiber(); }

  void start_fiber() {
    body_->operator()();
    fibers_[current_].done = true;
    --live_;
    const int warp = current_ / kWarpSize;
    if (warp_barriers_[warp].arrived > 0) fail("a lane exited while its warp waits in a collective");
    if (block_barrier_.arrived > 0 && block_barrier_.arrived == live_) release(block_barrier_);
    switch_away();
    std::abort();  // a finished fiber is never resumed
  }

  void release(Barrier& b) {
    b.arrived = 0;
    ++b.generation;
  }

  void wait(Barrier& b) {
    Fiber& me = fibers_[current_];
    me.waiting = &b;
    me.generation = b.generation;
    switch_away();
  }

  bool runnable(Fiber& f) {
    if (f.done) return false;
    if (f.waiting && f.waiting->generation == f.generation) return false;
    f.waiting = nullptr;
    return true;
  }

  // Hands over to the next fiber that can run (round robin, in the chosen order), or back to run()
  // when none can.
  void switch_away() {
    const int me = current_;
    for (int step = 1; step <= threads_; ++step) {
      const int next = (me + step * step_) % threads_;
      if (!runnable(fibers_[next])) continue;
      if (next == me) return;
      current_ = next;
      threadIdx = fibers_[next].index;
      swapcontext(&fibers_[me].context, &fibers_[next].context);
      return;
    }
    swapcontext(&fibers_[me].context, &main_);
  }

  const int threads_, warps_;
  std::vector<Fiber> fibers_;
  std::vector<Barrier> warp_barriers_;
  std::vector<WarpExchange> exchange_;
  std::unique_ptr<char[]> stacks_;
  Barrier block_barrier_;
  ucontext_t main_;
  const std::function<void()>* body_ = nullptr;
  int live_ = 0, current_ = 0;
  int step_ = 1;  // +1 (forward) or threads_ - 1 (reverse) modulo threads_
  std::string error_;
};

thread_local Block* Block::active = nullptr;

Block& active_block() {
  if (!Block::active) throw std::logic_error("a CUDA device built-in was called outside an emulated kernel");
  return *Block::active;
}

}  // namespace

void __syncthreads() { active_block().sync_block(); }

WarpExchange& warp_exchange(int* lane) { return active_block().exchange(lane); }

void warp_collective(int kind, unsigned mask, void (*action)(WarpExchange&)) {
  active_block().warp_collective(kind, mask, action);
}

void emulation_error(const std::string& message) { active_block().fail(message); }

void run_grid(dim3 grid, dim3 block, const std::function<void()>& body) {
  const uint64_t threads = static_cast<uint64_t>(block.x) * block.y * block.z;
  if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
      grid.y > 65535 || grid.z > 65535)
    throw std::runtime_error("emulated CUDA launch: invalid configuration (grid " + std::to_string(grid.x) + "x" +
                             std::to_string(grid.y) + "x" + std::to_string(grid.z) + ", " + std::to_string(threads) +
                             " threads per block)");
  if (Block::active) throw std::logic_error("emulated kernels cannot launch kernels");
  Block runner(block);
  Block::active = &runner;
  gridDim = grid;
  blockDim = block;
  try {
    for (unsigned z = 0; z < grid.z; ++z)
      for (unsigned y = 0; y < grid.y; ++y)
        for (unsigned x = 0; x < grid.x; ++x) {
          blockIdx = uint3{x, y, z};
          runner.run(body);
        }
  } catch (...) {
    Block::active = nullptr;
    throw;
  }
  Block::active = nullptr;
}

}  // namespace nnm::cuda_emulated
