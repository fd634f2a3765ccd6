// norm_pool.h — CPU kernels for batch normalisation and pooling (no autograd).
// Layout: x [N, C, S] with S = H*W (S = 1 for [N, C] inputs); pooling on [N*C, H, W] planes.
#pragma once
#include <cstdint>

#include "core/geometry.h"  // PoolGeom

namespace pfq::cpu {

// Batch normalisation with an optional clamping activation fused in: out = min(max(bn(x), lo),
// hi) (lo = -inf, hi = +inf: none; 0, +inf: ReLU; 0, 6: ReLU6).
// Training-mode BN: writes out, per-channel batch mean and inverse std (1/sqrt(var_biased+eps))
// and the biased batch variance. gamma/beta may be null (no affine).
template <typename T>
void batch_norm_train_forward(int64_t N, int64_t C, int64_t S, const T* x, const T* gamma, const T* beta, double eps, T lo, T hi,
                              T* y, double* mean, double* invstd, double* var);
// Eval-mode BN with given statistics (mean, invstd per channel).
template <typename T>
void batch_norm_apply(int64_t N, int64_t C, int64_t S, const T* x, const double* mean, const double* invstd, const T* gamma,
                      const T* beta, T lo, T hi, T* y);
// Backward of BN (and of the activation when y, the forward's output, is given: dy counts only
// where lo < y < hi, as ReLU's and ReLU6's gradients). training: statistics depend on x (full
// formula); else fixed statistics. dx may be null; dgamma/dbeta (per channel) may be null.
template <typename T>
void batch_norm_backward(int64_t N, int64_t C, int64_t S, bool training, const T* x, const T* dy, const T* y, T lo, T hi,
                         const double* mean, const double* invstd, const T* gamma, T* dx, T* dgamma, T* dbeta);

// The same three for channels-last inputs: x [M, C] with M = N*H*W rows of C channels.
// Statistics are summed over a fixed split of the rows (independent of the thread count) and
// folded in order, so results are deterministic.
template <typename T>
void batch_norm_train_forward_nhwc(int64_t M, int64_t C, const T* x, const T* gamma, const T* beta, double eps, T lo, T hi, T* y,
                                   double* mean, double* invstd, double* var);
template <typename T>
void batch_norm_apply_nhwc(int64_t M, int64_t C, const T* x, const double* mean, const double* invstd, const T* gamma,
                           const T* beta, T lo, T hi, T* y);
template <typename T>
void batch_norm_backward_nhwc(int64_t M, int64_t C, bool training, const T* x, const T* dy, const T* y, T lo, T hi,
                              const double* mean, const double* invstd, const T* gamma, T* dx, T* dgamma, T* dbeta);

namespace detail {
// Batch norm's backward through a fused activation: d where it passed the value (lo < y[i] <
// hi), 0 where it clamped; d itself without an activation (y unused). Branch-free so the
// kernels' loops vectorise.
template <typename T, bool Gated>
inline T gated(T d, const T* y, int64_t i, T lo, T hi) {
  if constexpr (Gated) {
    const T v = y[i];
    const T pass = v > lo ? T(1) : T(0);
    return d * (v < hi ? pass : T(0));
  } else {
    return d;
  }
}
}  // namespace detail

// argmax: each maximum's h*W+w in its plane; null when no gradient is wanted (inference).
template <typename T> void max_pool_forward(const PoolGeom& g, const T* x, T* y, int64_t* argmax);
template <typename T> void max_pool_backward(const PoolGeom& g, const T* dy, const int64_t* argmax, T* dx);
// The same on channels-last tensors: x [N, H, W, C] -> y and argmax [N, OH, OW, C] (g.planes =
// N*C), the same maxima, argmax and NaN rule, vectorised over the channels; the backward adds
// each (n, c)'s gradients in the same order as the NCHW kernel, so both give the same bits.
template <typename T> void max_pool_forward_nhwc(const PoolGeom& g, int64_t C, const T* x, T* y, int64_t* argmax);
template <typename T> void max_pool_backward_nhwc(const PoolGeom& g, int64_t C, const T* dy, const int64_t* argmax, T* dx);
template <typename T> void avg_pool_forward(const PoolGeom& g, bool count_include_pad, const T* x, T* y);
template <typename T> void avg_pool_backward(const PoolGeom& g, bool count_include_pad, const T* dy, T* dx);
template <typename T> void adaptive_avg_pool_forward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const T* x, T* y);
template <typename T> void adaptive_avg_pool_backward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const T* dy, T* dx);

}  // namespace pfq::cpu
