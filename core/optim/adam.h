/// \file
/// adam.h — Adam (L2 weight decay added to the gradient) and AdamW (decoupled decay
/// p *= 1 - lr * wd), PyTorch's torch.optim.Adam/AdamW formulas with bias correction and eps
/// outside the square root (core/optim). CPU and CUDA. Left out: amsgrad, maximize, capturable.
#pragma once
#include "core/optim/optimizer.h"

namespace pfq::optim {

/// Hyperparameters of Adam and AdamW.
struct AdamOptions {
  /// Learning rate (>= 0).
  double lr = 1e-3;
  double beta1 = 0.9;       ///< in [0, 1)
  double beta2 = 0.999;     ///< in [0, 1)
  double eps = 1e-8;        ///< >= 0
  double weight_decay = 0;  ///< >= 0 (AdamW: PyTorch's default is 1e-2, see AdamW)
  bool exclude_bn_bias = false;  ///< no weight decay where no_decay(name, param)
};

/// Per parameter with its own update count t (counted only on steps where it has a gradient):
///   AdamW: p = p * (1 - lr * wd)          Adam: g = g + wd * p
///   m = lerp(m, g, 1 - beta1)             v = beta2 * v + (1 - beta2) * g * g
///   p = p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
/// State: "exp_avg.<name>", "exp_avg_sq.<name>", "step.<name>" (int64 t).
class Adam : public Optimizer {
 public:
  /// Adam (L2 weight decay added to the gradient) over `params`; validates the options.
  Adam(std::vector<ParamRef> params, const AdamOptions& options);
  /// The hyperparameters.
  const AdamOptions& options() const { return opt_; }
  /// True for AdamW (weight decay applied to the weights, not the gradient).
  bool decoupled() const { return decoupled_; }

 protected:
  /// For AdamW: the optimizer kind name and whether weight decay is decoupled.
  Adam(const char* kind, std::vector<ParamRef> params, const AdamOptions& options, bool decoupled);
  void update(size_t i, const Tensor& grad) override;

 private:
  AdamOptions opt_;
  bool decoupled_;
  std::vector<double> decay_;  ///< weight decay per parameter
};

/// AdamW: Adam with decoupled weight decay (Loshchilov & Hutter); PyTorch's default weight decay 1e-2.
class AdamW : public Adam {
 public:
  /// AdamW over `params`.
  AdamW(std::vector<ParamRef> params, const AdamOptions& options = AdamOptions{.weight_decay = 1e-2});
};

}  // namespace pfq::optim
