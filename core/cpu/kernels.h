// kernels.h — the CPU backend's entry points that the ops in core/ops/ call, in the signature
// style of the CUDA backend's (core/cuda/kernel_list.h): Tensors (on the CPU, float32 or float64
// unless stated; the dtype is the tensors'), each argument's shape in a comment (N, C, H, W, OC,
// KH, KW, OH, OW as in core/geometry.h), contiguous unless stated, outputs written in place. Where
// both backends compute the same thing the name and arguments are the CUDA kernel's, so an op's
// body reads `dev.is_cuda() ? cuda::f(args) : cpu::f(args)`. Behind them: the templated pointer
// kernels (conv.h, conv_backend.h, gemm.h, norm_pool.h, reduce.h) that the kernel tests compare with the
// naive references. Where the CPU does it differently (batch norm's statistics in float64 with
// the activation fused in both passes; one pass for dx and dw of a convolution) the entry says so.
#pragma once
#include "core/geometry.h"
#include "core/tensor.h"

namespace pfq::cpu {

// ---- GEMM (gemm.cpp) ----------------------------------------------------------------------
// out[i] = op(a[i]) @ op(b[i]) for each of the `batch` products, op(X) = X or X^T; M, N, K from
// the shapes (as cuda::bmm).
void bmm(const Tensor& a /* [batch, M, K], or [batch, K, M] when trans_a */, bool trans_a,
         const Tensor& b /* [batch or 1 (shared), K, N], or [.., N, K] when trans_b */, bool trans_b,
         const Tensor& out /* [batch, M, N], overwritten */);

// ---- convolution (conv_backend.cpp: oneDNN, im2col + GEMM, depthwise) -----------------------
// As cuda::conv2d_forward; x and y channels-last in memory when g.nhwc (conv_runs_nhwc).
void conv2d_forward(const ConvGeom& g, const Tensor& x /* [N, C, H, W] */, const Tensor& w /* [OC, C/groups, KH, KW] */,
                    const Tensor& b /* [OC] or undefined */, const Tensor& y /* [N, OC, OH, OW], overwritten */);
// dx = conv_transpose(dy, w) and dw = correlation of dy with x in one pass (undefined: not
// wanted; x is needed only for dw, w only for dx); the CUDA side has one kernel for each.
void conv2d_backward(const ConvGeom& g, const Tensor& dy /* [N, OC, OH, OW] */, const Tensor& x /* [N, C, H, W] or undefined */,
                     const Tensor& w /* [OC, C/groups, KH, KW] or undefined */,
                     const Tensor& dx /* [N, C, H, W] or undefined, overwritten */,
                     const Tensor& dw /* [OC, C/groups, KH, KW] or undefined, overwritten */);

// ---- batch normalisation (batchnorm.cpp, batchnorm_nhwc.cpp) --------------------------------
// y = min(max(bn(x), lo), hi) (lo, hi = -inf, inf: no activation; 0, inf: ReLU; 0, 6: ReLU6), x
// [N, C, S] (S = H*W, 1 for [N, C]) or channels-last [N*S, C] rows when nhwc. gamma/beta
// undefined: no affine. The statistics are float64 [C]: training computes the batch mean and
// 1/sqrt(var + eps) (deterministic, independent of the thread count) and, when running_mean and
// running_var are defined, updates them as cuda::batch_norm_train_forward does (unbiased var);
// eval reads them from running_mean and running_var.
void batch_norm_act_forward(bool nhwc, bool training, const Tensor& x /* [N, C, ...] */, const Tensor& gamma /* [C] or undefined */,
                            const Tensor& beta /* [C] or undefined */, const Tensor& running_mean /* [C] or undefined */,
                            const Tensor& running_var /* [C] or undefined */, double momentum, double eps, double lo, double hi,
                            const Tensor& y /* x's shape, overwritten */, const Tensor& mean /* float64 [C], written */,
                            const Tensor& invstd /* float64 [C], written */);
// dx, dgamma, dbeta where defined; dy gated by lo < y < hi with the forward's output y (undefined:
// no activation); training: through the batch statistics, else with them fixed.
void batch_norm_act_backward(bool nhwc, bool training, const Tensor& x /* [N, C, ...] */, const Tensor& dy /* x's shape */,
                             const Tensor& y /* x's shape or undefined */, double lo, double hi, const Tensor& mean /* float64 [C] */,
                             const Tensor& invstd /* float64 [C] */, const Tensor& gamma /* [C] or undefined */,
                             const Tensor& dx /* x's shape or undefined, overwritten */,
                             const Tensor& dgamma /* [C] or undefined, overwritten */,
                             const Tensor& dbeta /* [C] or undefined, overwritten */);

// ---- pooling (pool.cpp); as the cuda:: kernels of the same names -----------------------------
// Max pooling; nhwc: every tensor channels-last (stored [N, H, W, C]), else all NCHW-contiguous.
// argmax may be undefined in the forward (no gradient wanted).
void max_pool_forward(const PoolGeom& g, bool nhwc, const Tensor& x /* [N, C, H, W] */,
                      const Tensor& y /* [N, C, OH, OW], overwritten */,
                      const Tensor& argmax /* int64 [N, C, OH, OW], overwritten, or undefined */);
void max_pool_backward(const PoolGeom& g, bool nhwc, const Tensor& dy /* [N, C, OH, OW] */,
                       const Tensor& argmax /* int64 [N, C, OH, OW] */, const Tensor& dx /* [N, C, H, W], overwritten */);
void avg_pool_forward(const PoolGeom& g, bool count_include_pad, const Tensor& x /* [N, C, H, W] */,
                      const Tensor& y /* [N, C, OH, OW], overwritten */);
void avg_pool_backward(const PoolGeom& g, bool count_include_pad, const Tensor& dy /* [N, C, OH, OW] */,
                       const Tensor& dx /* [N, C, H, W], overwritten */);
void adaptive_avg_pool_forward(const Tensor& x /* [N, C, H, W] */, const Tensor& y /* [N, C, OH, OW], overwritten */);
void adaptive_avg_pool_backward(const Tensor& dy /* [N, C, OH, OW] */, const Tensor& dx /* [N, C, H, W], overwritten */);

// ---- reductions over rows, contiguous (reduce.cpp); as the cuda:: kernels of the same names --
// Sums accumulate in double in a fixed order (independent of the thread count).
void sum_rows(const Tensor& x /* [outer, inner] */, const Tensor& out /* [outer], overwritten */, int64_t outer, int64_t inner);
// Row maximum (is_max) or minimum and the index of its first occurrence (inner > 0); a NaN is
// never chosen over an earlier element (the CUDA kernel propagates the first NaN).
void extreme_rows(const Tensor& x /* [outer, inner] */, int64_t outer, int64_t inner, bool is_max,
                  const Tensor& values /* [outer] of x's dtype or undefined, overwritten */,
                  const Tensor& indices /* int64 [outer], overwritten */);
// flat[o * inner + index[o]] = g[o] (max/min backward).
void scatter_rows(const Tensor& g /* [outer] */, const Tensor& index /* int64 [outer] */,
                  const Tensor& flat /* [outer * inner], pre-zeroed */, int64_t outer, int64_t inner);

// ---- softmax family: rows of the last axis, contiguous (loss.cpp); as the cuda:: kernels ------
// out = x - max - log(sum exp(x - max)) per row (sum in double).
void log_softmax_rows(const Tensor& x /* [R, K] */, const Tensor& out /* [R, K], overwritten */, int64_t R, int64_t K);
// Targets validated by the caller: logp and loss = mean_i (-(1 - s) logp[i, t_i] - s/K sum_k logp[i, k]).
void cross_entropy_forward(const Tensor& logits /* [N, K] */, const Tensor& targets /* int64 [N] */, double smoothing,
                           const Tensor& logp /* [N, K], overwritten */, const Tensor& loss /* [], overwritten */);
// dx = g / N * (exp(logp) - ((k == t_i) (1 - s) + s / K)).
void cross_entropy_backward(const Tensor& logp /* [N, K] */, const Tensor& targets /* int64 [N] */, double smoothing,
                            const Tensor& g /* [], the upstream gradient */, const Tensor& dx /* [N, K], overwritten */);

}  // namespace pfq::cpu
