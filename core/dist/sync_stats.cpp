// sync_stats.cpp — all_reduce_sum and sync_batch_norm (sync_stats.h), composed of generic ops so
// their gradients are the ops' own and every device that has those ops runs them.
#include "core/dist/sync_stats.h"

#include "core/autograd.h"
#include "core/dist/communicator.h"

namespace pfq::dist {

Tensor all_reduce_sum(const Tensor& x) {
  Tensor total = x.detach().contiguous().clone();
  world().all_reduce(total, ReduceOp::Sum);
  return record("all_reduce_sum", total, {x}, [](const Tensor& g) {
    Tensor gt = g.contiguous().clone();
    world().all_reduce(gt, ReduceOp::Sum);
    return std::vector<Tensor>{gt};
  });
}

GlobalMoments global_batch_moments(const Tensor& x, const char* op) {
  PFQ_CHECK(x.dim() >= 2, op, ": expected x [N, C, ...], got ", shape_str(x.shape()));
  const int64_t c = x.size(1);
  std::vector<int64_t> axes = {0};
  Shape bshape = {1, c};
  for (int64_t d = 2; d < x.dim(); ++d) axes.push_back(d), bshape.push_back(1);
  Tensor count = Tensor::scalar(static_cast<double>(x.numel() / c), DType::Float64);
  world().all_reduce(count, ReduceOp::Sum);
  const double m = count.item();
  PFQ_CHECK(m > 1, op, ": ", m, " values per channel over all ranks; batch statistics need at least 2");
  Tensor mean = all_reduce_sum(sum(x, axes)) / m;
  Tensor centred = x - reshape(mean, bshape);
  return {mean, all_reduce_sum(sum(square(centred), axes)) / m, centred, m};
}

Tensor sync_batch_norm(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias_in, const Tensor& running_mean,
                       const Tensor& running_var, double momentum, double eps, BnAct act) {
  // In float64 throughout, as the fused kernels accumulate (core/cpu/batchnorm.cpp): a BN bias's
  // gradient is a sum over N*H*W terms that nearly cancel, which float32 sums get wrong by
  // percents; the output returns in x's dtype.
  const auto f64 = [](const Tensor& t) { return t.defined() ? t.to(DType::Float64) : t; };
  const Tensor x = f64(x_in), weight = f64(weight_in), bias = f64(bias_in);
  PFQ_CHECK(x.dim() == 4 || x.dim() == 2, "sync_batch_norm: expected x [N, C, H, W] or [N, C], got ", shape_str(x.shape()));
  const int64_t c = x.size(1);
  const Shape bshape = x.dim() == 4 ? Shape{1, c, 1, 1} : Shape{1, c};
  const auto [mean, var, centred, m] = global_batch_moments(x, "sync_batch_norm");
  Tensor scale = pow(var + eps, -0.5);
  if (weight.defined()) scale = scale * weight;
  Tensor y = centred * reshape(scale, bshape);
  if (bias.defined()) y = y + reshape(bias, bshape);
  if (running_mean.defined()) {
    NoGradGuard ng;
    Tensor rm = add(mul(f64(running_mean), 1.0 - momentum), mul(mean.detach(), momentum));
    Tensor rv = add(mul(f64(running_var), 1.0 - momentum), mul(var.detach(), momentum * m / (m - 1)));
    Tensor(running_mean).copy_(rm);
    Tensor(running_var).copy_(rv);
  }
  if (act == BnAct::ReLU) y = relu(y);
  if (act == BnAct::ReLU6) y = relu6(y);
  return y.to(x_in.dtype());
}

}  // namespace pfq::dist
