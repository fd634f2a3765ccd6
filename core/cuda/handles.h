// handles.h — RAII, non-copyable cuBLAS and cuDNN handles, created lazily once per device and
// kept for the life of the process (CUDA builds only). Just the plumbing: the GEMM/conv kernels
// that use them come with the CUDA backend. Handles run on the default stream; not per thread.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <memory>
#include <mutex>
#include <vector>

#include "core/cuda/cuda_check.h"
#include "core/cuda/kernels.h"

namespace pfq::cuda {

class CublasHandle {
 public:
  explicit CublasHandle(int device) {
    PFQ_CUDA_CHECK(cudaSetDevice(device));
    PFQ_CUBLAS_CHECK(cublasCreate(&handle_));
  }
  ~CublasHandle() {
    if (handle_) cublasDestroy(handle_);  // status ignored: may run after driver shutdown
  }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  cublasHandle_t get() const { return handle_; }

 private:
  cublasHandle_t handle_ = nullptr;
};

class CudnnHandle {
 public:
  explicit CudnnHandle(int device) {
    PFQ_CUDA_CHECK(cudaSetDevice(device));
    PFQ_CUDNN_CHECK(cudnnCreate(&handle_));
  }
  ~CudnnHandle() {
    if (handle_) cudnnDestroy(handle_);
  }
  CudnnHandle(const CudnnHandle&) = delete;
  CudnnHandle& operator=(const CudnnHandle&) = delete;
  cudnnHandle_t get() const { return handle_; }

 private:
  cudnnHandle_t handle_ = nullptr;
};

namespace detail {
// One lazily created H per device. Intentionally leaked (never destroyed) so no handle is torn
// down after the CUDA driver has shut down at process exit.
template <typename H>
H& per_device_handle(int device) {
  static std::mutex mu;
  static auto* handles = new std::vector<std::unique_ptr<H>>();
  std::lock_guard<std::mutex> lock(mu);
  require_device(device);
  if (handles->size() < static_cast<size_t>(device_count())) handles->resize(device_count());
  auto& slot = (*handles)[device];
  if (!slot) slot = std::make_unique<H>(device);
  return *slot;
}
}  // namespace detail

// The handle of `device`, created on first use. The caller must have made `device` current.
inline cublasHandle_t cublas_handle(int device) { return detail::per_device_handle<CublasHandle>(device).get(); }
inline cudnnHandle_t cudnn_handle(int device) { return detail::per_device_handle<CudnnHandle>(device).get(); }

}  // namespace pfq::cuda
