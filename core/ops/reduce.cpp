// reduce.cpp — sum/mean/max/min/var over axes, sum_to (un-broadcasting) and argmax.
// Reductions permute the reduced axes last and copy once, so the kernels see a contiguous
// [outer, inner] buffer: the row kernels of core/cpu/kernels.h or core/cuda/kernel_list.h, both
// with a fixed summation order (deterministic for any thread count).
#include "core/cpu/kernels.h"
#include "core/cuda/kernels.h"
#include "core/ops.h"
#include "core/profiler.h"
#include "core/ops/op_util.h"

namespace pfq {
namespace {

struct ReducePlan {
  Shape keep_shape;          // output shape with reduced dims kept as 1
  Shape out_shape;           // output shape as returned (keepdim or not)
  std::vector<int64_t> perm; // kept axes first, reduced axes last
  int64_t outer = 1, inner = 1;
};

ReducePlan make_plan(const Tensor& x, std::vector<int64_t> axes, bool keepdim, const char* op) {
  const int64_t nd = x.dim();
  std::vector<bool> red(nd, axes.empty());
  for (auto a : axes) {
    int64_t n = normalize_axis(a, nd, op);
    PFQ_CHECK(!red[n] || axes.empty(), op, ": axis ", a, " given twice");
    red[n] = true;
  }
  ReducePlan p;
  for (int64_t i = 0; i < nd; ++i) {
    p.keep_shape.push_back(red[i] ? 1 : x.shape()[i]);
    if (!red[i]) {
      p.perm.push_back(i);
      p.outer *= x.shape()[i];
      p.out_shape.push_back(x.shape()[i]);
    } else if (keepdim) {
      p.out_shape.push_back(1);
    }
  }
  for (int64_t i = 0; i < nd; ++i)
    if (red[i]) {
      p.perm.push_back(i);
      p.inner *= x.shape()[i];
    }
  return p;
}

// x viewed with axes in plan order and copied contiguous: [outer, inner].
Tensor permuted_copy(const Tensor& x, const ReducePlan& p) {
  Shape sh, st;
  for (auto a : p.perm) {
    sh.push_back(x.shape()[a]);
    st.push_back(x.strides()[a]);
  }
  Tensor v = make_view(x, sh, st, x.offset());
  return v.is_contiguous() ? v : v.detach().clone();
}

// Inverse of permuted_copy for a gradient laid out [outer, inner].
Tensor unpermute(const Tensor& flat, const Tensor& like, const ReducePlan& p) {
  Shape sh;
  for (auto a : p.perm) sh.push_back(like.shape()[a]);
  Tensor v = make_view(flat, sh, contiguous_strides(sh), flat.offset());
  std::vector<int64_t> inv(p.perm.size());
  for (size_t i = 0; i < p.perm.size(); ++i) inv[p.perm[i]] = static_cast<int64_t>(i);
  Shape ish, ist;
  for (auto a : inv) {
    ish.push_back(v.shape()[a]);
    ist.push_back(v.strides()[a]);
  }
  return make_view(v, ish, ist, v.offset()).clone();
}

Tensor sum_forward(const Tensor& x, const ReducePlan& p) {
  Tensor xc = permuted_copy(x, p);
  Tensor out = Tensor::empty(p.out_shape, x.dtype(), x.device());
  if (x.device().is_cuda()) cuda::sum_rows(xc, out, p.outer, p.inner);
  else cpu::sum_rows(xc, out, p.outer, p.inner);
  return out;
}

// Broadcasts g (reduced shape) back over x's shape.
Tensor broadcast_back(const Tensor& g, const ReducePlan& p, const Shape& xshape) {
  Tensor gk = reshape(g, p.keep_shape);
  return expand_view(gk, xshape).clone();
}

Tensor extreme(const Tensor& x, std::vector<int64_t> axes, bool keepdim, bool is_max, const char* op) {
  PFQ_CHECK(x.numel() > 0, op, ": reduction of an empty tensor ", shape_str(x.shape()));
  ReducePlan p = make_plan(x, axes, keepdim, op);
  Tensor xc = permuted_copy(x, p);
  Tensor out = Tensor::empty(p.out_shape, x.dtype(), x.device());
  // Index of the first extreme of each row, on x's device.
  Tensor idx = Tensor::empty({p.outer}, DType::Int64, x.device());
  // NaN handling differs between the devices: the CUDA kernel propagates the first NaN.
  if (x.device().is_cuda()) cuda::extreme_rows(xc, p.outer, p.inner, is_max, out, idx);
  else cpu::extreme_rows(xc, p.outer, p.inner, is_max, out, idx);
  Tensor xd = x.detach();
  return record(op, out, {x}, [p, idx, xd](const Tensor& g) {
    Tensor flat = Tensor::zeros({p.outer * p.inner}, g.dtype(), g.device());
    Tensor gc = g.contiguous();
    if (g.device().is_cuda()) cuda::scatter_rows(gc, idx, flat, p.outer, p.inner);
    else cpu::scatter_rows(gc, idx, flat, p.outer, p.inner);
    return std::vector<Tensor>{unpermute(flat, xd, p)};
  });
}

}  // namespace

Tensor sum(const Tensor& x, std::vector<int64_t> axes, bool keepdim) {
  PFQ_PROFILE("sum");
  ReducePlan p = make_plan(x, axes, keepdim, "sum");
  Shape xs = x.shape();
  return record("sum", sum_forward(x, p), {x}, [p, xs](const Tensor& g) { return std::vector<Tensor>{broadcast_back(g, p, xs)}; });
}

Tensor mean(const Tensor& x, std::vector<int64_t> axes, bool keepdim) {
  ReducePlan p = make_plan(x, axes, keepdim, "mean");
  PFQ_CHECK(p.inner > 0, "mean: reduction over zero elements of ", shape_str(x.shape()));
  return mul(sum(x, axes, keepdim), 1.0 / static_cast<double>(p.inner));
}

Tensor max(const Tensor& x, std::vector<int64_t> axes, bool keepdim) { return extreme(x, axes, keepdim, true, "max"); }
Tensor min(const Tensor& x, std::vector<int64_t> axes, bool keepdim) { return extreme(x, axes, keepdim, false, "min"); }

Tensor var(const Tensor& x, std::vector<int64_t> axes, bool unbiased, bool keepdim) {
  ReducePlan p = make_plan(x, axes, keepdim, "var");
  PFQ_CHECK(p.inner > (unbiased ? 1 : 0), "var: needs more than ", unbiased ? 1 : 0, " elements per reduction, got ", p.inner);
  Tensor m = mean(x, axes, true);
  Tensor d = sub(x, m);
  return mul(sum(mul(d, d), axes, keepdim), 1.0 / static_cast<double>(p.inner - (unbiased ? 1 : 0)));
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  const int64_t nd = x.dim(), lead = nd - static_cast<int64_t>(shape.size());
  PFQ_CHECK(lead >= 0, "sum_to: cannot reduce ", shape_str(x.shape()), " to ", shape_str(shape));
  std::vector<int64_t> axes;
  for (int64_t i = 0; i < nd; ++i) {
    if (i < lead) {
      axes.push_back(i);
      continue;
    }
    int64_t t = shape[i - lead];
    PFQ_CHECK(t == x.shape()[i] || t == 1, "sum_to: cannot reduce ", shape_str(x.shape()), " to ", shape_str(shape));
    if (t == 1 && x.shape()[i] != 1) axes.push_back(i);
  }
  if (axes.empty()) return reshape(x, shape);
  return reshape(sum(x, axes, true), shape);
}

Tensor argmax(const Tensor& x, int64_t axis) {
  ReducePlan p = make_plan(x, {axis}, false, "argmax");
  PFQ_CHECK(p.inner > 0, "argmax: reduction over an empty axis of ", shape_str(x.shape()));
  Tensor xc = permuted_copy(x, p);
  Tensor out = Tensor::empty(p.out_shape, DType::Int64, x.device());
  if (x.device().is_cuda()) cuda::extreme_rows(xc, p.outer, p.inner, true, Tensor(), out);
  else cpu::extreme_rows(xc, p.outer, p.inner, true, Tensor(), out);
  return out;
}

}  // namespace pfq
