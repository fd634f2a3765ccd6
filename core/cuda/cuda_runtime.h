// cuda_runtime.h — core's internal CUDA plumbing: GPU count and checks, memory, copies (the
// allocator, Tensor and core/cuda use it; everything else includes core/device.h, which also
// declares the pinned uploads implemented next to these). Implemented by cuda_runtime.cu when pfq
// is built with CUDA, and by no_cuda.cpp otherwise (every call then throws a clear "built without
// CUDA" error; nothing falls back to CPU).
#pragma once
#include <cstddef>
#include <functional>

#include "core/device.h"

namespace pfq::cuda {

// Builds without CUDA only (core/cuda/no_cuda.cpp): throws pfq::Error "<what>: this pfq was
// built without CUDA: ..." with how to get a CUDA build. Every no-CUDA entry point ends here.
[[noreturn]] void fail_without_cuda(const char* what);
int device_count();  // 0 when built without CUDA or no GPU/driver is present
// Throws pfq::Error unless `index` names a usable GPU.
void require_device(int index);

void* device_alloc(size_t nbytes, int index);
void device_free(void* ptr, size_t nbytes, int index);
void copy_host_to_device(void* dst, const void* src, size_t nbytes, int index);
void copy_device_to_host(void* dst, const void* src, size_t nbytes, int index);
void copy_device_to_device(void* dst, const void* src, size_t nbytes, int index);
void synchronize(int index);

// core/device.h's device_time_ms on GPU `index`.
double device_time_ms(int index, const std::function<void()>& enqueue, double spin_ms, double* host_ms);

// First kernels: contiguous float32 element-wise ops, used by the device tests.
void fill_f32(float* dst, float value, size_t n, int index);
void add_f32(const float* a, const float* b, float* out, size_t n, int index);
void mul_f32(const float* a, const float* b, float* out, size_t n, int index);

}  // namespace pfq::cuda
