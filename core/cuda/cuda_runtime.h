// cuda_runtime.h — the device plumbing the rest of pfq sees: availability, memory, copies.
// Implemented by cuda_runtime.cu when pfq is built with CUDA, and by no_cuda.cpp otherwise
// (every call then throws a clear "built without CUDA" error; nothing falls back to CPU).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace pfq::cuda {

bool built_with_cuda();
int device_count();  // 0 when built without CUDA or no GPU/driver is present
struct DeviceInfo {
  int index;
  std::string name;
  size_t total_memory;
  int cc_major, cc_minor;
};
std::vector<DeviceInfo> list_devices();
// Throws pfq::Error unless `index` names a usable GPU.
void require_device(int index);

void* device_alloc(size_t nbytes, int index);
void device_free(void* ptr, size_t nbytes, int index);
void copy_host_to_device(void* dst, const void* src, size_t nbytes, int index);
void copy_device_to_host(void* dst, const void* src, size_t nbytes, int index);
void copy_device_to_device(void* dst, const void* src, size_t nbytes, int index);
void synchronize(int index);

// First kernels: contiguous float32 element-wise ops, used by the device tests.
void fill_f32(float* dst, float value, size_t n, int index);
void add_f32(const float* a, const float* b, float* out, size_t n, int index);
void mul_f32(const float* a, const float* b, float* out, size_t n, int index);

}  // namespace pfq::cuda
