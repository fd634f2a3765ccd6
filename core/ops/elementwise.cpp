// elementwise.cpp — element-wise ops with broadcasting and their gradients.
// Forward math comes from core/functors.h, instantiated by the CPU loops (core/cpu) and by the
// CUDA strided engine (core/cuda/kernels.h); gradients are composed from other ops.
#include "core/cpu/elementwise.h"
#include "core/cuda/kernels.h"
#include "core/functors.h"
#include "core/layout.h"
#include "core/ops.h"
#include "core/profiler.h"
#include "core/ops/op_util.h"

namespace pfq {

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t nd = std::max(a.size(), b.size());
  Shape out(nd);
  for (size_t i = 0; i < nd; ++i) {
    int64_t da = i < nd - a.size() ? 1 : a[i - (nd - a.size())];
    int64_t db = i < nd - b.size() ? 1 : b[i - (nd - b.size())];
    PFQ_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", shape_str(a), " and ", shape_str(b),
              " cannot be broadcast together (dimension ", i, ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Tensor expand_view(const Tensor& x, const Shape& shape) {
  const size_t nd = shape.size();
  PFQ_CHECK(x.dim() <= static_cast<int64_t>(nd), "expand: cannot expand ", shape_str(x.shape()), " to ", shape_str(shape));
  Shape st(nd, 0);
  const size_t lead = nd - x.shape().size();
  for (size_t i = 0; i < x.shape().size(); ++i) {
    int64_t d = x.shape()[i];
    PFQ_CHECK(d == shape[lead + i] || d == 1, "expand: cannot expand ", shape_str(x.shape()), " to ", shape_str(shape));
    st[lead + i] = d == 1 && shape[lead + i] != 1 ? 0 : x.strides()[i];
  }
  return make_view(x, shape, st, x.offset());
}

namespace {

// Channels-last operands of the output's shape: the map runs over their memory as flat arrays
// and the output keeps the layout (layout.h). Mixed layouts go through the strided loops.
bool flat_channels_last(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && is_strictly_channels_last(a) && is_strictly_channels_last(b) && a.strides() == b.strides();
}

// out = f(a, b) over two channels-last tensors of one shape and layout, as flat arrays; out
// channels-last.
template <typename F>
Tensor map_binary_channels_last(const Tensor& a, const Tensor& b, F f, const char* op) {
  Tensor out = empty_channels_last(a.shape(), a.dtype(), a.device());
  Tensor fa = flat_view(a), fb = flat_view(b), fo = flat_view(out);
  if (a.device().is_cuda()) cuda::map_binary(fa, fb, fo, f);
  else PFQ_DISPATCH_ALL(a.dtype(), op, [&] { cpu::map_binary<scalar_t>(fa, fb, fo, f); });
  return out;
}

template <typename F>
Tensor binary_forward(const Tensor& a, const Tensor& b, F f, const char* op) {
  PFQ_PROFILE(op);
  check_same_device_dtype(a, b, op);
  if (flat_channels_last(a, b)) return map_binary_channels_last(a, b, f, op);
  Shape shape = broadcast_shapes(a.shape(), b.shape(), op);
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  Tensor av = expand_view(a, shape), bv = expand_view(b, shape);
  if (a.device().is_cuda()) {
    cuda::map_binary(av, bv, out, f);
    return out;
  }
  PFQ_DISPATCH_ALL(a.dtype(), op, [&] { cpu::map_binary<scalar_t>(av, bv, out, f); });
  return out;
}

template <typename F>
Tensor unary_forward(const Tensor& x, F f, const char* op) {
  PFQ_PROFILE(op);
  Tensor out = empty_like_layout(x);  // channels-last stays channels-last
  const bool flat = is_strictly_channels_last(x);
  Tensor xv = flat ? flat_view(x) : x, ov = flat ? flat_view(out) : out;
  if (x.device().is_cuda()) {
    PFQ_CHECK(is_floating(x.dtype()), op, ": expected a float32 or float64 tensor, got ", x.describe());
    cuda::map_unary(xv, ov, f);
    return out;
  }
  PFQ_DISPATCH_FLOAT(x.dtype(), op, [&] { cpu::map_unary<scalar_t, scalar_t>(xv, ov, f); });
  return out;
}

std::vector<Tensor> pair(Tensor a, Tensor b) { return {std::move(a), std::move(b)}; }

}  // namespace

Tensor expand(const Tensor& x, const Shape& shape) {
  Shape in = x.shape();
  return record("expand", expand_view(x, shape), {x}, [in](const Tensor& g) { return one(sum_to(g, in)); });
}

Tensor add(const Tensor& a, const Tensor& b) {
  Shape sa = a.shape(), sb = b.shape();
  return record("add", binary_forward(a, b, fn::Add{}, "add"), {a, b},
                [sa, sb](const Tensor& g) { return pair(sum_to(g, sa), sum_to(g, sb)); });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Shape sa = a.shape(), sb = b.shape();
  return record("sub", binary_forward(a, b, fn::Sub{}, "sub"), {a, b},
                [sa, sb](const Tensor& g) { return pair(sum_to(g, sa), sum_to(neg(g), sb)); });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  bool na = a.requires_grad(), nb = b.requires_grad();
  Tensor ad = a.detach(), bd = b.detach();
  return record("mul", binary_forward(a, b, fn::Mul{}, "mul"), {a, b}, [=](const Tensor& g) {
    return pair(na ? sum_to(mul(g, bd), ad.shape()) : Tensor(), nb ? sum_to(mul(g, ad), bd.shape()) : Tensor());
  });
}

Tensor div(const Tensor& a, const Tensor& b) {
  bool nb = b.requires_grad();
  Tensor ad = a.detach(), bd = b.detach();
  return record("div", binary_forward(a, b, fn::Div{}, "div"), {a, b}, [=](const Tensor& g) {
    Tensor ga = sum_to(div(g, bd), ad.shape());
    Tensor gb = nb ? sum_to(neg(div(mul(g, ad), mul(bd, bd))), bd.shape()) : Tensor();
    return pair(ga, gb);
  });
}

Tensor maximum(const Tensor& a, const Tensor& b) {
  Tensor ad = a.detach(), bd = b.detach();
  return record("maximum", binary_forward(a, b, fn::Max{}, "maximum"), {a, b}, [=](const Tensor& g) {
    Tensor m = binary_forward(ad, bd, fn::GeMask{}, "maximum");
    return pair(sum_to(mul(g, m), ad.shape()), sum_to(mul(g, rsub(1.0, m)), bd.shape()));
  });
}

Tensor minimum(const Tensor& a, const Tensor& b) {
  Tensor ad = a.detach(), bd = b.detach();
  return record("minimum", binary_forward(a, b, fn::Min{}, "minimum"), {a, b}, [=](const Tensor& g) {
    Tensor m = binary_forward(ad, bd, fn::LeMask{}, "minimum");
    return pair(sum_to(mul(g, m), ad.shape()), sum_to(mul(g, rsub(1.0, m)), bd.shape()));
  });
}

Tensor add(const Tensor& a, double s) {
  return record("add_scalar", unary_forward(a, fn::AddScalar{s}, "add"), {a}, [](const Tensor& g) { return one(g); });
}
Tensor mul(const Tensor& a, double s) {
  return record("mul_scalar", unary_forward(a, fn::MulScalar{s}, "mul"), {a}, [s](const Tensor& g) { return one(mul(g, s)); });
}
Tensor rsub(double s, const Tensor& b) {
  return record("rsub", unary_forward(b, fn::RSubScalar{s}, "rsub"), {b}, [](const Tensor& g) { return one(neg(g)); });
}
Tensor rdiv(double s, const Tensor& b) {
  Tensor bd = b.detach();
  return record("rdiv", unary_forward(b, fn::RDivScalar{s}, "rdiv"), {b},
                [s, bd](const Tensor& g) { return one(mul(div(g, mul(bd, bd)), -s)); });
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, double b) { return add(a, b); }
Tensor operator-(const Tensor& a, double b) { return add(a, -b); }
Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
Tensor operator/(const Tensor& a, double b) { return mul(a, 1.0 / b); }
Tensor operator*(double a, const Tensor& b) { return mul(b, a); }
Tensor operator-(const Tensor& a) { return neg(a); }

Tensor neg(const Tensor& x) {
  return record("neg", unary_forward(x, fn::Neg{}, "neg"), {x}, [](const Tensor& g) { return one(neg(g)); });
}

Tensor exp(const Tensor& x) {
  Tensor y = unary_forward(x, fn::Exp{}, "exp");
  Tensor yd = y.detach();
  return record("exp", y, {x}, [yd](const Tensor& g) { return one(mul(g, yd)); });
}

Tensor log(const Tensor& x) {
  Tensor xd = x.detach();
  return record("log", unary_forward(x, fn::Log{}, "log"), {x}, [xd](const Tensor& g) { return one(div(g, xd)); });
}

Tensor sqrt(const Tensor& x) {
  Tensor y = unary_forward(x, fn::Sqrt{}, "sqrt");
  Tensor yd = y.detach();
  return record("sqrt", y, {x}, [yd](const Tensor& g) { return one(div(g, mul(yd, 2.0))); });
}

Tensor square(const Tensor& x) {
  Tensor xd = x.detach();
  return record("square", unary_forward(x, fn::Square{}, "square"), {x}, [xd](const Tensor& g) { return one(mul(g, mul(xd, 2.0))); });
}

Tensor pow(const Tensor& x, double e) {
  Tensor xd = x.detach();
  return record("pow", unary_forward(x, fn::PowScalar{e}, "pow"), {x}, [xd, e](const Tensor& g) {
    return one(mul(g, mul(unary_forward(xd, fn::PowScalar{e - 1}, "pow"), e)));
  });
}

Tensor abs(const Tensor& x) {
  Tensor xd = x.detach();
  return record("abs", unary_forward(x, fn::Abs{}, "abs"), {x},
                [xd](const Tensor& g) { return one(mul(g, unary_forward(xd, fn::Sign{}, "abs"))); });
}

namespace {
// Gradient through an activation from its saved output: grad_in = F(g, y).
template <typename F>
Tensor grad_from_output(const Tensor& g, const Tensor& y, F f, const char* op) {
  check_same_device_dtype(g, y, op);
  // channels-last output: the gradient in its layout, then flat
  if (is_strictly_channels_last(y)) return map_binary_channels_last(channels_last_copy(g), y, f, op);
  Tensor out = Tensor::empty(g.shape(), g.dtype(), g.device());
  if (g.device().is_cuda()) {
    PFQ_CHECK(is_floating(g.dtype()), op, " backward: expected a float32 or float64 gradient, got ", g.describe());
    cuda::map_binary(g, y, out, f);
    return out;
  }
  Tensor gc = g.contiguous();
  PFQ_DISPATCH_FLOAT(g.dtype(), op, [&] { cpu::map_binary<scalar_t>(gc, y, out, f); });
  return out;
}
}  // namespace

Tensor relu(const Tensor& x) {
  Tensor y = unary_forward(x, fn::Relu{}, "relu");
  Tensor yd = y.detach();
  return record("relu", y, {x}, [yd](const Tensor& g) { return one(grad_from_output(g, yd, fn::ReluGrad{}, "relu")); });
}

Tensor add_relu(const Tensor& a, const Tensor& b) {
  PFQ_CHECK(a.shape() == b.shape(), "add_relu: operands ", shape_str(a.shape()), " and ", shape_str(b.shape()), " differ in shape");
  Tensor y = binary_forward(a, b, fn::AddRelu{}, "add_relu");
  Tensor yd = y.detach();
  return record("add_relu", y, {a, b}, [yd](const Tensor& g) {
    Tensor d = grad_from_output(g, yd, fn::ReluGrad{}, "add_relu");
    return pair(d, d);
  });
}

Tensor relu6(const Tensor& x) {
  Tensor y = unary_forward(x, fn::Relu6{}, "relu6");
  Tensor yd = y.detach();
  return record("relu6", y, {x}, [yd](const Tensor& g) { return one(grad_from_output(g, yd, fn::Relu6Grad{}, "relu6")); });
}

Tensor sigmoid(const Tensor& x) {
  Tensor y = unary_forward(x, fn::Sigmoid{}, "sigmoid");
  Tensor yd = y.detach();
  return record("sigmoid", y, {x}, [yd](const Tensor& g) { return one(grad_from_output(g, yd, fn::SigmoidGrad{}, "sigmoid")); });
}

Tensor tanh(const Tensor& x) {
  Tensor y = unary_forward(x, fn::Tanh{}, "tanh");
  Tensor yd = y.detach();
  return record("tanh", y, {x}, [yd](const Tensor& g) { return one(grad_from_output(g, yd, fn::TanhGrad{}, "tanh")); });
}

Tensor clamp(const Tensor& x, double lo, double hi) {
  PFQ_CHECK(lo <= hi, "clamp: lower bound ", lo, " above upper bound ", hi);
  Tensor xd = x.detach();
  return record("clamp", unary_forward(x, fn::Clamp{lo, hi}, "clamp"), {x}, [xd, lo, hi](const Tensor& g) {
    return one(mul(g, unary_forward(xd, fn::InRange{lo, hi}, "clamp")));
  });
}

Tensor round(const Tensor& x) {
  return record("round", unary_forward(x, fn::RoundHalfEven{}, "round"), {x},
                [](const Tensor& g) { return one(Tensor::zeros(g.shape(), g.dtype(), g.device())); });
}

Tensor round_ste(const Tensor& x) {
  return record("round_ste", unary_forward(x, fn::RoundHalfEven{}, "round_ste"), {x}, [](const Tensor& g) { return one(g); });
}

Tensor sign(const Tensor& x) {
  return record("sign", unary_forward(x, fn::Sign{}, "sign"), {x},
                [](const Tensor& g) { return one(Tensor::zeros(g.shape(), g.dtype(), g.device())); });
}

Tensor sign_ste(const Tensor& x) {
  Tensor xd = x.detach();
  return record("sign_ste", unary_forward(x, fn::SignBinary{}, "sign_ste"), {x}, [xd](const Tensor& g) {
    return one(mul(g, unary_forward(xd, fn::InRange{-1, 1}, "sign_ste")));
  });
}

}  // namespace pfq
