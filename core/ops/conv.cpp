// conv.cpp — the conv2d op: argument checks, dispatch to the CPU convolution backend
// (core/cpu/conv_backend.h: oneDNN, im2col/GEMM or depthwise kernels) or to cuDNN
// (core/cuda/kernel_list.h) for CUDA tensors, and one backward closure for the gradient w.r.t. input,
// weight and bias on either device.
#include <optional>
#include <string>

#include "core/cpu/conv_backend.h"  // conv_runs_nhwc
#include "core/cpu/kernels.h"
#include "core/cuda/kernels.h"
#include "core/layout.h"
#include "core/ops.h"
#include "core/ops/op_util.h"
#include "core/profiler.h"

namespace pfq {

int64_t conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dilation) {
  return (in + 2 * pad - dilation * (k - 1) - 1) / stride + 1;
}

namespace {

ConvGeom make_geom(const Tensor& x, const Tensor& w, const Conv2dOptions& o) {
  PFQ_CHECK(x.dim() == 4, "conv2d: input must be [N, C, H, W], got ", shape_str(x.shape()));
  PFQ_CHECK(w.dim() == 4, "conv2d: weight must be [OC, C/groups, KH, KW], got ", shape_str(w.shape()));
  PFQ_CHECK(o.groups >= 1 && x.size(1) % o.groups == 0 && w.size(0) % o.groups == 0, "conv2d: groups=", o.groups,
            " must divide input channels ", x.size(1), " and output channels ", w.size(0));
  PFQ_CHECK(w.size(1) * o.groups == x.size(1), "conv2d: weight ", shape_str(w.shape()), " expects ", w.size(1) * o.groups,
            " input channels (groups=", o.groups, "), input ", shape_str(x.shape()), " has ", x.size(1));
  for (int i = 0; i < 2; ++i)
    PFQ_CHECK(o.stride[i] >= 1 && o.dilation[i] >= 1 && o.padding[i] >= 0, "conv2d: stride and dilation must be >= 1 and padding >= 0");
  ConvGeom g{x.size(0), x.size(1), x.size(2), x.size(3), w.size(0), w.size(2), w.size(3), 0, 0,
                  o.stride[0], o.stride[1], o.padding[0], o.padding[1], o.dilation[0], o.dilation[1], o.groups};
  g.OH = conv_out_size(g.H, g.KH, g.sh, g.ph, g.dh);
  g.OW = conv_out_size(g.W, g.KW, g.sw, g.pw, g.dw);
  PFQ_CHECK(g.OH > 0 && g.OW > 0, "conv2d: input ", shape_str(x.shape()), " is smaller than the dilated kernel ", g.KH, "x", g.KW,
            " with padding ", g.ph, "x", g.pw);
  return g;
}

// A row name of `pfq bench --profile-shapes`: the pass and the layer's geometry, e.g.
// "conv fwd dw 3x3/2 64->64 32x32" (dw: depthwise, g4: 4 groups, /2: stride 2).
std::string shape_row(const char* pass, const ConvGeom& g) {
  std::string kind = g.is_depthwise() ? "dw " : g.groups > 1 ? ::pfq::detail::cat("g", g.groups, " ") : std::string();
  std::string stride = g.sh == 1 && g.sw == 1 ? std::string() : g.sh == g.sw ? ::pfq::detail::cat("/", g.sh) : ::pfq::detail::cat("/", g.sh, "x", g.sw);
  return ::pfq::detail::cat("conv ", pass, " ", kind, g.KH, "x", g.KW, stride, " ", g.C, "->", g.OC, " ", g.H, "x", g.W);
}

// Opens the shape row's scope when shape rows are on (a disabled one costs an atomic load).
struct ShapeScope {
  std::optional<profiler::Scope> scope;
  ShapeScope(const char* pass, const ConvGeom& g) {
    if (profiler::shapes()) scope.emplace(shape_row(pass, g));
  }
};

// The device's kernels for conv2d's passes. CPU: the backend of core/cpu/conv_backend.h (x, y,
// dx and dy channels-last when g.nhwc); CUDA: cuDNN or pfq's depthwise kernels (core/cuda/conv.cpp).
void conv_forward(const ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y) {
  ShapeScope rows("fwd", g);
  if (x.device().is_cuda()) cuda::conv2d_forward(g, x, w, b, y);
  else cpu::conv2d_forward(g, x, w, b, y);
}

// dx and/or dw (undefined: not wanted) from dy; x is needed only for dw, w only for dx.
void conv_backward(const ConvGeom& g, const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& dx, const Tensor& dw) {
  if (dy.device().is_cuda()) {
    if (dx.defined()) {
      ShapeScope rows("dX", g);
      cuda::conv2d_backward_input(g, dy, w, dx);
    }
    if (dw.defined()) {
      ShapeScope rows("dW", g);
      cuda::conv2d_backward_weight(g, dy, x, dw);
    }
    return;
  }
  ShapeScope rows(dx.defined() && dw.defined() ? "dX+dW" : dx.defined() ? "dX" : "dW", g);
  cpu::conv2d_backward(g, dy, x, w, dx, dw);
}

// db [OC] = sum of dy over N, OH, OW.
Tensor conv_bias_grad(const ConvGeom& g, const Tensor& dy) {
  if (!dy.device().is_cuda()) return sum(dy, {0, 2, 3});
  Tensor db = Tensor::empty({g.OC}, dy.dtype(), dy.device());
  cuda::conv2d_backward_bias(g, dy, db);
  return db;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& opt) {
  PFQ_PROFILE("conv2d");
  check_same_device_dtype(x, weight, "conv2d");
  ConvGeom g = make_geom(x, weight, opt);
  if (bias.defined()) {
    check_same_device_dtype(x, bias, "conv2d");
    PFQ_CHECK(bias.dim() == 1 && bias.size(0) == g.OC, "conv2d: bias ", shape_str(bias.shape()), " does not match ", g.OC, " output channels");
  }
  // channels-last activations (layout.h) when that layout is selected and oneDNN runs g (CPU float32)
  g.nhwc = x.device().is_cpu() && x.dtype() == DType::Float32 && cpu::conv_runs_nhwc(g);
  Tensor xc = g.nhwc ? channels_last_copy(x) : x.detach().contiguous(), wc = weight.detach().contiguous();
  Tensor bc = bias.defined() ? bias.detach().contiguous() : Tensor();
  const Shape yshape{g.N, g.OC, g.OH, g.OW};
  Tensor y = g.nhwc ? empty_channels_last(yshape) : Tensor::empty(yshape, x.dtype(), x.device());
  conv_forward(g, xc, wc, bc, y);
  const bool nx = x.requires_grad(), nw = weight.requires_grad(), nb = bias.defined() && bias.requires_grad();
  // Capture only what each gradient needs: x for dW, w for dX.
  Tensor keep_x = nw ? xc : Tensor(), keep_w = nx ? wc : Tensor();
  return record("conv2d", y, {x, weight, bias}, [=, xs = xc.shape(), ws = wc.shape()](const Tensor& gy) {
    Tensor dy = g.nhwc ? channels_last_copy(gy) : gy.contiguous();
    Tensor dx = !nx ? Tensor() : g.nhwc ? empty_channels_last(xs) : Tensor::empty(xs, dy.dtype(), dy.device());
    Tensor dw = nw ? Tensor::empty(ws, dy.dtype(), dy.device()) : Tensor();
    if (nx || nw) conv_backward(g, dy, keep_x, keep_w, dx, dw);
    return std::vector<Tensor>{dx, dw, nb ? conv_bias_grad(g, dy) : Tensor()};
  });
}

}  // namespace pfq
