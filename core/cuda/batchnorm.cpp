// batchnorm.cpp — batch normalisation on cuDNN (spatial mode), listed in core/cuda/kernel_list.h
// (CUDA builds). cuDNN's running-statistics update is r = (1 - f) * r + f * batch with the
// unbiased batch variance, which is pfq's convention with f = momentum; its saved inverse
// variance is 1/sqrt(var_biased + eps), as the CPU kernel's invstd. [N, C, S] maps to an
// NCHW descriptor [N, C, S, 1] (spatial mode reduces over N, H and W alike).
#include <cudnn.h>

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/cuda/kernels.h"
#include "core/cuda/dnn_util.h"
#include "core/cuda/handles.h"

namespace pfq::cuda {
namespace {

std::string describe(const char* what, DType dtype, int device, int64_t N, int64_t C, int64_t S, double eps) {
  return ::pfq::detail::cat(what, " on cuda:", device, " (", dtype_name(dtype), " x [", N, ", ", C, ", ", S, "] (N, C, H*W), eps ", eps, ")");
}

// The descriptors of one shape: x/y/dx/dy share one; the per-channel tensors another. Made
// once per (dtype, N, C, S) and kept (never freed), so a call costs the host a map lookup.
struct BnDescs {
  TensorDesc x, channel;
  BnDescs(DType dtype, int64_t N, int64_t C, int64_t S, const std::string& ctx) {
    PFQ_CHECK(N * C * S < INT32_MAX, ctx, ": tensors over 2^31 elements are not supported by the cuDNN path");
    PFQ_DNN_CHECK(cudnnSetTensor4dDescriptor(x.get(), CUDNN_TENSOR_NCHW, cudnn_type(dtype, "batch_norm"), static_cast<int>(N),
                                             static_cast<int>(C), static_cast<int>(S), 1),
                  ctx);
    PFQ_DNN_CHECK(cudnnDeriveBNTensorDescriptor(channel.get(), x.get(), CUDNN_BATCHNORM_SPATIAL), ctx);
  }
};

const BnDescs& descs_for(DType dtype, int64_t N, int64_t C, int64_t S, const char* what, int device, double eps) {
  using Key = std::array<int64_t, 4>;
  static std::mutex mu;
  static auto* cache = new std::map<Key, std::unique_ptr<BnDescs>>();  // leaked: outlives static teardown
  const Key key{static_cast<int64_t>(dtype), N, C, S};
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache->find(key);
    if (it != cache->end()) return *it->second;
  }
  auto d = std::make_unique<BnDescs>(dtype, N, C, S, describe(what, dtype, device, N, C, S, eps));
  std::lock_guard<std::mutex> lock(mu);
  return *cache->emplace(key, std::move(d)).first->second;  // another thread may have been first
}

void prepare(int device, double eps, const char* what, DType dtype, int64_t N, int64_t C, int64_t S) {
  require_device(device);
  make_current(device);
  PFQ_CHECK(eps >= CUDNN_BN_MIN_EPSILON, describe(what, dtype, device, N, C, S, eps), ": eps below cuDNN's minimum ", CUDNN_BN_MIN_EPSILON);
}

}  // namespace

double batch_norm_min_eps() { return CUDNN_BN_MIN_EPSILON; }

void batch_norm_train_forward(DType dtype, int device, int64_t N, int64_t C, int64_t S, const void* x, const void* gamma,
                              const void* beta, double momentum, double eps, void* running_mean, void* running_var,
                              void* y, void* save_mean, void* save_invstd) {
  if (N * C * S == 0) return;
  const char* what = "batch_norm (training) forward";
  prepare(device, eps, what, dtype, N, C, S);
  PFQ_CHECK((running_mean == nullptr) == (running_var == nullptr), describe(what, dtype, device, N, C, S, eps),
            ": give both running statistics or neither");
  const BnDescs& d = descs_for(dtype, N, C, S, what, device, eps);
  const DnnScalars s(dtype, 1, 0);
  PFQ_DNN_CHECK(cudnnBatchNormalizationForwardTraining(cudnn_handle(device), CUDNN_BATCHNORM_SPATIAL, s.alpha(), s.beta(), d.x.get(), x,
                                                       d.x.get(), y, d.channel.get(), gamma, beta, momentum, running_mean,
                                                       running_var, eps, save_mean, save_invstd),
                describe(what, dtype, device, N, C, S, eps));
}

void batch_norm_infer_forward(DType dtype, int device, int64_t N, int64_t C, int64_t S, const void* x, const void* gamma,
                              const void* beta, const void* mean, const void* var, double eps, void* y) {
  if (N * C * S == 0) return;
  const char* what = "batch_norm (eval) forward";
  prepare(device, eps, what, dtype, N, C, S);
  const BnDescs& d = descs_for(dtype, N, C, S, what, device, eps);
  const DnnScalars s(dtype, 1, 0);
  PFQ_DNN_CHECK(cudnnBatchNormalizationForwardInference(cudnn_handle(device), CUDNN_BATCHNORM_SPATIAL, s.alpha(), s.beta(), d.x.get(),
                                                        x, d.x.get(), y, d.channel.get(), gamma, beta, mean, var, eps),
                describe(what, dtype, device, N, C, S, eps));
}

void batch_norm_train_backward(DType dtype, int device, int64_t N, int64_t C, int64_t S, const void* x, const void* dy,
                               const void* gamma, const void* save_mean, const void* save_invstd, double eps, void* dx,
                               void* dgamma, void* dbeta) {
  if (N * C * S == 0) return;
  const char* what = "batch_norm (training) backward";
  prepare(device, eps, what, dtype, N, C, S);
  const BnDescs& d = descs_for(dtype, N, C, S, what, device, eps);
  const DnnScalars s(dtype, 1, 0);
  PFQ_DNN_CHECK(cudnnBatchNormalizationBackward(cudnn_handle(device), CUDNN_BATCHNORM_SPATIAL, s.alpha(), s.beta(), s.alpha(), s.beta(),
                                                d.x.get(), x, d.x.get(), dy, d.x.get(), dx, d.channel.get(), gamma, dgamma, dbeta,
                                                eps, save_mean, save_invstd),
                describe(what, dtype, device, N, C, S, eps));
}

}  // namespace pfq::cuda
