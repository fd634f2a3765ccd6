// depthwise.h — pfq's own CUDA kernels for depthwise convolution (groups == C == OC), the
// alternative to cuDNN's that core/cuda/conv.cpp takes when PFQ_OWN_DEPTHWISE=1. Measured on an
// H100 (docs/gpu-results.md) they are correct but slower than cuDNN's in a MobileNetV1 training
// step (16.7 against 15.9 ms), so cuDNN stays the default; they are deterministic (no atomics:
// the weight gradient sums fixed slices of the batch and folds the slices in order), which
// cuDNN's measured algorithm choice does not promise. Plain C++ declarations; defined in
// depthwise.cu. Layouts as dnn.h (contiguous NCHW; w [C, 1, KH, KW]); no bias (conv.cpp adds it).
#pragma once
#include "core/cpu/conv.h"
#include "core/dtype.h"

namespace pfq::cuda {

bool use_own_depthwise(const cpu::ConvGeom& g);  // g.is_depthwise() and PFQ_OWN_DEPTHWISE=1

void depthwise_forward(DType dtype, int device, const cpu::ConvGeom& g, const void* x, const void* w, void* y);
void depthwise_backward_input(DType dtype, int device, const cpu::ConvGeom& g, const void* dy, const void* w, void* dx);
void depthwise_backward_weight(DType dtype, int device, const cpu::ConvGeom& g, const void* dy, const void* x, void* dw);

}  // namespace pfq::cuda
