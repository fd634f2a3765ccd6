// qparams.h — what a QAT model's quantizers stand for in integers (quant/): an activation
// quantizer's scale, zero point and integer range, and a weight quantizer's integer codes and
// per-channel scales, recovered exactly as the fake-quantized forward computes them. Shared by
// the integer converter (quant/integer/) and the ONNX exporter (onnx/). Leaves out: per-channel
// activation quantizers, quantizers without a fixed range (minmax activations).
#pragma once
#include <string>

#include "quant/qat.h"

namespace pfq::quant {

// An activation quantizer's grid in its own integers: real = s * (q - z), q in [qmin, qmax].
struct ActQ {
  float s = 1;
  int64_t z = 0, qmin = 0, qmax = 255;
  int bits = 8;
  bool is_signed = false;
};

// The grid of an enabled ema, pact or lsq activation quantizer. Errors start with `who` and
// name `path`: identity (bits >= 32), disabled, per-channel, uncalibrated ema, no fixed range.
ActQ act_qparams(FakeQuantize& fq, const std::string& path, const char* who);

// The integer codes of a weight w [OC, ...] under its weight quantizer.
struct WeightCodes {
  Tensor codes;  // int8, w's shape: real weight = scale[oc] * code
  Tensor scale;  // float32 [OC] (per-tensor quantizers repeat one scale)
  int bits = 8;  // bits the codes need (DoReFa: one more than its nominal bits)
};
// Fake-quantizes w with `wq` (exactly as the QAT forward does) and recovers codes and scales;
// throws (starting with `who`, naming `path`) when a value is off the grid or out of int8.
WeightCodes quantize_weight(FakeQuantize& wq, const Tensor& w, const std::string& path, const char* who);

}  // namespace pfq::quant
