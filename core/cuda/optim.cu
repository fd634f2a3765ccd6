// optim.cu — the fused SGD and Adam/AdamW parameter updates of core/optim on CUDA (kernels.h):
// one flat kernel per parameter, the same per-element statements, in the same order and dtype,
// as sgd_kernel / adam_kernel in core/optim/{sgd,adam}.cpp (hyper-parameters cast to T once).
#include <cmath>

#include "core/cuda/elementwise.cuh"
#include "core/cuda/kernels.h"

namespace pfq::cuda {
namespace {

void check_like(const Tensor& t, const Tensor& p, const char* op, const char* what) {
  PFQ_CHECK(t.defined() && t.device() == p.device() && t.dtype() == p.dtype() && t.shape() == p.shape() && t.is_contiguous(),
            op, ": ", what, " must be a contiguous tensor like the parameter ", p.describe(), ", got ", t.describe());
}

}  // namespace

void sgd_update(const Tensor& param, const Tensor& grad, const Tensor& buf, bool first, double weight_decay,
                double momentum, double dampening, bool nesterov, double lr) {
  const char* op = "cuda::sgd_update";
  PFQ_CHECK(param.device().is_cuda() && param.is_contiguous(), op, ": expected a contiguous CUDA parameter, got ",
            param.describe());
  check_like(grad, param, op, "grad");
  if (buf.defined()) check_like(buf, param, op, "momentum buffer");
  PFQ_DISPATCH_FLOAT(param.dtype(), op, [&] {
    using T = scalar_t;
    T* p = param.data<T>();
    const T* g = grad.data<T>();
    T* b = buf.defined() ? buf.data<T>() : nullptr;
    const T wd = static_cast<T>(weight_decay), mom = static_cast<T>(momentum);
    const T keep = static_cast<T>(1 - dampening), neg_lr = static_cast<T>(-lr);
    detail::launch_flat(
        param.device().index, param.numel(),
        [=] __device__(int64_t k) {
          T d = wd != T(0) ? g[k] + wd * p[k] : g[k];
          if (b) {
            b[k] = first ? d : mom * b[k] + keep * d;
            d = nesterov ? d + mom * b[k] : b[k];
          }
          p[k] = p[k] + neg_lr * d;
        }, op);
  });
}

void adam_update(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                 double shrink, double l2, double beta1, double beta2, double eps, double bias_correction2_sqrt,
                 double step_size) {
  const char* op = "cuda::adam_update";
  PFQ_CHECK(param.device().is_cuda() && param.is_contiguous(), op, ": expected a contiguous CUDA parameter, got ",
            param.describe());
  check_like(grad, param, op, "grad");
  check_like(exp_avg, param, op, "exp_avg");
  check_like(exp_avg_sq, param, op, "exp_avg_sq");
  PFQ_DISPATCH_FLOAT(param.dtype(), op, [&] {
    using T = scalar_t;
    T* p = param.data<T>();
    const T* g = grad.data<T>();
    T* m = exp_avg.data<T>();
    T* v = exp_avg_sq.data<T>();
    const T shr = static_cast<T>(shrink), l2t = static_cast<T>(l2);
    const bool decay_p = shrink != 1;
    const T w1 = static_cast<T>(1 - beta1), b2 = static_cast<T>(beta2), w2 = static_cast<T>(1 - beta2);
    const T bc2s = static_cast<T>(bias_correction2_sqrt), ep = static_cast<T>(eps);
    const T neg_step = static_cast<T>(-step_size);
    const bool lerp_low = 1 - beta1 < 0.5;  // PyTorch's lerp picks its formula by the weight
    detail::launch_flat(
        param.device().index, param.numel(),
        [=] __device__(int64_t k) {
          if (decay_p) p[k] = p[k] * shr;
          const T gk = l2t != T(0) ? g[k] + l2t * p[k] : g[k];
          m[k] = lerp_low ? m[k] + w1 * (gk - m[k]) : gk - (gk - m[k]) * (T(1) - w1);
          v[k] = v[k] * b2 + w2 * gk * gk;
          const T denom = sqrt(v[k]) / bc2s + ep;
          p[k] = p[k] + neg_step * (m[k] / denom);
        }, op);
  });
}

}  // namespace pfq::cuda
