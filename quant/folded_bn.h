// folded_bn.h — the training-mode tail of a BN-folded QAT convolution (QatConv2d, exact batch
// statistics) as one op with fused CPU kernels:
//   z   = z0 + bmap                        (z0 = conv(x, w), the float conv; bmap = b + corr)
//   mu, var = per-channel batch mean and biased variance of z over (N, H, W)
//   out = y * sigma_r / sqrt(var + eps) + gamma * (bmap - mu) / sqrt(var + eps) + beta
// with y = conv(x, q(s * w)) the quantized conv and sigma_r = sqrt(var_running + eps) (no
// gradient). Gradients reach y, z0, bmap, gamma and beta (through the batch statistics too).
// When running_mean/running_var are given they are updated in place like BatchNorm2d
// (momentum, unbiased variance). On CUDA the same formula runs as a composition of ops.
#pragma once
#include "core/tensor.h"

namespace pfq::quant {

// y, z0 [N, C, H, W]; bmap [C, 1, 1] or [C, H, W]; gamma, beta, sigma_r [C]; running_* [C] or
// undefined (no update). Same dtype and device for all.
Tensor folded_bn_train(const Tensor& y, const Tensor& z0, const Tensor& bmap, const Tensor& gamma, const Tensor& beta,
                       const Tensor& sigma_r, const Tensor& running_mean, const Tensor& running_var, double momentum,
                       double eps);

// The same formula composed of generic ops (the CUDA path, and the tests' reference).
Tensor folded_bn_train_reference(const Tensor& y, const Tensor& z0, const Tensor& bmap, const Tensor& gamma,
                                 const Tensor& beta, const Tensor& sigma_r, const Tensor& running_mean,
                                 const Tensor& running_var, double momentum, double eps);

}  // namespace pfq::quant
