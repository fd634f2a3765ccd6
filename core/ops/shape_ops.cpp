// shape_ops.cpp — reshape, permute, slice and friends (views sharing storage where the
// geometry allows, copies otherwise), concat and index_select, with their gradients. Device
// agnostic: the copies go through Tensor::copy_/clone (CUDA: core/cuda strided copy kernel).
#include <numeric>

#include "core/ops.h"
#include "core/ops/op_util.h"

namespace pfq {

Tensor reshape(const Tensor& x, Shape shape) {
  int64_t infer = -1, known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      PFQ_CHECK(infer < 0, "reshape: more than one -1 in ", shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else {
      PFQ_CHECK(shape[i] >= 0, "reshape: negative dimension in ", shape_str(shape));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    PFQ_CHECK(known > 0 && x.numel() % known == 0, "reshape: cannot infer -1 in ", shape_str(shape), " for ", x.numel(), " elements");
    shape[infer] = x.numel() / known;
  }
  PFQ_CHECK(shape_numel(shape) == x.numel(), "reshape: shape ", shape_str(shape), " does not hold the ", x.numel(),
            " elements of ", shape_str(x.shape()));
  if (shape == x.shape()) return x;
  Tensor src = x.is_contiguous() ? x.detach() : x.detach().clone();
  Tensor out = make_view(src, shape, contiguous_strides(shape), src.offset());
  Shape in = x.shape();
  return record("reshape", out, {x}, [in](const Tensor& g) { return one(reshape(g, in)); });
}

Tensor flatten(const Tensor& x, int64_t start_dim) {
  int64_t s = normalize_axis(start_dim, std::max<int64_t>(x.dim(), 1), "flatten");
  Shape shape(x.shape().begin(), x.shape().begin() + s);
  shape.push_back(-1);
  if (x.numel() == 0) shape.back() = 0;
  return reshape(x, shape);
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
  const int64_t nd = x.dim();
  PFQ_CHECK(static_cast<int64_t>(dims.size()) == nd, "permute: ", dims.size(), " dims given for a tensor of shape ", shape_str(x.shape()));
  std::vector<int64_t> inv(nd, -1);
  Shape sh, st;
  for (int64_t i = 0; i < nd; ++i) {
    int64_t d = normalize_axis(dims[i], nd, "permute");
    PFQ_CHECK(inv[d] < 0, "permute: dimension ", d, " repeated");
    inv[d] = i;
    sh.push_back(x.shape()[d]);
    st.push_back(x.strides()[d]);
  }
  return record("permute", make_view(x, sh, st, x.offset()), {x}, [inv](const Tensor& g) { return one(permute(g, inv)); });
}

Tensor transpose(const Tensor& x, int64_t d0, int64_t d1) {
  std::vector<int64_t> dims(x.dim());
  std::iota(dims.begin(), dims.end(), 0);
  std::swap(dims[normalize_axis(d0, x.dim(), "transpose")], dims[normalize_axis(d1, x.dim(), "transpose")]);
  return permute(x, dims);
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  int64_t d = normalize_axis(dim, x.dim(), "slice");
  int64_t n = x.shape()[d];
  PFQ_CHECK(step > 0, "slice: step must be positive, got ", step);
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape sh = x.shape(), st = x.strides();
  sh[d] = (end - start + step - 1) / step;
  st[d] *= step;
  Tensor out = make_view(x, sh, st, x.offset() + start * x.strides()[d]);
  Tensor xd = x.detach();
  return record("slice", out, {x}, [xd, d, start, end, step](const Tensor& g) {
    Tensor z = Tensor::zeros(xd.shape(), g.dtype(), g.device());
    NoGradGuard ng;
    slice(z, d, start, end, step).copy_(g);
    return one(z);
  });
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  int64_t d = normalize_axis(dim, x.dim() + 1, "unsqueeze");
  Shape s = x.shape();
  s.insert(s.begin() + d, 1);
  return reshape(x, s);
}

Tensor squeeze(const Tensor& x, int64_t dim) {
  int64_t d = normalize_axis(dim, x.dim(), "squeeze");
  PFQ_CHECK(x.shape()[d] == 1, "squeeze: dimension ", dim, " has size ", x.shape()[d], ", expected 1");
  Shape s = x.shape();
  s.erase(s.begin() + d);
  return reshape(x, s);
}

Tensor concat(const std::vector<Tensor>& xs, int64_t dim) {
  PFQ_CHECK(!xs.empty(), "concat: no tensors given");
  const Tensor& f = xs[0];
  int64_t d = normalize_axis(dim, f.dim(), "concat");
  Shape sh = f.shape();
  sh[d] = 0;
  std::vector<int64_t> sizes;
  for (const auto& t : xs) {
    check_same_device_dtype(f, t, "concat");
    PFQ_CHECK(t.dim() == f.dim(), "concat: tensors of shapes ", shape_str(f.shape()), " and ", shape_str(t.shape()));
    for (int64_t i = 0; i < f.dim(); ++i)
      PFQ_CHECK(i == d || t.shape()[i] == f.shape()[i], "concat along ", d, ": shapes ", shape_str(f.shape()), " and ",
                shape_str(t.shape()), " differ in dimension ", i);
    sizes.push_back(t.shape()[d]);
    sh[d] += t.shape()[d];
  }
  Tensor out = Tensor::empty(sh, f.dtype(), f.device());
  {
    NoGradGuard ng;
    int64_t pos = 0;
    for (const auto& t : xs) {
      slice(out, d, pos, pos + t.shape()[d]).copy_(t);
      pos += t.shape()[d];
    }
  }
  return record("concat", out, xs, [sizes, d](const Tensor& g) {
    std::vector<Tensor> gs;
    int64_t pos = 0;
    for (auto s : sizes) {
      gs.push_back(slice(g, d, pos, pos + s).contiguous());
      pos += s;
    }
    return gs;
  });
}

Tensor index_select(const Tensor& x, int64_t dim, const std::vector<int64_t>& index) {
  int64_t d = normalize_axis(dim, x.dim(), "index_select");
  for (auto i : index)
    PFQ_CHECK(i >= 0 && i < x.shape()[d], "index_select: index ", i, " out of range for dimension ", d, " of size ", x.shape()[d]);
  std::vector<Tensor> parts;
  {
    NoGradGuard ng;
    for (auto i : index) parts.push_back(slice(x, d, i, i + 1));
  }
  Shape sh = x.shape();
  sh[d] = static_cast<int64_t>(index.size());
  Tensor out = Tensor::empty(sh, x.dtype(), x.device());
  {
    NoGradGuard ng;
    for (size_t k = 0; k < index.size(); ++k) slice(out, d, k, k + 1).copy_(parts[k]);
  }
  Shape xs = x.shape();
  return record("index_select", out, {x}, [xs, d, index](const Tensor& g) {
    Tensor z = Tensor::zeros(xs, g.dtype(), g.device());
    for (size_t k = 0; k < index.size(); ++k) {
      Tensor dst = slice(z, d, index[k], index[k] + 1);
      Tensor acc = add(dst.contiguous(), slice(g, d, k, k + 1));
      dst.copy_(acc);
    }
    return one(z);
  });
}

}  // namespace pfq
