// dnn_util.h — RAII, non-copyable cuDNN descriptors and status checks that name the op and
// its shapes, shared by core/cuda/{conv,batchnorm}.cpp (CUDA builds only). Also a scoped
// device-workspace buffer drawn from the caching allocator.
#pragma once
#include <cudnn.h>

#include <string>

#include "core/cuda/cuda_check.h"
#include "core/cuda/kernels.h"
#include "core/dtype.h"

// PFQ_DNN_CHECK(call, ctx) — like PFQ_CUDNN_CHECK, adding `ctx` (a string expression naming
// the op and shapes, evaluated only on failure).
#define PFQ_DNN_CHECK(call, ctx)                                                               \
  do {                                                                                         \
    const cudnnStatus_t pfq_dnn_status_ = (call);                                              \
    if (pfq_dnn_status_ != CUDNN_STATUS_SUCCESS)                                               \
      PFQ_FAIL((ctx), ": cuDNN call ", #call, " failed: ", cudnnGetErrorString(pfq_dnn_status_), \
               " (status ", static_cast<int>(pfq_dnn_status_), ")");                           \
  } while (0)

namespace pfq::cuda {

inline cudnnDataType_t cudnn_type(DType t, const char* op) {
  if (t == DType::Float32) return CUDNN_DATA_FLOAT;
  if (t == DType::Float64) return CUDNN_DATA_DOUBLE;
  PFQ_FAIL(op, " on CUDA: expected float32 or float64, got ", dtype_name(t));
}

// cuDNN's alpha and beta scaling factors (out = alpha * result + beta * out) in the type it wants
// for the data type: double for float64 data, float otherwise.
struct DnnScalars {
  float f[2];
  double d[2];
  bool dbl;
  DnnScalars(DType t, double alpha, double beta)
      : f{static_cast<float>(alpha), static_cast<float>(beta)}, d{alpha, beta}, dbl(t == DType::Float64) {}
  const void* alpha() const { return dbl ? static_cast<const void*>(&d[0]) : static_cast<const void*>(&f[0]); }
  const void* beta() const { return dbl ? static_cast<const void*>(&d[1]) : static_cast<const void*>(&f[1]); }
};

// Makes `device` current (cheap when it already is).
inline void make_current(int device) {
  int current = -1;
  PFQ_CUDA_CHECK(cudaGetDevice(&current));
  if (current != device) PFQ_CUDA_CHECK(cudaSetDevice(device));
}

template <typename H, cudnnStatus_t (*Create)(H*), cudnnStatus_t (*Destroy)(H)>
class DnnDescriptor {
 public:
  DnnDescriptor() { PFQ_CUDNN_CHECK(Create(&d_)); }
  ~DnnDescriptor() {
    if (d_) Destroy(d_);
  }
  DnnDescriptor(const DnnDescriptor&) = delete;
  DnnDescriptor& operator=(const DnnDescriptor&) = delete;
  H get() const { return d_; }

 private:
  H d_ = nullptr;
};

using TensorDesc = DnnDescriptor<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor, cudnnDestroyTensorDescriptor>;
using FilterDesc = DnnDescriptor<cudnnFilterDescriptor_t, cudnnCreateFilterDescriptor, cudnnDestroyFilterDescriptor>;
using ConvDesc =
    DnnDescriptor<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor, cudnnDestroyConvolutionDescriptor>;

// A device buffer for one call's scratch space, returned to the cache at scope exit. All work
// runs on the default stream, so a later allocation of the block orders after this use.
class Workspace {
 public:
  Workspace(size_t nbytes, int device) : nbytes_(nbytes), device_(device), ptr_(nbytes ? device_alloc(nbytes, device) : nullptr) {}
  ~Workspace() {
    if (ptr_) device_free(ptr_, nbytes_, device_);
  }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  void* get() const { return ptr_; }
  size_t size() const { return nbytes_; }

 private:
  size_t nbytes_;
  int device_;
  void* ptr_;
};

}  // namespace pfq::cuda
