// norm.cpp — the batch_norm op (train: batch statistics + running-statistics update;
// eval: running statistics) and its gradient w.r.t. input, weight (gamma) and bias (beta).
#include <cmath>
#include <vector>

#include "core/cpu/norm_pool.h"
#include "core/ops.h"
#include "core/ops/op_util.h"

namespace pfq {

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum, double eps) {
  require_cpu(x, "batch_norm");
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
  Tensor xc = x.detach().contiguous();
  Tensor wc = weight.defined() ? weight.detach().contiguous() : Tensor();
  Tensor bc = bias.defined() ? bias.detach().contiguous() : Tensor();
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  auto mean = std::make_shared<std::vector<double>>(C);
  auto invstd = std::make_shared<std::vector<double>>(C);
  PFQ_DISPATCH_FLOAT(x.dtype(), "batch_norm", [&] {
    const scalar_t* pw = wc.defined() ? wc.data<scalar_t>() : nullptr;
    const scalar_t* pb = bc.defined() ? bc.data<scalar_t>() : nullptr;
    if (training) {
      std::vector<double> var(C);
      cpu::batch_norm_train_forward<scalar_t>(N, C, S, xc.data<scalar_t>(), pw, pb, eps, y.data<scalar_t>(), mean->data(),
                                              invstd->data(), var.data());
      if (running_mean.defined() && running_var.defined()) {
        PFQ_CHECK(running_mean.is_contiguous() && running_var.is_contiguous(), "batch_norm: running statistics must be contiguous");
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
      cpu::batch_norm_apply<scalar_t>(N, C, S, xc.data<scalar_t>(), mean->data(), invstd->data(), pw, pb, y.data<scalar_t>());
    }
  });
  const bool nx = x.requires_grad(), nw = weight.defined() && weight.requires_grad(), nb = bias.defined() && bias.requires_grad();
  return record("batch_norm", y, {x, weight, bias}, [=](const Tensor& gy) {
    Tensor dy = gy.contiguous();
    Tensor dx = nx ? Tensor::empty(xc.shape(), xc.dtype()) : Tensor();
    Tensor dw = nw ? Tensor::empty({C}, xc.dtype()) : Tensor();
    Tensor db = nb ? Tensor::empty({C}, xc.dtype()) : Tensor();
    PFQ_DISPATCH_FLOAT(xc.dtype(), "batch_norm_backward", [&] {
      cpu::batch_norm_backward<scalar_t>(N, C, S, training, xc.data<scalar_t>(), dy.data<scalar_t>(), mean->data(), invstd->data(),
                                         wc.defined() ? wc.data<scalar_t>() : nullptr, nx ? dx.data<scalar_t>() : nullptr,
                                         nw ? dw.data<scalar_t>() : nullptr, nb ? db.data<scalar_t>() : nullptr);
    });
    return std::vector<Tensor>{dx, dw, db};
  });
}

}  // namespace pfq
