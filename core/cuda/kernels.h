// kernels.h — the CUDA backend's entry points as plain C++ declarations in namespace pfq::cuda
// (no CUDA headers), which core includes in every build: the device plumbing of Tensor and the
// allocator, and the kernels the ops, the optimizers and Tensor call next to their CPU branch.
// Declared from the one list, core/cuda/kernel_list.h (read it for the contracts); defined by
// core/cuda/*.cu, *.cpp with CUDA, by the stubs core/cuda/no_cuda.cpp generates from it without.
// Outside core, include core/device.h instead. See docs/cuda-backend.md.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/functors.h"
#include "core/geometry.h"
#include "core/tensor.h"

// The functors of core/functors.h that have a CUDA instantiation (map_unary / map_binary).
#define PFQ_CUDA_UNARY_FUNCTORS(X)                                                              \
  X(Neg) X(Exp) X(Log) X(Sqrt) X(Square) X(Abs) X(Sign) X(SignBinary) X(Relu) X(Relu6) X(Sigmoid) \
  X(Tanh) X(RoundHalfEven) X(PowScalar) X(Clamp) X(InRange) X(AddScalar) X(MulScalar) X(RSubScalar) X(RDivScalar)
// Binary functors instantiated for every dtype (float32, float64, int64, uint8).
#define PFQ_CUDA_BINARY_FUNCTORS(X) X(Add) X(Sub) X(Mul) X(Div) X(Max) X(Min) X(GeMask) X(LeMask)
// Binary functors instantiated for float32/float64 only (gradients, in-place axpy).
#define PFQ_CUDA_BINARY_FLOAT_FUNCTORS(X) X(AddRelu) X(ReluGrad) X(Relu6Grad) X(SigmoidGrad) X(TanhGrad) X(AddScaled)

namespace pfq::cuda {

// Builds without CUDA only (core/cuda/no_cuda.cpp): throws pfq::Error "<what>: this pfq was
// built without CUDA: ..." with how to get a CUDA build. Every no-CUDA stub ends here.
[[noreturn]] void fail_without_cuda(const char* what);

#define PFQ_CUDA_RUNTIME(RET, NAME, PARAMS) RET NAME PARAMS;
#define PFQ_CUDA_KERNEL(RET, NAME, PARAMS) RET NAME PARAMS;
#define PFQ_CUDA_QUERY(RET, NAME, PARAMS, NO_CUDA) RET NAME PARAMS;
#include "core/cuda/kernel_list.h"
#undef PFQ_CUDA_RUNTIME
#undef PFQ_CUDA_KERNEL
#undef PFQ_CUDA_QUERY

namespace detail {
// For the implementations: an optional tensor's memory (null when undefined), and the [N, C, S]
// view of an [N, C] or [N, C, H, W] activation (S = the product of the dimensions after C).
inline void* raw_or_null(const Tensor& t) { return t.defined() ? t.raw_data() : nullptr; }
struct Ncs {
  int64_t N, C, S;
};
inline Ncs ncs(const Tensor& x) {
  int64_t S = 1;
  for (int64_t d = 2; d < x.dim(); ++d) S *= x.size(d);
  return {x.size(0), x.size(1), S};
}
}  // namespace detail

}  // namespace pfq::cuda
