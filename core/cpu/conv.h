// conv.h — CPU convolution kernels (no autograd): im2col + GEMM for dense and grouped
// convolutions, a direct kernel for depthwise (groups == C == OC), and naive 7-loop
// references that the tests compare every optimised kernel against.
// Layout: x [N, C, H, W], w [OC, C/groups, KH, KW], y [N, OC, OH, OW], all contiguous
// (ConvGeom, core/geometry.h).
#pragma once
#include <cstdint>

#include "core/geometry.h"  // ConvGeom

namespace pfq::cpu {

// y = conv(x, w) + b (b may be null)
template <typename T> void conv2d_forward(const ConvGeom& g, const T* x, const T* w, const T* b, T* y);
// dx = conv_transpose(dy, w)   (dx is overwritten)
template <typename T> void conv2d_backward_input(const ConvGeom& g, const T* dy, const T* w, T* dx);
// dw = correlation of dy with x   (dw is overwritten)
template <typename T> void conv2d_backward_weight(const ConvGeom& g, const T* dy, const T* x, T* dw);

template <typename T> void depthwise_forward(const ConvGeom& g, const T* x, const T* w, const T* b, T* y);
template <typename T> void depthwise_backward_input(const ConvGeom& g, const T* dy, const T* w, T* dx);
template <typename T> void depthwise_backward_weight(const ConvGeom& g, const T* dy, const T* x, T* dw);

// Naive references (any groups), accumulating in double.
template <typename T> void conv2d_forward_naive(const ConvGeom& g, const T* x, const T* w, const T* b, T* y);
template <typename T> void conv2d_backward_input_naive(const ConvGeom& g, const T* dy, const T* w, T* dx);
template <typename T> void conv2d_backward_weight_naive(const ConvGeom& g, const T* dy, const T* x, T* dw);

}  // namespace pfq::cpu
