// Small CUDA helpers shared by the backend's translation units: error checks, owned device arrays,
// event timers.
#pragma once

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace nnm::cuda {

inline void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(err));
}

// Owns one device allocation.
template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n) : size_(n) { check(cudaMalloc(&ptr_, (n > 0 ? n : 1) * sizeof(T)), "cudaMalloc"); }
  DeviceArray(const T* host, size_t n) : DeviceArray(n) {
    if (n) check(cudaMemcpy(ptr_, host, n * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy to device");
  }
  ~DeviceArray() { cudaFree(ptr_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  DeviceArray(DeviceArray&& other) noexcept : ptr_(other.ptr_), size_(other.size_) { other.ptr_ = nullptr; }
  DeviceArray& operator=(DeviceArray&&) = delete;
  T* get() const { return ptr_; }
  size_t size() const { return size_; }

 private:
  T* ptr_ = nullptr;
  size_t size_ = 0;
};

template <class T>
inline DeviceArray<T> upload(const std::vector<T>& host) { return DeviceArray<T>(host.data(), host.size()); }

// Times the kernels between construction and stop() with CUDA events.
class KernelTimer {
 public:
  KernelTimer() {
    check(cudaEventCreate(&start_), "cudaEventCreate");
    check(cudaEventCreate(&stop_), "cudaEventCreate");
    check(cudaEventRecord(start_), "cudaEventRecord");
  }
  ~KernelTimer() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  double stop() {
    check(cudaEventRecord(stop_), "cudaEventRecord");
    check(cudaEventSynchronize(stop_), "cudaEventSynchronize");
    float ms = 0.f;
    check(cudaEventElapsedTime(&ms, start_, stop_), "cudaEventElapsedTime");
    return ms;
  }

 private:
  cudaEvent_t start_, stop_;
};

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

}  // namespace nnm::cuda
