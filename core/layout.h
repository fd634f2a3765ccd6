// layout.h — memory layouts of 4-D activations. A tensor is always [N, C, H, W] to every op;
// its memory is either contiguous (NCHW) or channels-last (NHWC: strides {H*W*C, 1, W*C, C}).
// CPU float32 convolutions on oneDNN produce channels-last outputs when the nhwc layout is
// selected (core/cpu/conv_backend.h); batch norm, the element-wise ops and gradient
// accumulation keep that layout, and every other op reads such tensors through contiguous().
#pragma once
#include "core/tensor.h"

namespace pfq {

Shape channels_last_strides(const Shape& s);  // [N, C, H, W] -> {H*W*C, 1, W*C, C}
// 4-D with channels-last strides (dimensions of size 1 ignored, as is_contiguous() does, so a
// tensor with C == 1 or H*W == 1 is both).
bool is_channels_last(const Tensor& t);
// channels-last and not contiguous: the one case where the two layouts really differ.
bool is_strictly_channels_last(const Tensor& t);
Tensor empty_channels_last(const Shape& s, DType dt = DType::Float32, Device dev = Device::cpu());
// x in channels-last memory, differentiable (the gradient passes through unchanged): how a
// user or a test hands channels-last tensors to the ops.
Tensor to_channels_last(const Tensor& x);
// x in channels-last memory: x itself when it already is, else a copy (no autograd).
Tensor channels_last_copy(const Tensor& x);
// An uninitialised tensor of x's shape, dtype and device, channels-last when x strictly is,
// contiguous otherwise.
Tensor empty_like_layout(const Tensor& x);
// x in `like`'s layout (channels-last or contiguous): x itself when it already is, else a copy.
Tensor same_layout_as(const Tensor& x, const Tensor& like);
// A copy of x (no autograd) in x's layout: channels-last stays channels-last.
Tensor copy_keeping_layout(const Tensor& x);
// A 1-D view over a contiguous or channels-last tensor's memory (numel elements).
Tensor flat_view(const Tensor& t);

namespace cpu {
// Plain transposes between NCHW and NHWC buffers of [N, C, S] (S = H*W) elements.
template <typename T> void nchw_to_nhwc(int64_t N, int64_t C, int64_t S, const T* src, T* dst);
template <typename T> void nhwc_to_nchw(int64_t N, int64_t C, int64_t S, const T* src, T* dst);
}  // namespace cpu

}  // namespace pfq
