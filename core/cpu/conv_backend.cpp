// conv_backend.cpp — the CPU convolution backend switch (conv_backend.h).
#include "core/cpu/conv_backend.h"

#include <atomic>
#include <cstdlib>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "core/layout.h"

namespace pfq::cpu {
namespace {

ConvBackend initial_backend() {
  const char* env = std::getenv("PFQ_CPU_CONV");
  if (env && *env) {
    const ConvBackend b = parse_conv_backend(env, "environment variable PFQ_CPU_CONV: ");
    PFQ_CHECK(b != ConvBackend::OneDnn || onednn_compiled(), "PFQ_CPU_CONV=onednn: this pfq was built without oneDNN (install libdnnl-dev and reconfigure)");
    return b;
  }
  return onednn_compiled() ? ConvBackend::OneDnn : ConvBackend::Eigen;
}

std::atomic<ConvBackend>& current() {
  static std::atomic<ConvBackend> b{initial_backend()};
  return b;
}

}  // namespace

bool onednn_compiled() {
#ifdef PFQ_WITH_ONEDNN
  return true;
#else
  return false;
#endif
}

ConvBackend conv_backend() { return current().load(std::memory_order_relaxed); }

void set_conv_backend(ConvBackend b) {
  PFQ_CHECK(b != ConvBackend::OneDnn || onednn_compiled(), "CPU convolution backend onednn: this pfq was built without oneDNN (install libdnnl-dev and reconfigure)");
  current().store(b, std::memory_order_relaxed);
}

ConvBackend parse_conv_backend(const std::string& name, const std::string& context) {
  if (name == "eigen") return ConvBackend::Eigen;
  if (name == "onednn") return ConvBackend::OneDnn;
  PFQ_FAIL(context, "unknown CPU convolution backend '", name, "': expected eigen or onednn");
}

const char* conv_backend_name(ConvBackend b) { return b == ConvBackend::OneDnn ? "onednn" : "eigen"; }

CpuLayout parse_cpu_layout(const std::string& name, const std::string& context) {
  if (name == "nchw") return CpuLayout::Nchw;
  if (name == "nhwc") return CpuLayout::Nhwc;
  PFQ_FAIL(context, "unknown CPU activation layout '", name, "': expected nchw or nhwc");
}

const char* cpu_layout_name(CpuLayout l) { return l == CpuLayout::Nhwc ? "nhwc" : "nchw"; }

namespace {
std::atomic<CpuLayout>& current_layout() {
  static std::atomic<CpuLayout> l{[] {
    const char* env = std::getenv("PFQ_CPU_LAYOUT");
    return env && *env ? parse_cpu_layout(env, "environment variable PFQ_CPU_LAYOUT: ") : CpuLayout::Nhwc;
  }()};
  return l;
}
}  // namespace

CpuLayout cpu_layout() { return current_layout().load(std::memory_order_relaxed); }
void set_cpu_layout(CpuLayout l) { current_layout().store(l, std::memory_order_relaxed); }

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
