// copy.cu — device copies with dtype conversion between any strided layouts, and fills, both
// through the strided engine (elementwise.cuh). Conversions are static_cast, as the CPU copy.
#include "core/cuda/elementwise.cuh"
#include "core/cuda/kernels.h"

namespace pfq::cuda {
namespace {
struct Identity {
  template <class T> __device__ T operator()(T v) const { return v; }
};
}  // namespace

void copy(const Tensor& src, const Tensor& dst) {
  PFQ_CHECK(src.shape() == dst.shape(), "cuda::copy: source ", src.describe(), " and destination ", dst.describe(),
            " differ in shape");
  PFQ_DISPATCH_ALL(dst.dtype(), "cuda::copy", [&] {
    using TO = scalar_t;
    PFQ_DISPATCH_ALL(src.dtype(), "cuda::copy", [&] { detail::unary_op<TO, scalar_t>(src, dst, Identity{}, "cuda::copy"); });
  });
}

void fill(const Tensor& dst, double value) {
  PFQ_CHECK(dst.device().is_cuda(), "cuda::fill: expected a CUDA tensor, got ", dst.describe());
  PFQ_DISPATCH_ALL(dst.dtype(), "cuda::fill", [&] {
    scalar_t* p = dst.data<scalar_t>();
    const scalar_t v = static_cast<scalar_t>(value);
    const detail::StridedPlan<1> plan = detail::make_plan<1>(dst.shape(), {&dst.strides()}, "cuda::fill");
    detail::launch_elementwise<1>(
        dst.device().index, dst.numel(), plan, [=] __device__(int64_t i) { p[i] = v; },
        [=] __device__(const int64_t(&o)[1]) { p[o[0]] = v; }, "cuda::fill");
  });
}

}  // namespace pfq::cuda
