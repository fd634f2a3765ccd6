/// \file
/// sgd.h — stochastic gradient descent with momentum, dampening, Nesterov and L2 weight
/// decay, exactly PyTorch's torch.optim.SGD update (core/optim). Weight decay can skip
/// BatchNorm/bias parameters (no_decay in optimizer.h). Runs on CPU and CUDA. Left out: maximize.
#pragma once
#include "core/optim/optimizer.h"

namespace pfq::optim {

/// Hyperparameters of SGD.
struct SgdOptions {
  /// Learning rate (>= 0).
  double lr = 0.1;
  double momentum = 0;      ///< in [0, 1)
  double dampening = 0;     ///< in [0, 1]; must be 0 with nesterov
  bool nesterov = false;    ///< requires momentum > 0
  double weight_decay = 0;  ///< >= 0, added to the gradient (L2)
  bool exclude_bn_bias = false;  ///< no weight decay where no_decay(name, param)
};

/// Per parameter, with g its gradient and wd its weight decay (0 when excluded):
///   d = g + wd * p
///   momentum > 0: buf = d on the first update, else buf = momentum * buf + (1 - dampening) * d;
///                 d = nesterov ? d + momentum * buf : buf
///   p = p - lr * d
/// State: "momentum_buffer.<name>" (only with momentum > 0).
class Sgd : public Optimizer {
 public:
  /// SGD over `params`; validates the options.
  Sgd(std::vector<ParamRef> params, const SgdOptions& options);
  /// The hyperparameters.
  const SgdOptions& options() const { return opt_; }

 protected:
  void update(size_t i, const Tensor& grad) override;

 private:
  SgdOptions opt_;
  std::vector<double> decay_;  ///< weight decay per parameter
};

}  // namespace pfq::optim
