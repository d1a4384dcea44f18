// Small CUDA helpers shared by the backend's translation units: error checks, owned device and
// pinned host buffers, streams, event timers. Real or emulated runtime: see cuda_api.h.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_api.h"

namespace nnm::NNM_CUDA_NS {

inline void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(err));
}

// Owns one device allocation.
template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n) : size_(n) {
    check(cudaMalloc(reinterpret_cast<void**>(&ptr_), (n > 0 ? n : 1) * sizeof(T)), "cudaMalloc");
  }
  DeviceArray(const T* host, size_t n) : DeviceArray(n) {
    if (n) check(cudaMemcpy(ptr_, host, n * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy to device");
  }
  ~DeviceArray() { cudaFree(ptr_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  T* get() const { return ptr_; }
  size_t size() const { return size_; }

 private:
  T* ptr_ = nullptr;
  size_t size_ = 0;
};

template <class T>
inline DeviceArray<T> upload(const std::vector<T>& host) { return DeviceArray<T>(host.data(), host.size()); }

// Owns one page-locked host allocation (what cudaMemcpyAsync needs to overlap with kernels).
class PinnedBuffer {
 public:
  explicit PinnedBuffer(size_t bytes) { check(cudaMallocHost(&ptr_, bytes > 0 ? bytes : 1), "cudaMallocHost"); }
  ~PinnedBuffer() { cudaFreeHost(ptr_); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  uint8_t* get() const { return static_cast<uint8_t*>(ptr_); }

 private:
  void* ptr_ = nullptr;
};

class Stream {
 public:
  Stream() { check(cudaStreamCreate(&stream_), "cudaStreamCreate"); }
  ~Stream() { cudaStreamDestroy(stream_); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

// Device time between construction and stop(), from events on the legacy default stream, which
// waits for the work of every other (blocking) stream: it covers all streams of a search.
class KernelTimer {
 public:
  KernelTimer() {
    check(cudaEventCreate(&start_), "cudaEventCreate");
    check(cudaEventCreate(&stop_), "cudaEventCreate");
    check(cudaEventRecord(start_, nullptr), "cudaEventRecord");
  }
  ~KernelTimer() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  double stop() {
    check(cudaEventRecord(stop_, nullptr), "cudaEventRecord");
    check(cudaEventSynchronize(stop_), "cudaEventSynchronize");
    float ms = 0.f;
    check(cudaEventElapsedTime(&ms, start_, stop_), "cudaEventElapsedTime");
    return ms;
  }

 private:
  cudaEvent_t start_, stop_;
};

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

}  // namespace nnm::NNM_CUDA_NS
