// kernels.h — pfq's own CUDA kernels for the non-DNN ops, as plain C++ entry points that the
// op files (core/ops, core/tensor.cpp, core/optim) call next to their CPU branch. Implemented
// in core/cuda/{elementwise,copy,reduce,loss,optim}.cu; core/cuda/no_cuda_kernels.cpp throws
// "built without CUDA" for each. All tensors must be on the same CUDA device; work is queued on
// that device's stream, nothing here synchronises with the host. See docs/cuda-backend.md.
#pragma once
#include <cstdint>

#include "core/functors.h"
#include "core/tensor.h"

namespace pfq::cuda {

// ---- element-wise (strided engine: any strides, stride 0 = broadcast, <= 8 dims after merging) ----
// The functors of core/functors.h that have a CUDA instantiation; the op files pass the same
// functor object to the CPU loop or to these overloads, so the math is written once.
#define PFQ_CUDA_UNARY_FUNCTORS(X)                                                              \
  X(Neg) X(Exp) X(Log) X(Sqrt) X(Square) X(Abs) X(Sign) X(SignBinary) X(Relu) X(Relu6) X(Sigmoid) \
  X(Tanh) X(RoundHalfEven) X(PowScalar) X(Clamp) X(InRange) X(AddScalar) X(MulScalar) X(RSubScalar) X(RDivScalar)
// Binary functors instantiated for every dtype (float32, float64, int64, uint8).
#define PFQ_CUDA_BINARY_FUNCTORS(X) X(Add) X(Sub) X(Mul) X(Div) X(Max) X(Min) X(GeMask) X(LeMask)
// Binary functors instantiated for float32/float64 only (gradients, in-place axpy).
#define PFQ_CUDA_BINARY_FLOAT_FUNCTORS(X) X(ReluGrad) X(Relu6Grad) X(SigmoidGrad) X(TanhGrad) X(AddScaled)

// out = f(x): x and out float32/float64 of one dtype and shape; out may alias x (same layout).
#define PFQ_CUDA_DECLARE_UNARY(F) void map_unary(const Tensor& x, const Tensor& out, fn::F f);
PFQ_CUDA_UNARY_FUNCTORS(PFQ_CUDA_DECLARE_UNARY)
#undef PFQ_CUDA_DECLARE_UNARY
// out = f(a, b): a, b already broadcast to out's shape (expand_view); one dtype; out may alias a.
#define PFQ_CUDA_DECLARE_BINARY(F) void map_binary(const Tensor& a, const Tensor& b, const Tensor& out, fn::F f);
PFQ_CUDA_BINARY_FUNCTORS(PFQ_CUDA_DECLARE_BINARY)
PFQ_CUDA_BINARY_FLOAT_FUNCTORS(PFQ_CUDA_DECLARE_BINARY)
#undef PFQ_CUDA_DECLARE_BINARY

// dst = src converted to dst's dtype (static_cast, as the CPU copy): same shape, same CUDA
// device, any dtypes and strides on either side.
void copy(const Tensor& src, const Tensor& dst);
// Every element of dst (any dtype, any strides) = static_cast<T>(value).
void fill(const Tensor& dst, double value);

// ---- reductions over rows of a contiguous [outer, inner] float32/float64 buffer ----
// Deterministic: fixed chunking and a fixed combining tree, no atomics; sums accumulate in double.
// out [outer] = row sums.
void sum_rows(const Tensor& x, const Tensor& out, int64_t outer, int64_t inner);
// Row maximum (is_max) or minimum and the index of its first occurrence; values (x's dtype) or
// indices (int64) may be undefined tensors when not wanted. Requires inner > 0.
void extreme_rows(const Tensor& x, int64_t outer, int64_t inner, bool is_max, const Tensor& values,
                  const Tensor& indices);
// flat [outer * inner] (pre-zeroed, contiguous): flat[o * inner + index[o]] = g[o] (max/min backward).
void scatter_rows(const Tensor& g, const Tensor& index, const Tensor& flat, int64_t outer, int64_t inner);

// ---- softmax family (rows of the last axis, contiguous [R, K]) ----
// out = x - max - log(sum exp(x - max)) per row (sum in double).
void log_softmax_rows(const Tensor& x, const Tensor& out, int64_t R, int64_t K);
// logits [N, K] contiguous, targets int64 [N] on the device (validated by the caller):
// writes logp [N, K] and loss [] = mean_i (-(1 - s) logp[i, t_i] - s/K sum_k logp[i, k]).
void cross_entropy_forward(const Tensor& logits, const Tensor& targets, double smoothing, const Tensor& logp,
                           const Tensor& loss);
// dx [N, K] = g / N * (exp(logp) - ((k == t_i) (1 - s) + s / K)); g is the 0-d upstream
// gradient on the device (read by the kernel: no host round trip).
void cross_entropy_backward(const Tensor& logp, const Tensor& targets, double smoothing, const Tensor& g,
                            const Tensor& dx);

// ---- optimizer updates (contiguous, one dtype, in the CPU kernels' operation order) ----
// buf undefined without momentum; see core/optim/sgd.h for the formula.
void sgd_update(const Tensor& param, const Tensor& grad, const Tensor& buf, bool first, double weight_decay,
                double momentum, double dampening, bool nesterov, double lr);
// See core/optim/adam.h; shrink = 1 - lr * wd (AdamW) or 1, l2 = wd (Adam) or 0.
void adam_update(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                 double shrink, double l2, double beta1, double beta2, double eps, double bias_correction2_sqrt,
                 double step_size);

}  // namespace pfq::cuda
