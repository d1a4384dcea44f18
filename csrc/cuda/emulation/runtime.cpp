// Emulated CUDA runtime: one device whose memory is host memory. Copies and kernels run at once on
// the calling thread (streams only keep call order). The device's properties come from settings,
// read at every call, so tests can emulate other machines:
//   NNMARGIN_CUDA_EMULATED_DRIVER  driver CUDA version, e.g. 12040 (default 13000; 0 = no driver)
//   NNMARGIN_CUDA_EMULATED_CC      compute capability "major.minor" (default 9.0)
//   NNMARGIN_CUDA_EMULATED_SMS     multiprocessors (default 4)
//   NNMARGIN_CUDA_EMULATED_MEMORY  device memory in bytes (default 8 GiB); free = that - allocated
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include "emulation.h"

namespace nnm::cuda_emulated {

struct EmulatedStream {};
struct EmulatedEvent {
  std::chrono::steady_clock::time_point at;
};

namespace {

thread_local cudaError_t last_error = cudaSuccess;

cudaError_t fail(cudaError_t err) {
  last_error = err;
  return err;
}

long long setting(const char* name, long long fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoll(v, nullptr, 10) : fallback;
}

void compute_capability(int* major, int* minor) {
  const char* v = std::getenv("NNMARGIN_CUDA_EMULATED_CC");
  const std::string cc = v && *v ? v : "9.0";
  const size_t dot = cc.find('.');
  *major = std::atoi(cc.c_str());
  *minor = dot == std::string::npos ? 0 : std::atoi(cc.c_str() + dot + 1);
}

size_t device_memory() { return static_cast<size_t>(setting("NNMARGIN_CUDA_EMULATED_MEMORY", 8LL << 30)); }

// Device allocations, to emulate free memory and to refuse frees of unknown pointers.
std::mutex allocations_mutex;
std::map<void*, size_t> allocations;
size_t allocated_bytes = 0;

}  // namespace

const char* cudaGetErrorString(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    default: return "unspecified launch failure";
  }
}

cudaError_t cudaGetLastError() {
  const cudaError_t err = last_error;
  last_error = cudaSuccess;
  return err;
}

cudaError_t cudaDriverGetVersion(int* version) {
  *version = static_cast<int>(setting("NNMARGIN_CUDA_EMULATED_DRIVER", CUDART_VERSION));
  return cudaSuccess;
}

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 0;
  int driver = 0;
  cudaDriverGetVersion(&driver);
  if (driver == 0) return fail(cudaErrorNoDevice);
  if (driver / 1000 < CUDART_VERSION / 1000) return fail(cudaErrorInsufficientDriver);
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device != 0) return fail(cudaErrorInvalidValue);
  std::memset(prop, 0, sizeof(*prop));
  std::strcpy(prop->name, "nnmargin host emulation");
  compute_capability(&prop->major, &prop->minor);
  prop->multiProcessorCount = static_cast<int>(setting("NNMARGIN_CUDA_EMULATED_SMS", 4));
  prop->totalGlobalMem = device_memory();
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) return cudaErrorInvalidValue;
  switch (attr) {
    case cudaDevAttrMultiProcessorCount: *value = prop.multiProcessorCount; break;
    case cudaDevAttrComputeCapabilityMajor: *value = prop.major; break;
    case cudaDevAttrComputeCapabilityMinor: *value = prop.minor; break;
    default: return fail(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  std::lock_guard<std::mutex> lock(allocations_mutex);
  *total_bytes = device_memory();
  *free_bytes = *total_bytes > allocated_bytes ? *total_bytes - allocated_bytes : 0;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  std::lock_guard<std::mutex> lock(allocations_mutex);
  *ptr = nullptr;
  if (allocated_bytes + bytes > device_memory()) return fail(cudaErrorMemoryAllocation);
  // 256-byte aligned like cudaMalloc; never zeroed (device memory is not).
  *ptr = std::aligned_alloc(256, (bytes + 255) / 256 * 256 + 256);
  if (!*ptr) return fail(cudaErrorMemoryAllocation);
  allocations[*ptr] = bytes;
  allocated_bytes += bytes;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  if (!ptr) return cudaSuccess;
  std::lock_guard<std::mutex> lock(allocations_mutex);
  auto it = allocations.find(ptr);
  if (it == allocations.end()) return fail(cudaErrorInvalidValue);
  allocated_bytes -= it->second;
  allocations.erase(it);
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** ptr, size_t bytes) {
  *ptr = std::aligned_alloc(4096, (bytes + 4095) / 4096 * 4096 + 4096);
  return *ptr ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}

cudaError_t cudaFreeHost(void* ptr) {
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);
}

cudaError_t cudaMemset(void* dst, int value, size_t bytes) {
  if (bytes) std::memset(dst, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t) { return cudaMemset(dst, value, bytes); }

cudaError_t cudaStreamCreate(cudaStream_t* stream) {
  *stream = new EmulatedStream;
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }

cudaError_t cudaEventCreate(cudaEvent_t* event) {
  *event = new EmulatedEvent;
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t) {
  event->at = std::chrono::steady_clock::now();
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t stop) {
  *ms = std::chrono::duration<float, std::milli>(stop->at - start->at).count();
  return cudaSuccess;
}

}  // namespace nnm::cuda_emulated
