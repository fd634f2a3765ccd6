/// \file
/// bn_fold.h — folding an eval-mode BatchNorm2d into the preceding Conv2d (quant/), as used for
/// deployment after QAT and by the folded QAT module (qat.h): w' = s * w, b' = beta + s * (b - mu),
/// s = gamma / sqrt(running_var + eps), and a conv output_correction map c becomes s * c.
/// Left out: folding BN into Linear, BN before conv, BN without running statistics.
#pragma once
#include <memory>

#include "layers/batchnorm.h"
#include "layers/conv.h"

namespace pfq::quant {

/// s [OC] = gamma / sqrt(running_var + eps) (gamma = 1 without affine), computed in float64 and
/// returned in the BN's dtype. No autograd. requires: bn.num_features == OC, running statistics.
Tensor bn_fold_scale(const BatchNorm2d& bn);

/// A new Conv2d (same geometry, with bias) computing conv followed by bn in eval mode:
/// weight [OC, IC/groups, KH, KW] = s * w, bias [OC] = beta + s * (b - mu), output_correction
/// [OC, OH, OW] (when the conv has one) = s * correction. The inputs are not modified.
/// requires: conv.out_channels == bn.num_features, bn.track_running_stats.
std::shared_ptr<Conv2d> fold_bn(const Conv2d& conv, const BatchNorm2d& bn);

}  // namespace pfq::quant
