// sgd.cpp — the SGD update (see sgd.h) as one fused loop per parameter over raw CPU data, or
// one fused kernel on CUDA (core/cuda/optim.cu, the same statements). Elementwise arithmetic is
// in the parameter's dtype, in PyTorch's operation order.
#include "core/optim/sgd.h"

#include <cmath>

#include "core/cpu/elementwise.h"
#include "core/cuda/kernels.h"

namespace pfq::optim {

Sgd::Sgd(std::vector<ParamRef> params, const SgdOptions& options)
    : Optimizer("Sgd", std::move(params), options.lr, {"momentum_buffer"}, false), opt_(options) {
  const double m = opt_.momentum, d = opt_.dampening, wd = opt_.weight_decay;
  check_hyper(std::isfinite(m) && m >= 0 && m < 1, kind_, "momentum", m, "0 <= momentum < 1");
  check_hyper(std::isfinite(d) && d >= 0 && d <= 1, kind_, "dampening", d, "0 <= dampening <= 1");
  check_hyper(std::isfinite(wd) && wd >= 0, kind_, "weight_decay", wd, ">= 0");
  PFQ_CHECK(!opt_.nesterov || m > 0, "Sgd: nesterov needs momentum > 0 (got momentum ", m, "); set a momentum or drop nesterov");
  PFQ_CHECK(!opt_.nesterov || d == 0, "Sgd: nesterov needs dampening 0 (got dampening ", d, ")");
  for (const ParamRef& p : params_) decay_.push_back(opt_.exclude_bn_bias && no_decay(p.name, p.param) ? 0.0 : wd);
}

namespace {
// One fused SGD pass over n elements (buf null without momentum).
template <typename T>
void sgd_kernel(int64_t n, T* p, const T* g, T* buf, bool first, const SgdOptions& o, double wd_d, double lr) {
  const T wd = static_cast<T>(wd_d), mom = static_cast<T>(o.momentum);
  const T keep = static_cast<T>(1 - o.dampening), neg_lr = static_cast<T>(-lr);
  const bool nesterov = o.nesterov;
#pragma omp parallel for schedule(static) if (n > cpu::kParallelGrain)
  for (int64_t k = 0; k < n; ++k) {
    T d = wd != 0 ? g[k] + wd * p[k] : g[k];
    if (buf) {
      buf[k] = first ? d : mom * buf[k] + keep * d;
      d = nesterov ? d + mom * buf[k] : buf[k];
    }
    p[k] = p[k] + neg_lr * d;
  }
}
}  // namespace

void Sgd::update(size_t i, const Tensor& grad) {
  const bool use_momentum = opt_.momentum != 0;
  bool first = false;
  Tensor buf = use_momentum ? slot(i, 0, &first) : Tensor();
  const Tensor& p = params_[i].param;
  if (p.device().is_cuda()) {
    cuda::sgd_update(p, grad, buf, first, decay_[i], opt_.momentum, opt_.dampening, opt_.nesterov, lr_);
    return;
  }
  PFQ_DISPATCH_FLOAT(grad.dtype(), "Sgd.step", [&] {
    sgd_kernel<scalar_t>(grad.numel(), p.data<scalar_t>(), grad.data<scalar_t>(), use_momentum ? buf.data<scalar_t>() : nullptr,
                         first, opt_, decay_[i], lr_);
  });
}

}  // namespace pfq::optim
