/// \file
/// qparams.h — what a QAT model's quantizers stand for in integers (quant/): an activation
/// quantizer's scale, zero point and integer range, and a weight quantizer's integer codes and
/// per-channel scales, recovered exactly as the fake-quantized forward computes them, and a QAT
/// conv's eval-mode weight, bias and correction with its BN folded in. Shared by
/// the integer converter (quant/integer/) and the ONNX exporter (onnx/). Leaves out: per-channel
/// activation quantizers, quantizers without a fixed range (minmax activations).
#pragma once
#include <string>

#include "quant/qat.h"

namespace pfq::quant {

/// An activation quantizer's grid in its own integers: real = s * (q - z), q in [qmin, qmax].
struct ActQ {
  /// Scale.
  float s = 1;
  /// Zero point and code range.
  ///@{
  int64_t z = 0, qmin = 0, qmax = 255;
  ///@}
  /// Bit width.
  int bits = 8;
  /// Signed codes.
  bool is_signed = false;
};

/// The grid of an enabled ema, pact or lsq activation quantizer. Errors start with `who` and
/// name `path`: identity (bits >= 32), disabled, per-channel, uncalibrated ema, no fixed range.
ActQ act_qparams(FakeQuantize& fq, const std::string& path, const char* who);

/// The integer codes of a weight w [OC, ...] under its weight quantizer.
struct WeightCodes {
  Tensor codes;  ///< int8, w's shape: real weight = scale[oc] * code
  Tensor scale;  ///< float32 [OC] (per-tensor quantizers repeat one scale)
  int bits = 8;  ///< bits the codes need (DoReFa: one more than its nominal bits)
};
/// Fake-quantizes w with `wq` (exactly as the QAT forward does) and recovers codes and scales;
/// throws (starting with `who`, naming `path`) when a value is off the grid or out of int8.
WeightCodes quantize_weight(FakeQuantize& wq, const Tensor& w, const std::string& path, const char* who);

/// What a QatConv2d computes in eval mode, written as conv(x, q(weight)) + bias + correction:
/// exactly its forward's conv(x, q(s * w)) + beta + s * (b + corr - mu) with s = gamma / sigma_r
/// when its BN is folded (quant/qat.h), else conv(x, q(w)) + b + corr.
struct QatConvEval {
  Tensor weight;              ///< float32 [OC, IC/groups, KH, KW]: s * w, before weight quantization
  std::vector<double> bias;   ///< [OC]: beta + s * (b - mu), or b (0 without bias)
  Tensor correction;          ///< float64 [OC, OH, OW]: s * corr; undefined without a correction
};
/// The conv's real weight, bias and correction after folding, for the integer converter and the ONNX exporter.
QatConvEval qat_conv_eval(const QatConv2d& q);

}  // namespace pfq::quant
