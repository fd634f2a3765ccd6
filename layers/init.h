/// \file
/// init.h — seeded parameter initialisers (layers/), PyTorch's definitions: fan_in/fan_out as
/// torch.nn.init computes them (fan_in = size(1) * receptive field, fan_out = size(0) * receptive
/// field), kaiming_uniform_(a = sqrt(5)) as nn.Conv2d/nn.Linear default, kaiming_normal_ (fan_out,
/// ReLU gain) as torchvision's models use. Values are drawn on the CPU in draw order, then copied.
#pragma once
#include "core/tensor.h"

namespace pfq::init {

int64_t fan_in(const Tensor& w);   ///< requires w.dim() >= 2
int64_t fan_out(const Tensor& w);  ///< requires w.dim() >= 2
/// Fills `t` uniformly in [lo, hi) from `g`, in place.
void uniform_(Tensor& t, double lo, double hi, Generator& g);
/// Fills `t` from a normal distribution from `g`, in place.
void normal_(Tensor& t, double mean, double std, Generator& g);
/// Fills `t` with `value`, in place.
void constant_(Tensor& t, double value);
/// kaiming_uniform_(a = sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in)) — PyTorch's conv/linear default.
void kaiming_uniform_default_(Tensor& w, Generator& g);
/// kaiming_normal_(mode = "fan_out", nonlinearity = "relu"): N(0, 2 / fan_out).
void kaiming_normal_fan_out_(Tensor& w, Generator& g);

}  // namespace pfq::init
