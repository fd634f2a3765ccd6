// kernels.h — CPU kernels of the integer model (quant/integer/model.h): int8 x int8 ->
// int32 convolution (a naive reference loop and an im2col + integer GEMM path, tested against
// each other), int8 linear, global average-pool sums and the fixed-point requantization
// arithmetic (docs/integer-format.md section 4 is the one definition of the rounding).
// Raw pointers, row-major NCHW; no autograd, no Tensor. Left out: SIMD intrinsics, CUDA.
#pragma once
#include <cstdint>

namespace pfq::quant::cpu {

// Geometry of an integer conv. Input x [N, IC, H, W] int8 with zero point zx (padding holds zx,
// i.e. the real value 0); weights w [OC, IC/groups, KH, KW] int8 (zero point 0).
struct IntConvGeom {
  int64_t N = 1, IC = 1, H = 1, W = 1, OC = 1, KH = 1, KW = 1;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1, groups = 1;
  int64_t OH() const { return (H + 2 * pad_h - dil_h * (KH - 1) - 1) / stride_h + 1; }
  int64_t OW() const { return (W + 2 * pad_w - dil_w * (KW - 1) - 1) / stride_w + 1; }
};

// acc [N, OC, OH, OW] = sum over (ic, kh, kw) of w * (x - zx) over the taps inside the image
// (zero-padded in the real domain). Reference: plain loops, int32 accumulation.
void conv2d_s8_naive(const IntConvGeom& g, const int8_t* x, int32_t zx, const int8_t* w, int32_t* acc);
// Same result: im2col (padding filled with zx) + int8 GEMM with int32 accumulation, minus
// zx * sum(w[oc]) per output channel; OpenMP over images and groups.
void conv2d_s8_im2col(const IntConvGeom& g, const int8_t* x, int32_t zx, const int8_t* w, int32_t* acc);

// acc [N, OC] = sum_k w[oc, k] * (x[n, k] - zx), x [N, K], w [OC, K].
void linear_s8(int64_t N, int64_t K, int64_t OC, const int8_t* x, int32_t zx, const int8_t* w, int32_t* acc);
void linear_s8_naive(int64_t N, int64_t K, int64_t OC, const int8_t* x, int32_t zx, const int8_t* w, int32_t* acc);

// sum [N, C] = sum over H*W of (x - zx), x [N, C, H, W].
void global_sum_s8(int64_t N, int64_t C, int64_t HW, const int8_t* x, int32_t zx, int32_t* sum);
// x int8 [N, C, H, W] -> y int8 [N, C, OH, OW]: the largest code in each window, padded
// positions left out (PyTorch pads with -inf). Exact: dequantization is increasing in the code,
// so the max of the codes is the code of the max.
void max_pool_s8(int64_t N, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t SH, int64_t SW, int64_t PH, int64_t PW,
                 int64_t OH, int64_t OW, const int8_t* x, int8_t* y);

// ---- fixed-point requantization (docs/integer-format.md section 4) ----
// Arithmetic right shift rounding half towards +infinity: floor((a + 2^(r-1)) / 2^r); r = 0
// returns a. requires 0 <= r <= 62.
inline int64_t shift_round(int64_t a, int r) {
  if (r <= 0) return a;
  return (a + (int64_t{1} << (r - 1))) >> r;
}
// A real multiplier M as m * 2^-r with |m| in [2^30, 2^31) (m = 0, r = 0 for M = 0 or
// |M| < 2^-32). Throws when |M| >= 2^30 (r would be negative) or M is not finite.
struct FixedMultiplier {
  int32_t m = 0;
  int32_t r = 0;
};
FixedMultiplier fixed_multiplier(double M);

}  // namespace pfq::quant::cpu
