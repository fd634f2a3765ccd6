// conv_backend.cpp — the CPU convolution backend switch (conv_backend.h).
#include "core/cpu/conv_backend.h"

#include <type_traits>
#include <vector>

#include "core/error.h"
#include "core/layout.h"

namespace pfq::cpu {

ConvBackend conv_backend() { return backend_options().cpu_conv; }

void set_conv_backend(ConvBackend b) {
  BackendOptions o = backend_options();
  o.cpu_conv = b;
  set_backend_options(o);
}

CpuLayout cpu_layout() { return backend_options().cpu_layout; }

void set_cpu_layout(CpuLayout l) {
  BackendOptions o = backend_options();
  o.cpu_layout = l;
  set_backend_options(o);
}

bool conv_runs_nhwc(ConvGeom g) {
  if (cpu_layout() != CpuLayout::Nhwc || conv_backend() != ConvBackend::OneDnn) return false;
  g.nhwc = true;
  return onednn::can_run(g);
}

namespace {
// oneDNN computes in blocked layouts, so each call reorders its NCHW operands in and out: work
// proportional to the activations. That pays off for k x k dense convolutions (about 2x faster
// than im2col + GEMM, every pass) and for small maps, but on large maps pfq's pointwise GEMM and
// depthwise kernels, which work in NCHW directly, win (measured per layer of ResNet-20 and
// MobileNetV1/V2 on 1 thread, batch 64: docs/performance.md). Fixed rules, not timing, so
// every run (and a resumed one) takes the same kernels.
bool onednn_pays(const ConvGeom& g) { return !(g.is_pointwise() || g.is_depthwise()) || g.OH * g.OW <= 64; }

template <typename T>
bool use_onednn(const ConvGeom& g) {
  return std::is_same_v<T, float> && conv_backend() == ConvBackend::OneDnn && onednn_pays(g);
}
}  // namespace

template <typename T>
void conv_forward(const ConvGeom& g, const T* x, const T* w, const T* b, T* y) {
  if constexpr (std::is_same_v<T, float>) {
    if (g.nhwc) {
      PFQ_CHECK(onednn::conv2d_forward(g, x, w, b, y), "internal: nhwc convolution oneDNN cannot run (check conv_runs_nhwc)");
      return;
    }
    if (use_onednn<T>(g) && onednn::conv2d_forward(g, x, w, b, y)) return;
  }
  PFQ_CHECK(!g.nhwc, "internal: nhwc convolution in ", std::is_same_v<T, float> ? "float32" : "float64");
  if (g.is_depthwise()) depthwise_forward<T>(g, x, w, b, y);
  else conv2d_forward<T>(g, x, w, b, y);
}

template <typename T>
void conv_backward_input(const ConvGeom& g, const T* dy, const T* w, T* dx) {
  if (g.nhwc) return conv_backward<T>(g, dy, nullptr, w, dx, nullptr);
  if constexpr (std::is_same_v<T, float>)
    if (use_onednn<T>(g) && onednn::conv2d_backward_input(g, dy, w, dx)) return;
  if (g.is_depthwise()) depthwise_backward_input<T>(g, dy, w, dx);
  else conv2d_backward_input<T>(g, dy, w, dx);
}

template <typename T>
void conv_backward_weight(const ConvGeom& g, const T* dy, const T* x, T* dw) {
  if (g.nhwc) return conv_backward<T>(g, dy, x, nullptr, nullptr, dw);
  if constexpr (std::is_same_v<T, float>)
    if (use_onednn<T>(g) && onednn::conv2d_backward_weight(g, dy, x, dw)) return;
  if (g.is_depthwise()) depthwise_backward_weight<T>(g, dy, x, dw);
  else conv2d_backward_weight<T>(g, dy, x, dw);
}

template <typename T>
void conv_backward(const ConvGeom& g, const T* dy, const T* x, const T* w, T* dx, T* dw) {
  if (g.nhwc) {
    if constexpr (std::is_same_v<T, float>)
      if (onednn::conv2d_backward(g, dy, x, w, dx, dw)) return;
    // oneDNN ran the forward pass but cannot express this backward one: NCHW copies
    ConvGeom p = g;
    p.nhwc = false;
    const size_t in_size = static_cast<size_t>(g.N * g.C * g.H * g.W);
    std::vector<T> dyc(static_cast<size_t>(g.N * g.OC * g.OH * g.OW)), xc(x ? in_size : 0), dxc(dx ? in_size : 0);
    nhwc_to_nchw(g.N, g.OC, g.OH * g.OW, dy, dyc.data());
    if (x) nhwc_to_nchw(g.N, g.C, g.H * g.W, x, xc.data());
    conv_backward<T>(p, dyc.data(), x ? xc.data() : nullptr, w, dx ? dxc.data() : nullptr, dw);
    if (dx) nchw_to_nhwc(g.N, g.C, g.H * g.W, dxc.data(), dx);
    return;
  }
  if constexpr (std::is_same_v<T, float>)
    if (use_onednn<T>(g) && onednn::conv2d_backward(g, dy, x, w, dx, dw)) return;
  if (dx) conv_backward_input<T>(g, dy, w, dx);
  if (dw) conv_backward_weight<T>(g, dy, x, dw);
}

#define PFQ_CONV_ENTRY_POINTS(T)                                                          \
  template void conv_forward<T>(const ConvGeom&, const T*, const T*, const T*, T*);       \
  template void conv_backward<T>(const ConvGeom&, const T*, const T*, const T*, T*, T*);  \
  template void conv_backward_input<T>(const ConvGeom&, const T*, const T*, T*);          \
  template void conv_backward_weight<T>(const ConvGeom&, const T*, const T*, T*);
PFQ_CONV_ENTRY_POINTS(float)
PFQ_CONV_ENTRY_POINTS(double)
#undef PFQ_CONV_ENTRY_POINTS

}  // namespace pfq::cpu
