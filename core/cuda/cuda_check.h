// cuda_check.h — status checks for CUDA runtime, cuBLAS and cuDNN calls (CUDA builds only).
// Each macro throws pfq::Error naming the call, its status text and file:line. Included by the
// .cu files of core/cuda and by handles.h; never by code that must build without CUDA.
#pragma once
#include <cuda_runtime_api.h>

#include "core/error.h"

// PFQ_CUDA_CHECK(cudaMalloc(&p, n)) — throws "CUDA call cudaMalloc(&p, n) failed: out of
// memory (cudaErrorMemoryAllocation) [core/cuda/x.cu:12]".
#define PFQ_CUDA_CHECK(call)                                                              \
  do {                                                                                    \
    const cudaError_t pfq_cuda_status_ = (call);                                          \
    if (pfq_cuda_status_ != cudaSuccess)                                                  \
      PFQ_FAIL("CUDA call ", #call, " failed: ", cudaGetErrorString(pfq_cuda_status_), " (", \
               cudaGetErrorName(pfq_cuda_status_), ")");                                  \
  } while (0)

// After a kernel launch: launch-configuration errors surface through cudaGetLastError.
#define PFQ_CUDA_CHECK_LAUNCH(kernel_name)                                                \
  do {                                                                                    \
    const cudaError_t pfq_cuda_status_ = cudaGetLastError();                              \
    if (pfq_cuda_status_ != cudaSuccess)                                                  \
      PFQ_FAIL("CUDA kernel launch ", kernel_name, " failed: ",                           \
               cudaGetErrorString(pfq_cuda_status_), " (", cudaGetErrorName(pfq_cuda_status_), ")"); \
  } while (0)

#define PFQ_CUBLAS_CHECK(call)                                                            \
  do {                                                                                    \
    const cublasStatus_t pfq_cublas_status_ = (call);                                     \
    if (pfq_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                      \
      PFQ_FAIL("cuBLAS call ", #call, " failed: ", cublasGetStatusString(pfq_cublas_status_), \
               " (status ", static_cast<int>(pfq_cublas_status_), ")");                   \
  } while (0)

#define PFQ_CUDNN_CHECK(call)                                                             \
  do {                                                                                    \
    const cudnnStatus_t pfq_cudnn_status_ = (call);                                       \
    if (pfq_cudnn_status_ != CUDNN_STATUS_SUCCESS)                                        \
      PFQ_FAIL("cuDNN call ", #call, " failed: ", cudnnGetErrorString(pfq_cudnn_status_), \
               " (status ", static_cast<int>(pfq_cudnn_status_), ")");                    \
  } while (0)
