/// \file
/// fake_quant_kernel.h — kernels of quant/ (no autograd), CPU and CUDA: range observation, uniform fake
/// quantization and its straight-through backward, 1-bit sign, PACT, LSQ and DoReFa maps.
/// Layout: every kernel sees x as [C, K] contiguous rows (C = 1 per tensor, C = size(0) per
/// output channel, K = numel / C). The scalar helpers below are the one definition of the math.
/// Sums use fixed blocks combined in order, so results do not depend on the thread count.
/// The CUDA kernels (namespace gpu below, quant/fake_quant_kernel.cu) take the same arguments
/// plus the device index and share the scalar helpers (PFQ_HD), so both round identically.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>

#include "core/functors.h"  // PFQ_HD

namespace pfq::quant::cpu {

/// Integer grid of a b-bit quantizer. symmetric: [-(2^(b-1)-1), 2^(b-1)-1] (narrow range, z = 0);
/// otherwise unsigned [0, 2^b - 1] with a zero point.
struct QuantGrid {
  /// Smallest integer code.
  int64_t qmin = 0;
  /// Largest integer code.
  int64_t qmax = 0;
};
/// The code range of a `bits`-bit grid: symmetric [-(2^(b-1) - 1), 2^(b-1) - 1], else [0, 2^b - 1].
inline QuantGrid quant_grid(int bits, bool symmetric) {
  if (symmetric) return {-((int64_t{1} << (bits - 1)) - 1), (int64_t{1} << (bits - 1)) - 1};
  return {0, (int64_t{1} << bits) - 1};
}

/// Scale and zero point from a range [lo, hi]. symmetric: s = max(|lo|, |hi|) / qmax, z = 0.
/// asymmetric: the range is widened to contain 0, s = (hi - lo) / (qmax - qmin),
/// z = clamp(round_half_even(qmin - lo / s), qmin, qmax), so 0 maps to the integer z exactly.
/// Degenerate range (all zeros, or s below the smallest normal number of T): s = 1 (z = 0 for
/// an all-zero range), which quantizes every element to (near) 0 without dividing by zero.
template <typename T>
PFQ_HD inline void qparams_from_range(T lo, T hi, QuantGrid g, bool symmetric, T& scale, T& zero_point) {
  if (symmetric) {
    const T m = std::fabs(lo) > std::fabs(hi) ? std::fabs(lo) : std::fabs(hi);
    scale = m / static_cast<T>(g.qmax);
  } else {
    lo = lo < T(0) ? lo : T(0);
    hi = hi > T(0) ? hi : T(0);
    scale = (hi - lo) / static_cast<T>(g.qmax - g.qmin);
  }
  if (!(scale >= std::numeric_limits<T>::min())) scale = T(1);
  zero_point = T(0);
  if (!symmetric) {
    const T z = std::nearbyint(static_cast<T>(g.qmin) - lo / scale);
    zero_point = z < T(g.qmin) ? T(g.qmin) : (z > T(g.qmax) ? T(g.qmax) : z);
  }
}

/// q = clamp(round_half_even(x / s) + z, qmin, qmax); returns (q - z) * s. std::nearbyint
/// rounds half to even under the default floating-point environment (FE_TONEAREST).
template <typename T>
PFQ_HD inline T fake_quant_one(T x, T scale, T zero_point, T qmin, T qmax) {
  T q = std::nearbyint(x / scale) + zero_point;
  q = q < qmin ? qmin : (q > qmax ? qmax : q);
  return (q - zero_point) * scale;
}

// ---- uniform fake quantization (bits 2..8) ----
/// x [C, K] -> lo, hi [C]: per-row min and max (symmetric: -max|x| and max|x|); empty rows 0.
template <typename T>
void observe_range(int64_t C, int64_t K, const T* x, bool symmetric, T* lo, T* hi);
/// Fused: when `observe`, first writes the observed range of x into lo/hi, else reads them;
/// then writes scale/zero_point [C] and out [C, K] = fake_quant_one(x, ...).
template <typename T>
void fake_quant_forward(int64_t C, int64_t K, const T* x, QuantGrid g, bool symmetric, bool observe, T* lo, T* hi,
                        T* scale, T* zero_point, T* out);
/// dx [C, K] = dy where (qmin - z) * s <= x <= (qmax - z) * s, else 0 (straight-through).
template <typename T>
void fake_quant_backward_x(int64_t C, int64_t K, const T* x, const T* dy, const T* scale, const T* zero_point,
                           QuantGrid g, T* dx);

// ---- 1-bit sign ----
/// scale [C] = mean |x| of each row; out = scale * (x >= 0 ? 1 : -1).
template <typename T>
void binary_forward(int64_t C, int64_t K, const T* x, T* scale, T* out);
/// dx = dy where |x| <= 1, else 0 (the hard-tanh straight-through estimator).
template <typename T>
void binary_backward_x(int64_t n, const T* x, const T* dy, T* dx);

// ---- PACT: alpha [C] > 0; out = quantize_unsigned(clip(x, 0, alpha)), s = alpha / qmax ----
/// PACT forward over x [C, K] with the row's clip alpha[c] (formula above).
template <typename T>
void pact_forward(int64_t C, int64_t K, const T* x, const T* alpha, int64_t qmax, T* out);
/// dx = dy where 0 <= x < alpha; dalpha[c] = sum over row c of dy where x >= alpha.
template <typename T>
void pact_backward(int64_t C, int64_t K, const T* x, const T* dy, const T* alpha, T* dx, T* dalpha);

// ---- LSQ: step [C] > 0; out = round_half_even(clip(x / s, -qn, qp)) * s ----
/// LSQ forward over x [C, K] with the row's step[c] and the code range [-qn, qp] (formula above).
template <typename T>
void lsq_forward(int64_t C, int64_t K, const T* x, const T* step, int64_t qn, int64_t qp, T* out);
/// With v = x / s: dx = dy where -qn <= v <= qp; ds[c] = grad_scale * sum of dy * (round(v) - v)
/// where -qn < v < qp, dy * (-qn) where v <= -qn, dy * qp where v >= qp.
template <typename T>
void lsq_backward(int64_t C, int64_t K, const T* x, const T* dy, const T* step, int64_t qn, int64_t qp,
                  double grad_scale, T* dx, T* dstep);
/// mean |x| of each row (LSQ's initial step, 1-bit scale).
template <typename T>
void row_mean_abs(int64_t C, int64_t K, const T* x, T* out);

// ---- DoReFa weights: n = 2^bits - 1, t = tanh(x), m[c] = max |t| over the row (1 if 0) ----
/// out = 2 * round_half_even(n * (t / (2 m) + 1/2)) / n - 1; writes m.
template <typename T>
void dorefa_forward(int64_t C, int64_t K, const T* x, int64_t n, T* max_tanh, T* out);
/// dx = dy * (1 - t^2) / m (rounding passed straight through, m held constant).
template <typename T>
void dorefa_backward(int64_t C, int64_t K, const T* x, const T* dy, const T* max_tanh, T* dx);

}  // namespace pfq::quant::cpu

// The same kernels on CUDA (namespace gpu): pointers are device memory of GPU `device`; same
// layout ([C, K] rows), formulas, rounding (IEEE division and rint, round half to even) and double
// accumulation as the CPU versions above, whose comments state each contract. Per-row sums fold in
// a fixed tree (core/cuda/reduce.cuh): deterministic, but summed in another order than on CPU.
// Work is queued on the device stream; nothing syncs. One list, X(NAME, PARAMS) with the element
// type T, gives their declarations (below), the float and double instantiations that
// quant/fake_quant_kernel.cu makes and the stubs quant/fake_quant_kernel_no_cuda.cpp generates
// for a build without CUDA (each throws "built without CUDA").
/// The list of CUDA fake-quantization kernels, X(NAME, PARAMS) per kernel with element type T.
#define PFQ_QUANT_GPU_KERNELS(X, T)                                                                                        \
  X(observe_range, (int64_t C, int64_t K, const T* x, bool symmetric, T* lo, T* hi, int device))                          \
  X(fake_quant_forward, (int64_t C, int64_t K, const T* x, QuantGrid g, bool symmetric, bool observe, T* lo, T* hi,         \
                         T* scale, T* zero_point, T* out, int device))                                                    \
  X(fake_quant_backward_x, (int64_t C, int64_t K, const T* x, const T* dy, const T* scale, const T* zero_point,           \
                            QuantGrid g, T* dx, int device))                                                              \
  X(row_mean_abs, (int64_t C, int64_t K, const T* x, T* out, int device))                                                 \
  X(binary_forward, (int64_t C, int64_t K, const T* x, T* scale, T* out, int device))                                     \
  X(binary_backward_x, (int64_t n, const T* x, const T* dy, T* dx, int device))                                           \
  X(pact_forward, (int64_t C, int64_t K, const T* x, const T* alpha, int64_t qmax, T* out, int device))                  \
  X(pact_backward, (int64_t C, int64_t K, const T* x, const T* dy, const T* alpha, T* dx, T* dalpha, int device))       \
  X(lsq_forward, (int64_t C, int64_t K, const T* x, const T* step, int64_t qn, int64_t qp, T* out, int device))          \
  X(lsq_backward, (int64_t C, int64_t K, const T* x, const T* dy, const T* step, int64_t qn, int64_t qp,                 \
                   double grad_scale, T* dx, T* dstep, int device))                                                       \
  /* LSQ's initial step on the device: step[c] = 2 * mean|x_c| / sqrt(qp), or 1 where that is not > 0. */               \
  X(lsq_init_step, (int64_t C, int64_t K, const T* x, int64_t qp, T* step, int device))                                   \
  X(dorefa_forward, (int64_t C, int64_t K, const T* x, int64_t n, T* max_tanh, T* out, int device))                      \
  X(dorefa_backward, (int64_t C, int64_t K, const T* x, const T* dy, const T* max_tanh, T* dx, int device))

namespace pfq::quant::gpu {
using cpu::QuantGrid;
/// Declares one gpu:: kernel template.
#define PFQ_QUANT_GPU_DECLARE(NAME, PARAMS) template <typename T> void NAME PARAMS;
PFQ_QUANT_GPU_KERNELS(PFQ_QUANT_GPU_DECLARE, T)
#undef PFQ_QUANT_GPU_DECLARE
}  // namespace pfq::quant::gpu

// The explicit instantiations of every gpu:: kernel for element type T (inside namespace
// pfq::quant::gpu, after the definitions): `template void NAME PARAMS;`, T deduced.
/// Instantiates one gpu:: kernel for the T of PFQ_QUANT_GPU_INSTANTIATE.
#define PFQ_QUANT_GPU_INSTANTIATE_ONE(NAME, PARAMS) template void NAME PARAMS;
/// Instantiates every gpu:: kernel for element type T.
#define PFQ_QUANT_GPU_INSTANTIATE(T) PFQ_QUANT_GPU_KERNELS(PFQ_QUANT_GPU_INSTANTIATE_ONE, T)
