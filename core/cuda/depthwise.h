// depthwise.h — pfq's own CUDA kernels for depthwise convolution (groups == C == OC), one of
// the paths core/cuda/conv.cpp can take (PFQ_CUDA_DEPTHWISE=own; docs/cuda-backend.md compares
// them on an H100). They are deterministic (no atomics:
// the weight gradient sums fixed slices of the batch and folds the slices in order), which
// cuDNN's measured algorithm choice does not promise. Plain C++ declarations; defined in
// depthwise.cu. Layouts as kernel_list.h (contiguous NCHW; w [C, 1, KH, KW]); no bias (conv.cpp adds it).
#pragma once
#include "core/dtype.h"
#include "core/geometry.h"

namespace pfq::cuda {

void depthwise_forward(DType dtype, int device, const ConvGeom& g, const void* x, const void* w, void* y);
void depthwise_backward_input(DType dtype, int device, const ConvGeom& g, const void* dy, const void* w, void* dx);
void depthwise_backward_weight(DType dtype, int device, const ConvGeom& g, const void* dy, const void* x, void* dw);

}  // namespace pfq::cuda
