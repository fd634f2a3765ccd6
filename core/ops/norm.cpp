// norm.cpp — the batch_norm op (train: batch statistics + running-statistics update;
// eval: running statistics) and its gradient w.r.t. input, weight (gamma) and bias (beta).
// CPU kernels in core/cpu/batchnorm.cpp; on CUDA, training runs pfq's own kernels (activation
// fused, core/cuda/batchnorm_own.cu) and eval cuDNN's (core/cuda/dnn.h).
#include <cmath>
#include <limits>
#include <vector>

#include "core/backend_options.h"
#include "core/cpu/norm_pool.h"
#include "core/cuda/dnn.h"
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

// batch_norm on CUDA (arguments already checked). Training: cuDNN forward with the running-
// statistics update and cuDNN backward from the saved batch statistics. Eval: cuDNN inference;
// its backward (fixed statistics) is composed from element-wise ops and sums.
Tensor batch_norm_cuda(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                       const Tensor& running_var, bool training, double momentum, double eps, int64_t N, int64_t C, int64_t S) {
  const DType dt = x.dtype();
  const Device dev = x.device();
  PFQ_CHECK(eps >= cuda::batch_norm_min_eps(), "batch_norm on CUDA: eps ", eps, " below cuDNN's minimum ", cuda::batch_norm_min_eps());
  Tensor xc = x.detach().contiguous();
  Tensor wc = channel_param(weight, 1, C, dt, dev), bc = channel_param(bias, 0, C, dt, dev);
  Tensor y = Tensor::empty(x.shape(), dt, dev);
  const bool nx = x.requires_grad(), nw = weight.defined() && weight.requires_grad(), nb = bias.defined() && bias.requires_grad();
  if (training) {
    const bool track = running_mean.defined() && running_var.defined();
    Tensor save_mean = Tensor::empty({C}, dt, dev), save_invstd = Tensor::empty({C}, dt, dev);
    cuda::batch_norm_train_forward(dt, dev.index, N, C, S, xc.raw_data(), wc.raw_data(), bc.raw_data(), momentum, eps,
                                   track ? running_mean.raw_data() : nullptr, track ? running_var.raw_data() : nullptr,
                                   y.raw_data(), save_mean.raw_data(), save_invstd.raw_data());
    return record("batch_norm", y, {x, weight, bias}, [=](const Tensor& gy) {
      Tensor dy = gy.contiguous();
      Tensor dx = Tensor::empty(xc.shape(), dt, dev), dw = Tensor::empty({C}, dt, dev), db = Tensor::empty({C}, dt, dev);
      cuda::batch_norm_train_backward(dt, dev.index, N, C, S, xc.raw_data(), dy.raw_data(), wc.raw_data(), save_mean.raw_data(),
                                      save_invstd.raw_data(), eps, dx.raw_data(), dw.raw_data(), db.raw_data());
      return std::vector<Tensor>{nx ? dx : Tensor(), nw ? dw : Tensor(), nb ? db : Tensor()};
    });
  }
  Tensor rm = running_mean.detach().contiguous(), rv = running_var.detach().contiguous();
  cuda::batch_norm_infer_forward(dt, dev.index, N, C, S, xc.raw_data(), wc.raw_data(), bc.raw_data(), rm.raw_data(), rv.raw_data(),
                                 eps, y.raw_data());
  if (!any_requires_grad({x, weight, bias})) return y;
  // Fixed statistics: y = xhat * gamma + beta with xhat = (x - mean) * invstd, per channel.
  const Shape cshape = x.dim() == 4 ? Shape{1, C, 1, 1} : Shape{1, C};
  const std::vector<int64_t> axes = x.dim() == 4 ? std::vector<int64_t>{0, 2, 3} : std::vector<int64_t>{0};
  Tensor invstd, mean_c, gamma_c;
  {
    NoGradGuard no_grad;
    invstd = reshape(rdiv(1.0, sqrt(add(rv, eps))), cshape);
    mean_c = reshape(rm, cshape);
    gamma_c = reshape(wc, cshape);
  }
  return record("batch_norm", y, {x, weight, bias}, [=](const Tensor& gy) {
    Tensor dx, dw, db;
    if (nx) dx = mul(gy, mul(gamma_c, invstd));
    if (nw) dw = sum(mul(gy, mul(sub(xc, mean_c), invstd)), axes);
    if (nb) db = sum(gy, axes);
    return std::vector<Tensor>{dx, dw, db};
  });
}

// batch_norm in training on CUDA through pfq's own kernels (core/cuda/batchnorm_own.cu), the
// activation fused as on the CPU: applied in the forward pass, its gate (from the saved output)
// inside the backward one.
Tensor batch_norm_cuda_own(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                           const Tensor& running_var, double momentum, double eps, int64_t N, int64_t C, int64_t S, BnAct act) {
  const DType dt = x.dtype();
  const Device dev = x.device();
  const ActBounds bounds = act_bounds(act);
  const double lo = bounds.lo, hi = bounds.hi;
  Tensor xc = x.detach().contiguous();
  Tensor wc = channel_param(weight, 1, C, dt, dev), bc = channel_param(bias, 0, C, dt, dev);
  Tensor y = Tensor::empty(x.shape(), dt, dev);
  const bool track = running_mean.defined() && running_var.defined();
  Tensor save_mean = Tensor::empty({C}, dt, dev), save_invstd = Tensor::empty({C}, dt, dev);
  cuda::batch_norm_act_train_forward(dt, dev.index, N, C, S, xc.raw_data(), wc.raw_data(), bc.raw_data(), momentum, eps,
                                     track ? running_mean.raw_data() : nullptr, track ? running_var.raw_data() : nullptr, lo, hi,
                                     y.raw_data(), save_mean.raw_data(), save_invstd.raw_data());
  const bool nx = x.requires_grad(), nw = weight.defined() && weight.requires_grad(), nb = bias.defined() && bias.requires_grad();
  const Tensor yact = act == BnAct::None ? Tensor() : y.detach();  // the activation's gate
  return record(act == BnAct::None ? "batch_norm" : "batch_norm+act", y, {x, weight, bias}, [=](const Tensor& gy) {
    Tensor dy = gy.contiguous();
    Tensor dx = nx ? Tensor::empty(xc.shape(), dt, dev) : Tensor();
    Tensor dw = nw ? Tensor::empty({C}, dt, dev) : Tensor();
    Tensor db = nb ? Tensor::empty({C}, dt, dev) : Tensor();
    cuda::batch_norm_act_train_backward(dt, dev.index, N, C, S, xc.raw_data(), dy.raw_data(), yact.defined() ? yact.raw_data() : nullptr,
                                        lo, hi, wc.raw_data(), save_mean.raw_data(), save_invstd.raw_data(),
                                        nx ? dx.raw_data() : nullptr, nw ? dw.raw_data() : nullptr, nb ? db.raw_data() : nullptr);
    return std::vector<Tensor>{dx, dw, db};
  });
}

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
  if (training && running_mean.defined() && running_var.defined())  // updated in place
    PFQ_CHECK(running_mean.is_contiguous() && running_var.is_contiguous(), "batch_norm: running statistics must be contiguous");
  if (x.device().is_cuda()) {
    if (training && backend_options().cuda_bn == CudaBatchNorm::Own && cuda::batch_norm_own_fits(N, C, S))
      return batch_norm_cuda_own(x, weight, bias, running_mean, running_var, momentum, eps, N, C, S, act);
    // cuDNN's batch norm (eval, or PFQ_CUDA_BN=cudnn), then the activation op
    Tensor y = batch_norm_cuda(x, weight, bias, running_mean, running_var, training, momentum, eps, N, C, S);
    return act == BnAct::ReLU ? relu(y) : act == BnAct::ReLU6 ? relu6(y) : y;
  }
  const ActBounds bounds = act_bounds(act);
  const double lo = bounds.lo, hi = bounds.hi;
  // channels-last input (layout.h): the [N*H*W, C] kernels, output and gradient channels-last
  const bool nhwc = is_strictly_channels_last(x);
  const int64_t M = N * S;
  Tensor xc = nhwc ? x.detach() : x.detach().contiguous();
  Tensor wc = weight.defined() ? weight.detach().contiguous() : Tensor();
  Tensor bc = bias.defined() ? bias.detach().contiguous() : Tensor();
  Tensor y = empty_like_layout(xc);
  auto mean = std::make_shared<std::vector<double>>(C);
  auto invstd = std::make_shared<std::vector<double>>(C);
  PFQ_DISPATCH_FLOAT(x.dtype(), "batch_norm", [&] {
    const scalar_t* pw = wc.defined() ? wc.data<scalar_t>() : nullptr;
    const scalar_t* pb = bc.defined() ? bc.data<scalar_t>() : nullptr;
    if (training) {
      std::vector<double> var(C);
      if (nhwc)
        cpu::batch_norm_train_forward_nhwc<scalar_t>(M, C, xc.data<scalar_t>(), pw, pb, eps, scalar_t(lo), scalar_t(hi), y.data<scalar_t>(),
                                                     mean->data(), invstd->data(), var.data());
      else
        cpu::batch_norm_train_forward<scalar_t>(N, C, S, xc.data<scalar_t>(), pw, pb, eps, scalar_t(lo), scalar_t(hi), y.data<scalar_t>(),
                                                mean->data(), invstd->data(), var.data());
      if (running_mean.defined() && running_var.defined()) {
        scalar_t* rm = running_mean.data<scalar_t>();
        scalar_t* rv = running_var.data<scalar_t>();
        const double unbias = static_cast<double>(N * S) / static_cast<double>(N * S - 1);
        for (int64_t c = 0; c < C; ++c) {
          rm[c] = static_cast<scalar_t>((1 - momentum) * rm[c] + momentum * (*mean)[c]);
          rv[c] = static_cast<scalar_t>((1 - momentum) * rv[c] + momentum * var[c] * unbias);
        }
      }
    } else {
      Tensor rm = running_mean.contiguous(), rv = running_var.contiguous();
      for (int64_t c = 0; c < C; ++c) {
        (*mean)[c] = rm.data<scalar_t>()[c];
        (*invstd)[c] = 1.0 / std::sqrt(static_cast<double>(rv.data<scalar_t>()[c]) + eps);
      }
      if (nhwc)
        cpu::batch_norm_apply_nhwc<scalar_t>(M, C, xc.data<scalar_t>(), mean->data(), invstd->data(), pw, pb, scalar_t(lo), scalar_t(hi),
                                             y.data<scalar_t>());
      else
        cpu::batch_norm_apply<scalar_t>(N, C, S, xc.data<scalar_t>(), mean->data(), invstd->data(), pw, pb, scalar_t(lo), scalar_t(hi),
                                        y.data<scalar_t>());
    }
  });
  const bool nx = x.requires_grad(), nw = weight.defined() && weight.requires_grad(), nb = bias.defined() && bias.requires_grad();
  const Tensor yact = act == BnAct::None ? Tensor() : y.detach();  // the activation's gate
  return record(act == BnAct::None ? "batch_norm" : "batch_norm+act", y, {x, weight, bias}, [=](const Tensor& gy) {
    Tensor dy = same_layout_as(gy, xc);
    Tensor dx = nx ? empty_like_layout(xc) : Tensor();
    Tensor dw = nw ? Tensor::empty({C}, xc.dtype()) : Tensor();
    Tensor db = nb ? Tensor::empty({C}, xc.dtype()) : Tensor();
    PFQ_DISPATCH_FLOAT(xc.dtype(), "batch_norm_backward", [&] {
      const scalar_t* py = yact.defined() ? yact.data<scalar_t>() : nullptr;
      const scalar_t* pg = wc.defined() ? wc.data<scalar_t>() : nullptr;
      scalar_t* pdx = nx ? dx.data<scalar_t>() : nullptr;
      scalar_t* pdw = nw ? dw.data<scalar_t>() : nullptr;
      scalar_t* pdb = nb ? db.data<scalar_t>() : nullptr;
      if (nhwc)
        cpu::batch_norm_backward_nhwc<scalar_t>(M, C, training, xc.data<scalar_t>(), dy.data<scalar_t>(), py, scalar_t(lo), scalar_t(hi),
                                                mean->data(), invstd->data(), pg, pdx, pdw, pdb);
      else
        cpu::batch_norm_backward<scalar_t>(N, C, S, training, xc.data<scalar_t>(), dy.data<scalar_t>(), py, scalar_t(lo), scalar_t(hi),
                                           mean->data(), invstd->data(), pg, pdx, pdw, pdb);
    });
    return std::vector<Tensor>{dx, dw, db};
  });
}

}  // namespace pfq
