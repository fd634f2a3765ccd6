// fake_quant_kernel_no_cuda.cpp — the gpu:: kernels of quant/fake_quant_kernel.h in a build
// without CUDA, generated from that header's list (no declaration mirrored by hand): each throws
// the "built without CUDA" error (no CUDA tensor can reach them).
#include "core/cuda/kernels.h"  // fail_without_cuda
#include "quant/fake_quant_kernel.h"

#pragma GCC diagnostic ignored "-Wunused-parameter"  // the stubs keep the list's parameter names

namespace pfq::quant::gpu {

#define PFQ_QUANT_GPU_STUB(NAME, PARAMS) \
  template <typename T>                  \
  void NAME PARAMS { cuda::fail_without_cuda("quant::gpu::" #NAME); }
PFQ_QUANT_GPU_KERNELS(PFQ_QUANT_GPU_STUB, T)
#undef PFQ_QUANT_GPU_STUB

PFQ_QUANT_GPU_INSTANTIATE(float)
PFQ_QUANT_GPU_INSTANTIATE(double)

}  // namespace pfq::quant::gpu
