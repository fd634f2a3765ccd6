// conv.h — CPU convolution kernels (no autograd): im2col + GEMM for dense and grouped
// convolutions, a direct kernel for depthwise (groups == C == OC), and naive 7-loop
// references that the tests compare every optimised kernel against.
// Layout: x [N, C, H, W], w [OC, C/groups, KH, KW], y [N, OC, OH, OW], all contiguous.
#pragma once
#include <cstdint>

namespace pfq::cpu {

struct ConvGeom {
  int64_t N, C, H, W;       // input
  int64_t OC, KH, KW;       // weight (input channels per group = C / groups)
  int64_t OH, OW;           // output
  int64_t sh, sw, ph, pw, dh, dw, groups;
  // Activations (x, y and their gradients) in NHWC memory (channels-last) rather than NCHW;
  // weights stay OIHW. Only the oneDNN entry points of conv_backend.h take such geometries.
  bool nhwc = false;
  int64_t cg() const { return C / groups; }    // input channels per group
  int64_t ocg() const { return OC / groups; }  // output channels per group
  bool is_depthwise() const { return groups == C && OC == C && groups > 1; }
  bool is_pointwise() const { return KH == 1 && KW == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0; }
};

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
