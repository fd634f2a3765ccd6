// conv_backend.h — which implementation runs float32 CPU convolutions: oneDNN (Debian's
// libdnnl, when the build found it: blocked-layout JIT kernels for dense, grouped and
// depthwise convolutions) or pfq's own im2col + Eigen GEMM and depthwise kernels (conv.h),
// which are always built and are what float64 and builds without oneDNN use. The naive loops
// of conv.h are the reference both are tested against.
// Default: oneDNN when compiled in; the environment variable PFQ_CPU_CONV=eigen|onednn or
// set_conv_backend() (tests, `pfq bench --cpu-conv`) picks one explicitly.
#pragma once
#include <string>

#include "core/cpu/conv.h"

namespace pfq::cpu {

enum class ConvBackend { Eigen, OneDnn };

bool onednn_compiled();  // the build has oneDNN (meson option onednn)
ConvBackend conv_backend();
void set_conv_backend(ConvBackend b);  // OneDnn without onednn_compiled() is an error
ConvBackend parse_conv_backend(const std::string& name);  // "eigen" | "onednn", clear error otherwise
const char* conv_backend_name(ConvBackend b);

// The CPU convolution entry points the conv2d op calls: with the oneDNN backend, float32
// convolutions where oneDNN pays (k x k dense ones, and any on maps of <= 64 output pixels) run
// there; the others, float64 and the eigen backend use the depthwise kernel for depthwise
// geometries and im2col + GEMM otherwise.
template <typename T> void conv_forward(const ConvGeom& g, const T* x, const T* w, const T* b, T* y);
template <typename T> void conv_backward_input(const ConvGeom& g, const T* dy, const T* w, T* dx);
template <typename T> void conv_backward_weight(const ConvGeom& g, const T* dy, const T* x, T* dw);
// Both gradients (dx or dw may be null: not wanted). With oneDNN, dy is reordered into the
// primitives' layout once for the two.
template <typename T> void conv_backward(const ConvGeom& g, const T* dy, const T* x, const T* w, T* dx, T* dw);

namespace onednn {
// float32 convolution through oneDNN; same contract as conv2d_forward & co. in conv.h. Each
// returns false, touching nothing, when oneDNN cannot express the geometry (the caller then
// uses pfq's own kernels).
bool conv2d_forward(const ConvGeom& g, const float* x, const float* w, const float* b, float* y);
bool conv2d_backward_input(const ConvGeom& g, const float* dy, const float* w, float* dx);
bool conv2d_backward_weight(const ConvGeom& g, const float* dy, const float* x, float* dw);
bool conv2d_backward(const ConvGeom& g, const float* dy, const float* x, const float* w, float* dx, float* dw);
}  // namespace onednn

}  // namespace pfq::cpu
