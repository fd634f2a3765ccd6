/// \file
/// folded_bn.h — the training-mode tail of a BN-folded QAT convolution (QatConv2d) as one op
/// with fused CPU kernels:
///   z   = z0 * zscale + bmap               (per channel; bmap = b + corr)
///   mu, var = per-channel batch mean and biased variance of z over (N, H, W)
///   out = y * sigma_r / sqrt(var + eps) + gamma * (bmap - mu) / sqrt(var + eps) + beta
/// with y = conv(x, q(s * w)) the quantized conv and sigma_r = sqrt(var_running + eps) (no
/// gradient). The statistics' source: bn_stats "float" passes z0 = conv(x, w), the float conv,
/// and no zscale (exact, Krishnamoorthi 2018); "quantized" passes z0 = y and zscale = 1 / s
/// (PyTorch's ConvBn QAT, one conv). Gradients reach y, z0, zscale, bmap, gamma and beta,
/// through the batch statistics too (z0 == y: one gradient, summed in the kernel). When
/// running_mean/running_var are given they are updated in place like BatchNorm2d (momentum,
/// unbiased variance). On CUDA the formula runs as a composition of generic ops
/// (folded_bn_train_reference).
#pragma once
#include <functional>
#include <optional>
#include <utility>

#include "core/ops.h"
#include "quant/fake_quant.h"

namespace pfq::quant {

/// Inputs of folded_bn_train(): the conv output and the BN's parameters and statistics.
struct FoldedBnArgs {
  Tensor y;       ///< [N, C, H, W]
  Tensor z0;      ///< [N, C, H, W] (may be y itself)
  Tensor zscale;  ///< [C], or undefined for 1
  Tensor bmap;    ///< [C, 1, 1] or [C, H, W]
  /// BN gamma, beta and the running sigma, each [C].
  ///@{
  Tensor gamma, beta, sigma_r;
  ///@}
  /// [C] contiguous, or both undefined (no update).
  ///@{
  Tensor running_mean, running_var;
  ///@}
  /// BN momentum and epsilon.
  ///@{
  double momentum = 0.1, eps = 1e-5;
  ///@}
  /// --sync-bn of a data-parallel run: mu_b and var_b of every rank's batch together
  /// (core/dist/sync_stats.h's all_reduce_sum, gradients summed over the ranks too), through
  /// the composed reference; in a group of one the same formula as without.
  bool sync_stats = false;
};

/// What follows the folded BN in a QAT model, fused into the op: out = fq(act(bn)).
///   act:   ReLU / ReLU6 (None: no activation);
///   range: an activation quantizer that takes the batch range [lo, hi] of act(bn) ([1] tensors
///          in bn's dtype, on its device; what its forward would observe) and returns the range
///          to quantize this batch with, or nullopt for none (an observer still calibrating).
///          Null: act alone. The quantization is fake_quantize_range's with qopt (per tensor).
/// On the fused CPU path (per-channel bias) the batch range comes from each channel's extremes of
/// y (bn is increasing in y per channel, as are act and the rounding), not from a pass over bn,
/// and the backward gates the gradient by act's and the quantizer's pass-through ranges inside
/// the op. Elsewhere the tail is composed of the generic ops (folded_bn_train_tail_reference).
struct FoldedBnTail {
  /// Activation applied after the BN in the same pass.
  BnAct act = BnAct::None;
  /// Optional activation quantizer range from the batch's (lo, hi); empty function: no quantization.
  std::function<std::optional<std::pair<Tensor, Tensor>>(const Tensor& lo, const Tensor& hi)> range;
  /// The activation quantizer's grid.
  FakeQuantOptions qopt{.bits = 8, .symmetric = false, .per_channel = false};
};

/// The training-mode folded-BN output with its activation and fake quantization (see the file comment).
Tensor folded_bn_train(const FoldedBnArgs& a, const FoldedBnTail& tail = {});
/// The same formula composed of generic ops (the CUDA path, and the tests' reference).
Tensor folded_bn_train_reference(const FoldedBnArgs& a);
/// folded_bn_train(a), then the tail with generic ops: relu / relu6, observe_range, tail.range,
/// fake_quantize_range (what the unfused modules compute).
Tensor folded_bn_train_tail_reference(const FoldedBnArgs& a, const FoldedBnTail& tail);

}  // namespace pfq::quant
