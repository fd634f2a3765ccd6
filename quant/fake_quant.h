/// \file
/// fake_quant.h — the fused fake-quantize op of pfq::quant: observe a range (or take one),
/// quantize uniformly and dequantize in one kernel call, with a straight-through gradient.
/// Used by the named quantizers (quantizer.h) and by QAT wrappers. CPU and CUDA kernels
/// (quant/fake_quant_kernel.h), same formulas and rounding. Left out: integer export.
#pragma once
#include <utility>

#include "core/ops.h"
#include "quant/fake_quant_kernel.h"

namespace pfq::quant {

/// bits: 2..8 uniform; 1 = binary sign (symmetric only, weights).
/// symmetric: signed narrow grid q in [-(2^(b-1)-1), 2^(b-1)-1], z = 0, s = max|x| / (2^(b-1)-1)
///   (docs/method.md section 4: step = max|w'| / (2^(b-1) - 1)).
/// asymmetric: unsigned grid q in [0, 2^b - 1]; the range [lo, hi] is widened to contain 0,
///   s = (hi - lo) / (2^b - 1), z = clamp(round(-lo / s), 0, 2^b - 1): 0 is exactly representable.
/// per_channel: one range per index of axis 0 (output channel of a conv/linear weight [OC, ...]).
struct FakeQuantOptions {
  /// Bit width (2..8).
  int bits = 8;
  /// Signed grid symmetric around 0 (z = 0); false: unsigned with a zero point.
  bool symmetric = true;
  /// One scale per index of axis 0 (else one for the tensor).
  bool per_channel = false;
};

/// out has x's shape and dtype; scale and zero_point are [C] in x's dtype (C = 1 per tensor,
/// x.size(0) per channel). zero_point holds integers (0 when symmetric).
struct FakeQuantResult {
  /// The fake-quantized values (same shape as the input).
  Tensor out;
  /// The scale(s) used ([1] or [C]).
  Tensor scale;
  /// The zero point(s) used ([1] or [C]).
  Tensor zero_point;
};

/// Validates options (bits range, 1-bit only symmetric) with a clear error naming `who`.
void check_fake_quant_options(const FakeQuantOptions& opt, const char* who);
/// The integer grid of opt (bits >= 2).
cpu::QuantGrid grid_of(const FakeQuantOptions& opt);

/// Observes the range of x (per tensor or per channel) and fake-quantizes it, in one kernel:
///   q = clamp(round_half_even(x / s) + z, qmin, qmax),  out = (q - z) * s
/// Rounding is half to even (IEEE nearbyint): 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> -0.
/// Degenerate range (all zeros, or a step below the smallest normal float): s = 1, z = 0, so
/// the output is 0 / the nearest grid point and nothing is NaN. Non-finite inputs propagate.
/// Gradient (straight-through): dx = g where (qmin - z) * s <= x <= (qmax - z) * s, else 0;
/// the range is treated as a constant (no gradient through min/max).
/// bits == 1 (binary sign, XNOR-Net / BinaryConnect style): s = mean |x| per tensor/channel,
///   out = s * sign(x) with sign(0) = +1, z = 0; s = 0 for an all-zero tensor (out = 0 = x).
///   Gradient dx = g where |x| <= 1, else 0 (hard-tanh STE), s treated as a constant.
/// requires: x float32/float64 (CPU or CUDA); per_channel: x.dim() >= 1.
FakeQuantResult fake_quantize(const Tensor& x, const FakeQuantOptions& opt);

/// As fake_quantize but with a given range lo, hi [C] (C = 1 or x.size(0) per channel; same
/// dtype as x, no gradient): used by observers that keep a running range. bits >= 2.
FakeQuantResult fake_quantize_range(const Tensor& x, const Tensor& lo, const Tensor& hi, const FakeQuantOptions& opt);

/// The scale and zero point ([C] each) fake_quantize_range uses for the range [lo, hi] ([C]).
std::pair<Tensor, Tensor> range_qparams(const Tensor& lo, const Tensor& hi, const FakeQuantOptions& opt);

/// The range fake_quantize would observe: {lo, hi}, each [C] in x's dtype (symmetric:
/// {-max|x|, max|x|}). No autograd.
std::pair<Tensor, Tensor> observe_range(const Tensor& x, const FakeQuantOptions& opt);

namespace detail {
/// x as [C, K] rows: C = 1 or x.size(0). Checks float and returns a contiguous detached copy
/// (or view) of x together with C and K; per tensor (C = 1), a channels-last x as it is (its
/// memory is C*K values all the same). Outputs are allocated like r.x (empty_like_layout).
struct Rows {
  Tensor x;
  int64_t C = 1, K = 0;
};
Rows as_rows(const Tensor& x, bool per_channel, const char* op);
/// Checks that p is a [1] or [C] tensor of x's dtype and device; returns its contiguous data.
Tensor check_row_param(const Tensor& p, const Rows& r, const Tensor& x, const char* what, const char* op);
}  // namespace detail

}  // namespace pfq::quant
