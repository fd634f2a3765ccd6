// dnn.h — the cuBLAS/cuDNN kernels of the CUDA backend and the pooling kernels (no autograd):
// GEMM, convolution, batch normalisation, max/avg/adaptive-avg pooling on raw device memory.
// Plain C++ declarations (no CUDA headers), so core/ops/*.cpp include it in every build; the
// definitions live in core/cuda/{gemm,conv,batchnorm}.cpp and pool.cu (CUDA builds) or
// no_dnn.cpp (builds without CUDA: every call throws). Layouts as core/cpu: row-major NCHW,
// contiguous. `dtype` is Float32 or Float64; pointers are device pointers on cuda:`device`.
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "core/geometry.h"  // ConvGeom, PoolGeom

namespace pfq::cuda {

// ---- GEMM (cuBLAS) ------------------------------------------------------------------------
// Row-major, `batch` products: C_i[M, N] = alpha * op(A_i) * op(B_i) + beta * C_i with
// A_i = A + i * stride_a (stride 0 shares one matrix), likewise B and C. op(X) = X or X^T;
// A is [M, K] (or [K, M] when trans_a), B is [K, N] (or [N, K] when trans_b); lda/ldb/ldc are
// row strides. float32 runs in full float32 precision (no TF32) unless backend_options().allow_tf32.
void gemm(DType dtype, int device, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
          const void* A, int64_t lda, int64_t stride_a, const void* B, int64_t ldb, int64_t stride_b, double beta,
          void* C, int64_t ldc, int64_t stride_c, int64_t batch);

// ---- convolution (cuDNN) ------------------------------------------------------------------
// x [N, C, H, W], w [OC, C/groups, KH, KW], b [OC] or null, y [N, OC, OH, OW]. The algorithm is
// chosen once per shape (cudnnFind*: measured, like PyTorch's cudnn.benchmark) and cached; the
// workspace comes from the caching device allocator.
void conv2d_forward(DType dtype, int device, const ConvGeom& g, const void* x, const void* w, const void* b,
                    void* y);
// dx [N, C, H, W] = conv_transpose(dy, w) (overwritten)
void conv2d_backward_input(DType dtype, int device, const ConvGeom& g, const void* dy, const void* w, void* dx);
// dw [OC, C/groups, KH, KW] (overwritten)
void conv2d_backward_weight(DType dtype, int device, const ConvGeom& g, const void* dy, const void* x, void* dw);
// db [OC] = sum of dy over N, OH, OW (overwritten)
void conv2d_backward_bias(DType dtype, int device, const ConvGeom& g, const void* dy, void* db);
// Number of distinct convolution shapes whose algorithms are cached (tests, benchmarks).
int64_t conv_algo_cache_size();

// ---- batch normalisation (cuDNN, spatial mode) --------------------------------------------
// x, y [N, C, S] (S = H*W, 1 for [N, C]); gamma/beta [C] (never null: pass ones/zeros for no
// affine); running_mean/var [C] or both null. Writes the batch mean and 1/sqrt(var + eps)
// (save_mean, save_invstd [C], dtype's type) and, when given, updates the running statistics:
// r = (1 - momentum) * r + momentum * batch, with the unbiased batch variance for var
// (exactly pfq's CPU convention and cuDNN's exponentialAverageFactor). eps >= batch_norm_min_eps().
void batch_norm_train_forward(DType dtype, int device, int64_t N, int64_t C, int64_t S, const void* x, const void* gamma,
                              const void* beta, double momentum, double eps, void* running_mean, void* running_var,
                              void* y, void* save_mean, void* save_invstd);
// Eval: y = (x - mean) / sqrt(var + eps) * gamma + beta with the given statistics.
void batch_norm_infer_forward(DType dtype, int device, int64_t N, int64_t C, int64_t S, const void* x, const void* gamma,
                              const void* beta, const void* mean, const void* var, double eps, void* y);
// Training-mode backward from the saved batch statistics: dx [N, C, S], dgamma, dbeta [C]
// (all three written).
void batch_norm_train_backward(DType dtype, int device, int64_t N, int64_t C, int64_t S, const void* x, const void* dy,
                               const void* gamma, const void* save_mean, const void* save_invstd, double eps, void* dx,
                               void* dgamma, void* dbeta);
// The smallest eps cuDNN accepts (CUDNN_BN_MIN_EPSILON).
double batch_norm_min_eps();

// ---- batch normalisation in training, own kernels (batchnorm_own.cu) -----------------------
// The default for training (backend_options().cuda_bn, PFQ_CUDA_BN=cudnn, chooses cuDNN's above): the same statistics and
// running-statistics convention as batch_norm_train_forward, with an activation fused:
// y = min(max(bn(x), lo), hi) (none: -inf, inf; ReLU: 0, inf; ReLU6: 0, 6). The backward gates dy
// by lo < y < hi with the forward's output y (null: no activation), as the CPU kernel does;
// dgamma/dbeta may be null. Deterministic. For tensors under 2^31 elements (batch_norm_own_fits).
bool batch_norm_own_fits(int64_t N, int64_t C, int64_t S);
void batch_norm_act_train_forward(DType dtype, int device, int64_t N, int64_t C, int64_t S, const void* x, const void* gamma,
                                  const void* beta, double momentum, double eps, void* running_mean, void* running_var, double lo,
                                  double hi, void* y, void* save_mean, void* save_invstd);
void batch_norm_act_train_backward(DType dtype, int device, int64_t N, int64_t C, int64_t S, const void* x, const void* dy,
                                   const void* y, double lo, double hi, const void* gamma, const void* save_mean,
                                   const void* save_invstd, void* dx, void* dgamma, void* dbeta);

// ---- pooling (own kernels, gather-style backward: deterministic) ---------------------------
// Planes of [H, W] -> [OH, OW]; argmax [planes * OH * OW] int64 holds the flat index h*W+w of
// the first maximum of each window (padding never wins), as the CPU kernel does.
void max_pool_forward(DType dtype, int device, const PoolGeom& g, const void* x, void* y, int64_t* argmax);
void max_pool_backward(DType dtype, int device, const PoolGeom& g, const void* dy, const int64_t* argmax, void* dx);
void avg_pool_forward(DType dtype, int device, const PoolGeom& g, bool count_include_pad, const void* x, void* y);
void avg_pool_backward(DType dtype, int device, const PoolGeom& g, bool count_include_pad, const void* dy, void* dx);
// PyTorch's adaptive bins: start = floor(i*H/OH), end = ceil((i+1)*H/OH).
void adaptive_avg_pool_forward(DType dtype, int device, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                               const void* x, void* y);
void adaptive_avg_pool_backward(DType dtype, int device, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                const void* dy, void* dx);

}  // namespace pfq::cuda
