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

// One cuDNN batch-norm call on x [N, C, S]: its device made current, eps checked, the shape's
// descriptors; `empty` when there is nothing to compute.
struct BnCall {
  DType dtype;
  int device;
  int64_t N, C, S;
  double eps;
  const char* what;
  const BnDescs* d = nullptr;
  BnCall(const Tensor& x, double eps_, const char* what_) : dtype(x.dtype()), device(x.device().index), eps(eps_), what(what_) {
    const detail::Ncs n = detail::ncs(x);
    N = n.N, C = n.C, S = n.S;
    if (empty()) return;
    require_device(device);
    make_current(device);
    PFQ_CHECK(eps >= CUDNN_BN_MIN_EPSILON, ctx(), ": eps below cuDNN's minimum ", CUDNN_BN_MIN_EPSILON);
    d = &descs_for(dtype, N, C, S, what, device, eps);
  }
  bool empty() const { return N * C * S == 0; }
  std::string ctx() const { return describe(what, dtype, device, N, C, S, eps); }
};

}  // namespace

double batch_norm_min_eps() { return CUDNN_BN_MIN_EPSILON; }

void batch_norm_train_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, double momentum, double eps,
                              const Tensor& running_mean, const Tensor& running_var, const Tensor& y, const Tensor& save_mean,
                              const Tensor& save_invstd) {
  const BnCall c(x, eps, "batch_norm (training) forward");
  if (c.empty()) return;
  PFQ_CHECK(running_mean.defined() == running_var.defined(), c.ctx(), ": give both running statistics or neither");
  const DnnScalars s(c.dtype, 1, 0);
  PFQ_DNN_CHECK(cudnnBatchNormalizationForwardTraining(cudnn_handle(c.device), CUDNN_BATCHNORM_SPATIAL, s.alpha(), s.beta(), c.d->x.get(),
                                                       x.raw_data(), c.d->x.get(), y.raw_data(), c.d->channel.get(), gamma.raw_data(),
                                                       beta.raw_data(), momentum, detail::raw_or_null(running_mean),
                                                       detail::raw_or_null(running_var), eps, save_mean.raw_data(), save_invstd.raw_data()),
                c.ctx());
}

void batch_norm_infer_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& mean, const Tensor& var, double eps,
                              const Tensor& y) {
  const BnCall c(x, eps, "batch_norm (eval) forward");
  if (c.empty()) return;
  const DnnScalars s(c.dtype, 1, 0);
  PFQ_DNN_CHECK(cudnnBatchNormalizationForwardInference(cudnn_handle(c.device), CUDNN_BATCHNORM_SPATIAL, s.alpha(), s.beta(),
                                                        c.d->x.get(), x.raw_data(), c.d->x.get(), y.raw_data(), c.d->channel.get(),
                                                        gamma.raw_data(), beta.raw_data(), mean.raw_data(), var.raw_data(), eps),
                c.ctx());
}

void batch_norm_train_backward(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& save_mean, const Tensor& save_invstd,
                               double eps, const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta) {
  const BnCall c(x, eps, "batch_norm (training) backward");
  if (c.empty()) return;
  const DnnScalars s(c.dtype, 1, 0);
  PFQ_DNN_CHECK(cudnnBatchNormalizationBackward(cudnn_handle(c.device), CUDNN_BATCHNORM_SPATIAL, s.alpha(), s.beta(), s.alpha(), s.beta(),
                                                c.d->x.get(), x.raw_data(), c.d->x.get(), dy.raw_data(), c.d->x.get(), dx.raw_data(),
                                                c.d->channel.get(), gamma.raw_data(), dgamma.raw_data(), dbeta.raw_data(), eps,
                                                save_mean.raw_data(), save_invstd.raw_data()),
                c.ctx());
}

}  // namespace pfq::cuda
