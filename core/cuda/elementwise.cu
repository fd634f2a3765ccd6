// elementwise.cu — the element-wise overloads of kernels.h: one instantiation of the strided
// engine (elementwise.cuh) per functor of core/functors.h and dtype. Unary ops and gradient
// functors are float32/float64, as on CPU; arithmetic binary ops also take int64 and uint8.
#include "core/cuda/elementwise.cuh"
#include "core/cuda/kernels.h"

namespace pfq::cuda {

#define PFQ_CUDA_DEFINE_UNARY(F)                                                                         \
  void map_unary(const Tensor& x, const Tensor& out, fn::F f) {                                          \
    PFQ_CHECK(x.dtype() == out.dtype(), "map_unary<" #F ">: dtype mismatch ", x.describe(), " -> ", out.describe()); \
    PFQ_DISPATCH_FLOAT(out.dtype(), "map_unary<" #F ">",                                                 \
                       [&] { detail::unary_op<scalar_t, scalar_t>(x, out, f, "map_unary<" #F ">"); });   \
  }
PFQ_CUDA_UNARY_FUNCTORS(PFQ_CUDA_DEFINE_UNARY)
#undef PFQ_CUDA_DEFINE_UNARY

#define PFQ_CUDA_DEFINE_BINARY(F, DISPATCH)                                                              \
  void map_binary(const Tensor& a, const Tensor& b, const Tensor& out, fn::F f) {                        \
    PFQ_CHECK(a.dtype() == out.dtype() && b.dtype() == out.dtype(), "map_binary<" #F ">: dtype mismatch ", \
              a.describe(), ", ", b.describe(), " -> ", out.describe());                                 \
    DISPATCH(out.dtype(), "map_binary<" #F ">", [&] { detail::binary_op<scalar_t>(a, b, out, f, "map_binary<" #F ">"); }); \
  }
#define PFQ_CUDA_DEFINE_BINARY_ALL(F) PFQ_CUDA_DEFINE_BINARY(F, PFQ_DISPATCH_ALL)
#define PFQ_CUDA_DEFINE_BINARY_FLOAT(F) PFQ_CUDA_DEFINE_BINARY(F, PFQ_DISPATCH_FLOAT)
PFQ_CUDA_BINARY_FUNCTORS(PFQ_CUDA_DEFINE_BINARY_ALL)
PFQ_CUDA_BINARY_FLOAT_FUNCTORS(PFQ_CUDA_DEFINE_BINARY_FLOAT)
#undef PFQ_CUDA_DEFINE_BINARY_ALL
#undef PFQ_CUDA_DEFINE_BINARY_FLOAT
#undef PFQ_CUDA_DEFINE_BINARY

}  // namespace pfq::cuda
