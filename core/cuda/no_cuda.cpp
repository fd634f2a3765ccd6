// no_cuda.cpp — the CUDA plumbing of a build without CUDA: reports zero devices and refuses,
// with a message saying how to get a CUDA build, every request for device memory or work.
#include "core/cuda/cuda_runtime.h"
#include "core/error.h"

namespace pfq::cuda {

void fail_without_cuda(const char* what) {
  PFQ_FAIL(what, ": this pfq was built without CUDA: reconfigure with nvcc on PATH (meson setup -Dcuda=enabled) to use --device cuda");
}

namespace {
[[noreturn]] void no_cuda() { fail_without_cuda("CUDA device memory or work"); }
}  // namespace

int device_count() { return 0; }
void require_device(int) { no_cuda(); }
void* device_alloc(size_t, int) { no_cuda(); }
void device_free(void*, size_t, int) {}
void copy_host_to_device(void*, const void*, size_t, int) { no_cuda(); }
void copy_device_to_host(void*, const void*, size_t, int) { no_cuda(); }
void copy_device_to_device(void*, const void*, size_t, int) { no_cuda(); }
void synchronize(int) { no_cuda(); }
double device_time_ms(int, const std::function<void()>&, double, double*) { no_cuda(); }
void fill_f32(float*, float, size_t, int) { no_cuda(); }

void add_f32(const float*, const float*, float*, size_t, int) { no_cuda(); }
void mul_f32(const float*, const float*, float*, size_t, int) { no_cuda(); }

}  // namespace pfq::cuda

namespace pfq {
std::vector<GpuInfo> cuda_devices() { return {}; }
struct PinnedUploader::Impl {};
PinnedUploader::PinnedUploader(Device) { cuda::fail_without_cuda("CUDA device memory or work"); }
PinnedUploader::~PinnedUploader() = default;
void PinnedUploader::upload(void*, const void*, size_t) { cuda::fail_without_cuda("CUDA device memory or work"); }
Device PinnedUploader::device() const { cuda::fail_without_cuda("CUDA device memory or work"); }
size_t PinnedUploader::pinned_bytes() const { return 0; }
}  // namespace pfq
