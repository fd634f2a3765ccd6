// conv_backend.h — which implementation runs float32 CPU convolutions: oneDNN (Debian's
// libdnnl, when the build found it: blocked-layout JIT kernels for dense, grouped and
// depthwise convolutions) or pfq's own im2col + Eigen GEMM and depthwise kernels (conv.h),
// which are always built and are what float64 and builds without oneDNN use. The naive loops
// of conv.h are the reference both are tested against.
// Default: oneDNN when compiled in; the environment variable PFQ_CPU_CONV=eigen|onednn or
// set_conv_backend() (tests, `pfq bench --cpu-conv`) picks one explicitly. Both choices are
// fields of core/backend_options.h (the enums and their parsing live there); these read and set
// them one at a time.
#pragma once
#include "core/backend_options.h"
#include "core/cpu/conv.h"

namespace pfq::cpu {

ConvBackend conv_backend();
void set_conv_backend(ConvBackend b);  // OneDnn without onednn_compiled() is an error

// Memory layout of the activations around float32 CPU convolutions on the oneDNN backend:
// nchw (pfq's plain layout: oneDNN reorders into its blocked layout and back on every call) or
// nhwc (channels-last: conv2d returns channels-last outputs, which batch norm, the element-wise
// ops and the next convolution keep, so no reorders). Default nhwc (measured faster for every
// model, docs/performance.md); PFQ_CPU_LAYOUT=nchw|nhwc or set_cpu_layout() (`pfq bench
// --cpu-layout`) pick one. Results agree to float32 rounding. The eigen backend is always NCHW.
CpuLayout cpu_layout();
void set_cpu_layout(CpuLayout l);
// Whether a float32 convolution of geometry g runs with channels-last activations: the oneDNN
// backend and the nhwc layout are selected and oneDNN can express g.
bool conv_runs_nhwc(ConvGeom g);

// The CPU convolution entry points the conv2d op calls: with the oneDNN backend, float32
// convolutions where oneDNN pays (k x k dense ones, and any on maps of <= 64 output pixels) run
// there (all of them when g.nhwc: x, y, dx and dy are then channels-last); the others, float64
// and the eigen backend use the depthwise kernel for depthwise
// geometries and im2col + GEMM otherwise.
template <typename T> void conv_forward(const ConvGeom& g, const T* x, const T* w, const T* b, T* y);
template <typename T> void conv_backward_input(const ConvGeom& g, const T* dy, const T* w, T* dx);
template <typename T> void conv_backward_weight(const ConvGeom& g, const T* dy, const T* x, T* dw);
// Both gradients (dx or dw may be null: not wanted). With oneDNN, dy is reordered into the
// primitives' layout once for the two.
template <typename T> void conv_backward(const ConvGeom& g, const T* dy, const T* x, const T* w, T* dx, T* dw);

// float32 convolution through oneDNN (conv_onednn.cpp); same contract and layouts as
// conv2d_forward & co. in conv.h (x, y, dx, dy channels-last when g.nhwc). Each returns false,
// touching nothing, when oneDNN cannot express the geometry (the caller then uses pfq's own
// kernels). One list, X(NAME, PARAMS), for the declarations and the stubs of a build without
// oneDNN (no_onednn.cpp), which the backend switch never reaches.
#define PFQ_ONEDNN_CONV_ENTRY_POINTS(X)                                                                   \
  X(conv2d_forward, (const ConvGeom& g, const float* x, const float* w, const float* b, float* y))       \
  X(conv2d_backward_input, (const ConvGeom& g, const float* dy, const float* w, float* dx))              \
  X(conv2d_backward_weight, (const ConvGeom& g, const float* dy, const float* x, float* dw))            \
  X(conv2d_backward, (const ConvGeom& g, const float* dy, const float* x, const float* w, float* dx, float* dw))
namespace onednn {
#define PFQ_ONEDNN_DECLARE(NAME, PARAMS) bool NAME PARAMS;
PFQ_ONEDNN_CONV_ENTRY_POINTS(PFQ_ONEDNN_DECLARE)
#undef PFQ_ONEDNN_DECLARE
bool can_run(const ConvGeom& g);  // oneDNN can express g's forward convolution (false without oneDNN)
}  // namespace onednn

}  // namespace pfq::cpu
