// adam.cpp — the Adam/AdamW update (see adam.h) as one fused loop per parameter over raw CPU
// data, or one fused kernel on CUDA (core/cuda/optim.cu, the same statements), in the operation
// order of PyTorch's single-tensor implementation.
#include "core/optim/adam.h"

#include <cmath>

#include "core/cpu/elementwise.h"
#include "core/cuda/kernels.h"

namespace pfq::optim {

namespace {
struct AdamScalars {
  double shrink;      // AdamW: 1 - lr * wd (1 for Adam)
  double l2;          // Adam: wd (0 for AdamW)
  double beta1, beta2, eps;
  double bias_correction2_sqrt, step_size;
};

// One fused Adam/AdamW pass over n elements, in PyTorch's single-tensor operation order.
template <typename T>
void adam_kernel(int64_t n, T* p, const T* g, T* m, T* v, const AdamScalars& s) {
  const T shrink = static_cast<T>(s.shrink), l2 = static_cast<T>(s.l2);
  const bool decay_p = s.shrink != 1;
  const T w1 = static_cast<T>(1 - s.beta1), beta2 = static_cast<T>(s.beta2), w2 = static_cast<T>(1 - s.beta2);
  const T bc2s = static_cast<T>(s.bias_correction2_sqrt), eps = static_cast<T>(s.eps);
  const T neg_step = static_cast<T>(-s.step_size);
  const bool lerp_low = 1 - s.beta1 < 0.5;  // PyTorch's lerp picks its formula by the weight
#pragma omp parallel for schedule(static) if (n > cpu::kParallelGrain)
  for (int64_t k = 0; k < n; ++k) {
    if (decay_p) p[k] = p[k] * shrink;
    const T gk = l2 != 0 ? g[k] + l2 * p[k] : g[k];
    m[k] = lerp_low ? m[k] + w1 * (gk - m[k]) : gk - (gk - m[k]) * (T(1) - w1);
    v[k] = v[k] * beta2 + w2 * gk * gk;
    const T denom = std::sqrt(v[k]) / bc2s + eps;
    p[k] = p[k] + neg_step * (m[k] / denom);
  }
}
}  // namespace

Adam::Adam(std::vector<ParamRef> params, const AdamOptions& options) : Adam("Adam", std::move(params), options, false) {}

AdamW::AdamW(std::vector<ParamRef> params, const AdamOptions& options) : Adam("AdamW", std::move(params), options, true) {}

Adam::Adam(const char* kind, std::vector<ParamRef> params, const AdamOptions& options, bool decoupled)
    : Optimizer(kind, std::move(params), options.lr, {"exp_avg", "exp_avg_sq"}, true), opt_(options), decoupled_(decoupled) {
  check_hyper(std::isfinite(opt_.beta1) && opt_.beta1 >= 0 && opt_.beta1 < 1, kind_, "beta1", opt_.beta1, "0 <= beta1 < 1");
  check_hyper(std::isfinite(opt_.beta2) && opt_.beta2 >= 0 && opt_.beta2 < 1, kind_, "beta2", opt_.beta2, "0 <= beta2 < 1");
  check_hyper(std::isfinite(opt_.eps) && opt_.eps >= 0, kind_, "eps", opt_.eps, ">= 0");
  check_hyper(std::isfinite(opt_.weight_decay) && opt_.weight_decay >= 0, kind_, "weight_decay", opt_.weight_decay, ">= 0");
  for (const ParamRef& p : params_) decay_.push_back(opt_.exclude_bn_bias && no_decay(p.name, p.param) ? 0.0 : opt_.weight_decay);
}

void Adam::update(size_t i, const Tensor& grad) {
  Tensor m = slot(i, 0), v = slot(i, 1);
  const double t = static_cast<double>(++param_step(i));
  AdamScalars s;
  s.shrink = decoupled_ ? 1 - lr_ * decay_[i] : 1.0;
  s.l2 = decoupled_ ? 0.0 : decay_[i];
  s.beta1 = opt_.beta1;
  s.beta2 = opt_.beta2;
  s.eps = opt_.eps;
  s.bias_correction2_sqrt = std::sqrt(1 - std::pow(opt_.beta2, t));
  s.step_size = lr_ / (1 - std::pow(opt_.beta1, t));
  const Tensor& p = params_[i].param;
  if (p.device().is_cuda()) {
    cuda::adam_update(p, grad, m, v, s.shrink, s.l2, s.beta1, s.beta2, s.eps, s.bias_correction2_sqrt, s.step_size);
    return;
  }
  PFQ_DISPATCH_FLOAT(grad.dtype(), "Adam.step", [&] {
    adam_kernel<scalar_t>(grad.numel(), p.data<scalar_t>(), grad.data<scalar_t>(), m.data<scalar_t>(), v.data<scalar_t>(), s);
  });
}

}  // namespace pfq::optim
