// norm.cpp — the batch_norm op (train: batch statistics + running-statistics update;
// eval: running statistics) and its gradient w.r.t. input, weight (gamma) and bias (beta): one
// body, one backward closure. CPU kernels in core/cpu/batchnorm.cpp; on CUDA, training runs
// pfq's own kernels (activation fused, core/cuda/batchnorm_own.cu) and eval cuDNN's (core/cuda/kernel_list.h).
#include <cmath>
#include <limits>
#include <vector>

#include "core/backend_options.h"
#include "core/cpu/kernels.h"
#include "core/cuda/kernels.h"
#include "core/layout.h"
#include "core/ops.h"
#include "core/profiler.h"
#include "core/ops/op_util.h"

namespace pfq {
namespace {

// The clamp of a fused activation: (-inf, inf) none, [0, inf) ReLU, [0, 6] ReLU6.
struct ActBounds {
  double lo, hi;
};
ActBounds act_bounds(BnAct act) {
  const double inf = std::numeric_limits<double>::infinity();
  return {act == BnAct::None ? -inf : 0.0, act == BnAct::ReLU6 ? 6.0 : inf};
}

// gamma or beta for the CUDA kernels, which always take both: the parameter, or `fill` (ones for
// gamma, zeros for beta) when there is no affine.
Tensor channel_param(const Tensor& p, double fill, int64_t C, DType dt, Device dev) {
  return p.defined() ? p.detach().contiguous() : Tensor::full({C}, fill, dt).to(dev);
}

// The kernels batch_norm runs: the CPU's (NCHW or channels-last), pfq's own CUDA kernels
// (training; activation fused) or cuDNN's (eval, or PFQ_CUDA_BN=cudnn; the activation op follows).
enum class BnPath { Cpu, CudaOwn, Cudnn };

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum, double eps, BnAct act) {
  PFQ_PROFILE(act == BnAct::None ? "batch_norm" : "batch_norm+act");
  PFQ_CHECK(x.dim() == 2 || x.dim() == 4, "batch_norm: input must be [N, C] or [N, C, H, W], got ", shape_str(x.shape()));
  const int64_t N = x.size(0), C = x.size(1), S = x.dim() == 4 ? x.size(2) * x.size(3) : 1;
  for (const Tensor* t : {&weight, &bias, &running_mean, &running_var})
    if (t->defined()) {
      check_same_device_dtype(x, *t, "batch_norm");
      PFQ_CHECK(t->dim() == 1 && t->size(0) == C, "batch_norm: parameter/buffer of shape ", shape_str(t->shape()), " for ", C,
                " channels (input ", shape_str(x.shape()), ")");
    }
  PFQ_CHECK(eps > 0, "batch_norm: eps must be positive, got ", eps);
  if (!training) PFQ_CHECK(running_mean.defined() && running_var.defined(), "batch_norm: eval mode needs running_mean and running_var");
  if (training) PFQ_CHECK(N * S > 1, "batch_norm: training needs more than one value per channel, got input ", shape_str(x.shape()));
  const bool track = running_mean.defined() && running_var.defined();
  if (training && track)  // updated in place
    PFQ_CHECK(running_mean.is_contiguous() && running_var.is_contiguous(), "batch_norm: running statistics must be contiguous");
  const DType dt = x.dtype();
  const Device dev = x.device();
  const BnPath path = dev.is_cpu() ? BnPath::Cpu
                      : training && backend_options().cuda_bn == CudaBatchNorm::Own && cuda::batch_norm_own_fits(N, C, S) ? BnPath::CudaOwn
                                                                                                                 : BnPath::Cudnn;
  if (path == BnPath::Cudnn)
    PFQ_CHECK(eps >= cuda::batch_norm_min_eps(), "batch_norm on CUDA: eps ", eps, " below cuDNN's minimum ", cuda::batch_norm_min_eps());
  const BnAct fused = path == BnPath::Cudnn ? BnAct::None : act;  // cuDNN's kernels fuse no activation
  const ActBounds bounds = act_bounds(fused);
  const double lo = bounds.lo, hi = bounds.hi;
  // channels-last input (layout.h) on the CPU: the [N*H*W, C] kernels, output and gradient channels-last
  const bool nhwc = path == BnPath::Cpu && is_strictly_channels_last(x);
  Tensor xc = nhwc ? x.detach() : x.detach().contiguous();
  Tensor wc, bc;  // the CUDA kernels take both, ones and zeros when there is no affine
  if (path == BnPath::Cpu) {
    wc = weight.defined() ? weight.detach().contiguous() : Tensor();
    bc = bias.defined() ? bias.detach().contiguous() : Tensor();
  } else {
    wc = channel_param(weight, 1, C, dt, dev);
    bc = channel_param(bias, 0, C, dt, dev);
  }
  Tensor y = empty_like_layout(xc);
  // The statistics the backward pass needs: [C], float64 on the CPU, x's dtype on CUDA; for
  // cuDNN in eval, the running ones shaped [1, C, 1, 1] or [1, C] for the composed gradient.
  Tensor mean, invstd;
  const Shape cshape = x.dim() == 4 ? Shape{1, C, 1, 1} : Shape{1, C};
  const std::vector<int64_t> axes = x.dim() == 4 ? std::vector<int64_t>{0, 2, 3} : std::vector<int64_t>{0};
  if (path == BnPath::Cpu) {
    mean = Tensor::empty({C}, DType::Float64);
    invstd = Tensor::empty({C}, DType::Float64);
    cpu::batch_norm_act_forward(nhwc, training, xc, wc, bc, running_mean, running_var, momentum, eps, lo, hi, y, mean, invstd);
  } else if (training) {
    mean = Tensor::empty({C}, dt, dev);
    invstd = Tensor::empty({C}, dt, dev);
    const Tensor rm_out = track ? running_mean : Tensor(), rv_out = track ? running_var : Tensor();  // updated in place
    if (path == BnPath::CudaOwn)
      cuda::batch_norm_act_train_forward(xc, wc, bc, momentum, eps, rm_out, rv_out, lo, hi, y, mean, invstd);
    else
      cuda::batch_norm_train_forward(xc, wc, bc, momentum, eps, rm_out, rv_out, y, mean, invstd);
  } else {
    Tensor rm = running_mean.detach().contiguous(), rv = running_var.detach().contiguous();
    cuda::batch_norm_infer_forward(xc, wc, bc, rm, rv, eps, y);
    if (any_requires_grad({x, weight, bias})) {  // fixed statistics: y = (x - mean) * invstd * gamma + beta
      NoGradGuard no_grad;
      invstd = reshape(rdiv(1.0, sqrt(add(rv, eps))), cshape);
      mean = reshape(rm, cshape);
      wc = reshape(wc, cshape);
    }
  }
  const bool nx = x.requires_grad(), nw = weight.defined() && weight.requires_grad(), nb = bias.defined() && bias.requires_grad();
  const Tensor yact = fused == BnAct::None ? Tensor() : y.detach();  // the activation's gate
  Tensor out = record(fused == BnAct::None ? "batch_norm" : "batch_norm+act", y, {x, weight, bias}, [=](const Tensor& gy) {
    if (path == BnPath::Cudnn && !training) {  // composed from element-wise ops and sums
      Tensor dx, dw, db;
      if (nx) dx = mul(gy, mul(wc, invstd));
      if (nw) dw = sum(mul(gy, mul(sub(xc, mean), invstd)), axes);
      if (nb) db = sum(gy, axes);
      return std::vector<Tensor>{dx, dw, db};
    }
    Tensor dy = same_layout_as(gy, xc);
    if (path == BnPath::Cudnn) {  // cuDNN writes all three
      Tensor dx = Tensor::empty(xc.shape(), dt, dev), dw = Tensor::empty({C}, dt, dev), db = Tensor::empty({C}, dt, dev);
      cuda::batch_norm_train_backward(xc, dy, wc, mean, invstd, eps, dx, dw, db);
      return std::vector<Tensor>{nx ? dx : Tensor(), nw ? dw : Tensor(), nb ? db : Tensor()};
    }
    Tensor dx = nx ? empty_like_layout(xc) : Tensor();
    Tensor dw = nw ? Tensor::empty({C}, dt, dev) : Tensor();
    Tensor db = nb ? Tensor::empty({C}, dt, dev) : Tensor();
    if (path == BnPath::Cpu) {
      cpu::batch_norm_act_backward(nhwc, training, xc, dy, yact, lo, hi, mean, invstd, wc, dx, dw, db);
    } else {
      cuda::batch_norm_act_train_backward(xc, dy, yact, lo, hi, wc, mean, invstd, dx, dw, db);
    }
    return std::vector<Tensor>{dx, dw, db};
  });
  if (fused == act) return out;
  return act == BnAct::ReLU ? relu(out) : relu6(out);  // after cuDNN's batch norm
}

}  // namespace pfq
