/// \file
/// learned_quant.h — fake-quantize ops with their own gradients: PACT (learnable clip alpha),
/// LSQ (learnable step) and DoReFa weights. Each is one fused CPU or CUDA kernel call forward and
/// one backward (quant/fake_quant_kernel.h). The quantizer classes (quantizer.h) own the learnable
/// tensors and call these. A parameter of 1 element acts per tensor; of C > 1 elements, per
/// index of axis 0 of x (x.size(0) == C).
#pragma once
#include "core/ops.h"

namespace pfq::quant {

/// PACT (Choi et al. 2018), unsigned b-bit (b in 1..8), alpha [1] or [C], every alpha > 0:
///   y = clip(x, 0, alpha),  s = alpha / (2^b - 1),  out = round_half_even(y / s) * s
/// Gradients (the paper's STE; the rounding error's dependence on alpha is ignored):
///   dx = g where 0 <= x < alpha, else 0;   dalpha = sum of g over the elements with x >= alpha.
Tensor pact_quantize(const Tensor& x, const Tensor& alpha, int bits);

/// LSQ (Esser et al. 2020). Grid: signed -Qn..Qp with Qn = 2^(b-1), Qp = 2^(b-1) - 1 (the
/// paper's full signed range); unsigned 0..Qp with Qp = 2^b - 1. bits 2..8.
struct LsqBounds {
  /// Codes go down to -qn.
  int64_t qn = 0;
  /// Codes go up to qp.
  int64_t qp = 0;
};
/// LSQ's code range for `bits` (signed: [-2^(b-1), 2^(b-1) - 1], else [0, 2^b - 1]).
LsqBounds lsq_bounds(int bits, bool is_signed);
/// step [1] or [C], every step > 0; with v = x / s:
///   out = round_half_even(clip(v, -Qn, Qp)) * s
///   dx = g where -Qn <= v <= Qp, else 0 (STE through the rounding)
///   ds = gs * sum of g * { round(v) - v if -Qn < v < Qp;  -Qn if v <= -Qn;  Qp if v >= Qp }
/// with the paper's gradient scale gs = 1 / sqrt(N * Qp), N = elements sharing the step
/// (x.numel() per tensor, x.numel() / C per channel).
Tensor lsq_quantize(const Tensor& x, const Tensor& step, int bits, bool is_signed);
/// LSQ's initial step: 2 * mean|x| / sqrt(Qp), per tensor ([1]) or per channel ([C]);
/// 1 where mean|x| is 0. No autograd.
Tensor lsq_init_step(const Tensor& x, int bits, bool is_signed, bool per_channel);

/// DoReFa weights (Zhou et al. 2016), bits 1..8, n = 2^b - 1, t = tanh(x):
///   m = max |t| (per tensor, or per index of axis 0 when per_channel; m = 1 if it is 0)
///   out = 2 * quantize_n(t / (2 m) + 1/2) - 1,   quantize_n(r) = round_half_even(n r) / n
/// so the output lies on n + 1 levels in [-1, 1] (0 is not a level: n is odd).
/// Gradient: straight through the rounding, m held constant (as in common implementations):
///   dx = g * (1 - t^2) / m.
Tensor dorefa_quantize(const Tensor& x, int bits, bool per_channel);

}  // namespace pfq::quant
