// launch.cuh — launch helpers shared by pfq's own CUDA kernels (.cu files of core/cuda and
// quant/): making a tensor's device current, the stream kernels go to, grid sizing for
// grid-stride loops and a scoped temporary device buffer. CUDA builds only.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "core/cuda/cuda_check.h"
#include "core/cuda/kernels.h"

namespace pfq::cuda::detail {

constexpr int kThreads = 256;          // threads per block of the element-wise/row kernels
constexpr int64_t kMaxBlocks = 65535;  // grid-stride loops cover the rest

// Makes `index` current (after checking it names a GPU).
inline void set_device(int index) {
  require_device(index);
  int current = -1;
  PFQ_CUDA_CHECK(cudaGetDevice(&current));
  if (current != index) PFQ_CUDA_CHECK(cudaSetDevice(index));
}

// The stream pfq queues device work on: the legacy default stream of the current device, the
// one cuda_runtime.cu's cudaMemcpy calls order against (so a device-to-host copy sees every
// kernel launched before it without an explicit synchronisation).
inline cudaStream_t stream() { return cudaStreamLegacy; }

// Blocks for `work` items at `per_block` items per block, capped for grid-stride loops.
inline unsigned blocks_for(int64_t work, int64_t per_block = kThreads) {
  const int64_t b = (work + per_block - 1) / per_block;
  return static_cast<unsigned>(b < 1 ? 1 : (b < kMaxBlocks ? b : kMaxBlocks));
}

// The batch split of a deterministic reduction that runs one block per (group, slice): about
// four blocks per SM of an H100 (132 SMs) over `groups` groups, never more slices than the `n`
// images. It depends on the shape only, so the summation order (and the result) is the same on
// any GPU. `per` images per slice, `count` slices (the last may be shorter).
struct BatchSlices {
  int64_t count, per;
};
inline BatchSlices batch_slices(int64_t n, int64_t groups) {
  constexpr int64_t kTargetBlocks = 528;
  int64_t s = (kTargetBlocks + groups - 1) / groups;
  s = s < 1 ? 1 : (s > n ? n : s);
  const int64_t per = (n + s - 1) / s;
  return {(n + per - 1) / per, per};
}

// Device scratch memory from the caching allocator, returned to it at scope exit. Returning it
// while a kernel using it is still queued is safe: every kernel of pfq runs on one stream, so a
// later user of the block runs after that kernel.
class DeviceBuffer {
 public:
  DeviceBuffer(size_t nbytes, int device) : nbytes_(nbytes), device_(device), ptr_(device_alloc(nbytes, device)) {}
  ~DeviceBuffer() { device_free(ptr_, nbytes_, device_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  template <typename T> T* as() const { return static_cast<T*>(ptr_); }

 private:
  size_t nbytes_;
  int device_;
  void* ptr_;
};

}  // namespace pfq::cuda::detail
