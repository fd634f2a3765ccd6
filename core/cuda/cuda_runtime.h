// cuda_runtime.h — the device plumbing the rest of pfq sees: availability, memory, copies.
// Implemented by cuda_runtime.cu when pfq is built with CUDA, and by no_cuda.cpp otherwise
// (every call then throws a clear "built without CUDA" error; nothing falls back to CPU).
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace pfq::cuda {

bool built_with_cuda();
// Builds without CUDA only (core/cuda/no_cuda.cpp): throws pfq::Error "<what>: this pfq was
// built without CUDA: ..." with how to get a CUDA build. Every no-CUDA entry point ends here.
[[noreturn]] void fail_without_cuda(const char* what);
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

// The device's own time for the work `enqueue` queues (for `pfq bench`): a single spinning thread
// holds the compute stream for about `spin_ms` while the host queues the work behind it, so the
// kernels then run back to back, and the time between events recorded after the spin and after
// the work is the device time without the host's launch gaps. `host_ms` receives the host's time
// inside `enqueue`; the result is valid only when that stayed below `spin_ms` (the caller checks)
// and `enqueue` did not wait for the device itself.
double device_time_ms(int index, const std::function<void()>& enqueue, double spin_ms, double* host_ms);

// Asynchronous uploads through page-locked ("pinned") host memory, for the data loader. upload()
// copies `nbytes` of `src` (any host memory) into a pinned staging buffer and returns once a
// device copy of it is queued on this uploader's own stream. That copy starts after every kernel
// already queued on the compute stream (so `dst`, perhaps a block a tensor just freed, is no
// longer read), and every kernel queued after upload() returns waits for it: the copy of the
// next batch overlaps the current step. `dst` must stay allocated until the copy is done, which
// holds for a tensor that kernels queued later use. Staging buffers (a small ring) are reused
// once their last copy finished. Non-copyable; the destructor waits for copies in flight.
class PinnedUploader {
 public:
  explicit PinnedUploader(int index);  // throws without CUDA or without that GPU
  ~PinnedUploader();
  PinnedUploader(const PinnedUploader&) = delete;
  PinnedUploader& operator=(const PinnedUploader&) = delete;

  void upload(void* dst, const void* src, size_t nbytes);
  int device_index() const;
  size_t pinned_bytes() const;  // page-locked host memory held by the staging ring

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// First kernels: contiguous float32 element-wise ops, used by the device tests.
void fill_f32(float* dst, float value, size_t n, int index);
void add_f32(const float* a, const float* b, float* out, size_t n, int index);
void mul_f32(const float* a, const float* b, float* out, size_t n, int index);

}  // namespace pfq::cuda
