// reduce.cu — row reductions of core/ops/reduce.cpp on CUDA (kernels.h): sums in double, max/min
// with the index of the first extreme, and the scatter of max/min backward. The ops hand over a
// contiguous [outer, inner] copy with the reduced axes last; reduce.cuh does the folding.
#include <limits>

#include "core/cuda/elementwise.cuh"
#include "core/cuda/kernels.h"
#include "core/cuda/reduce.cuh"

namespace pfq::cuda {
namespace {

void check_rows(const Tensor& x, int64_t outer, int64_t inner, const char* op) {
  PFQ_CHECK(x.device().is_cuda() && x.is_contiguous() && x.numel() == outer * inner, op,
            ": expected a contiguous CUDA tensor of ", outer, " x ", inner, " elements, got ", x.describe());
}

void check_out(const Tensor& out, const Tensor& x, int64_t n, DType dt, const char* op, const char* what) {
  PFQ_CHECK(out.device() == x.device() && out.is_contiguous() && out.numel() == n && out.dtype() == dt, op, ": ", what,
            " must be a contiguous ", dtype_name(dt), " tensor of ", n, " elements on ", x.device().str(), ", got ",
            out.describe());
}

}  // namespace

void sum_rows(const Tensor& x, const Tensor& out, int64_t outer, int64_t inner) {
  check_rows(x, outer, inner, "cuda::sum_rows");
  check_out(out, x, outer, x.dtype(), "cuda::sum_rows", "out");
  PFQ_DISPATCH_FLOAT(x.dtype(), "cuda::sum_rows", [&] {
    const scalar_t* px = x.data<scalar_t>();
    scalar_t* po = out.data<scalar_t>();
    detail::reduce_rows(
        x.device().index, outer, inner, 0.0,
        [=] __device__(int64_t r, int64_t i) { return static_cast<double>(px[r * inner + i]); },
        [] __device__(double a, double b) { return a + b; },
        [=] __device__(int64_t r, double s) { po[r] = static_cast<scalar_t>(s); }, "cuda::sum_rows");
  });
}

void extreme_rows(const Tensor& x, int64_t outer, int64_t inner, bool is_max, const Tensor& values,
                  const Tensor& indices) {
  const char* op = is_max ? "cuda::max_rows" : "cuda::min_rows";
  check_rows(x, outer, inner, op);
  PFQ_CHECK(inner > 0, op, ": reduction over zero elements");
  if (values.defined()) check_out(values, x, outer, x.dtype(), op, "values");
  if (indices.defined()) check_out(indices, x, outer, DType::Int64, op, "indices");
  PFQ_DISPATCH_FLOAT(x.dtype(), op, [&] {
    using VI = detail::ValIdx<scalar_t>;
    const scalar_t* px = x.data<scalar_t>();
    scalar_t* pv = values.defined() ? values.data<scalar_t>() : nullptr;
    int64_t* pi = indices.defined() ? indices.data<int64_t>() : nullptr;
    const scalar_t inf = std::numeric_limits<scalar_t>::infinity();
    const VI init{is_max ? -inf : inf, std::numeric_limits<int64_t>::max()};
    // b replaces a when strictly more extreme, or equally extreme from an earlier index; a NaN
    // counts as the most extreme value (it propagates, as in PyTorch).
    auto comb = [is_max] __device__(VI a, VI b) {
      const bool an = a.v != a.v, bn = b.v != b.v;
      bool take;
      if (an || bn) take = bn && (!an || b.i < a.i);
      else take = (is_max ? b.v > a.v : b.v < a.v) || (b.v == a.v && b.i < a.i);
      return take ? b : a;
    };
    detail::reduce_rows(
        x.device().index, outer, inner, init, [=] __device__(int64_t r, int64_t i) { return VI{px[r * inner + i], i}; },
        comb,
        [=] __device__(int64_t r, VI m) {
          if (pv) pv[r] = m.v;
          if (pi) pi[r] = m.i;
        },
        op);
  });
}

void scatter_rows(const Tensor& g, const Tensor& index, const Tensor& flat, int64_t outer, int64_t inner) {
  check_rows(flat, outer, inner, "cuda::scatter_rows");
  check_out(g, flat, outer, flat.dtype(), "cuda::scatter_rows", "g");
  check_out(index, flat, outer, DType::Int64, "cuda::scatter_rows", "index");
  PFQ_DISPATCH_FLOAT(flat.dtype(), "cuda::scatter_rows", [&] {
    const scalar_t* pg = g.data<scalar_t>();
    const int64_t* pi = index.data<int64_t>();
    scalar_t* pf = flat.data<scalar_t>();
    detail::launch_flat(
        flat.device().index, outer, [=] __device__(int64_t o) { pf[o * inner + pi[o]] = pg[o]; }, "cuda::scatter_rows");
  });
}

}  // namespace pfq::cuda
