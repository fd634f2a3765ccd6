// folded_bn.h — the training-mode tail of a BN-folded QAT convolution (QatConv2d) as one op
// with fused CPU kernels:
//   z   = z0 * zscale + bmap               (per channel; bmap = b + corr)
//   mu, var = per-channel batch mean and biased variance of z over (N, H, W)
//   out = y * sigma_r / sqrt(var + eps) + gamma * (bmap - mu) / sqrt(var + eps) + beta
// with y = conv(x, q(s * w)) the quantized conv and sigma_r = sqrt(var_running + eps) (no
// gradient). The statistics' source: bn_stats "float" passes z0 = conv(x, w), the float conv,
// and no zscale (exact, Krishnamoorthi 2018); "quantized" passes z0 = y and zscale = 1 / s
// (PyTorch's ConvBn QAT, one conv). Gradients reach y, z0, zscale, bmap, gamma and beta,
// through the batch statistics too. When running_mean/running_var are given they are updated in
// place like BatchNorm2d (momentum, unbiased variance). On CUDA the formula runs as a composition
// of generic ops (folded_bn_train_reference).
#pragma once
#include "core/tensor.h"

namespace pfq::quant {

struct FoldedBnArgs {
  Tensor y;       // [N, C, H, W]
  Tensor z0;      // [N, C, H, W] (may be y itself)
  Tensor zscale;  // [C], or undefined for 1
  Tensor bmap;    // [C, 1, 1] or [C, H, W]
  Tensor gamma, beta, sigma_r;          // [C]
  Tensor running_mean, running_var;     // [C] contiguous, or both undefined (no update)
  double momentum = 0.1, eps = 1e-5;
};

Tensor folded_bn_train(const FoldedBnArgs& a);
// The same formula composed of generic ops (the CUDA path, and the tests' reference).
Tensor folded_bn_train_reference(const FoldedBnArgs& a);

}  // namespace pfq::quant
