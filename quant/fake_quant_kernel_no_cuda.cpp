// fake_quant_kernel_no_cuda.cpp — the gpu:: kernels of quant/fake_quant_kernel.h in a build
// without CUDA: each throws the "built without CUDA" error (no CUDA tensor can reach them).
#include "core/cuda/cuda_runtime.h"
#include "quant/fake_quant_kernel.h"

namespace pfq::quant::gpu {
template <typename T>
void observe_range(int64_t, int64_t, const T*, bool, T*, T*, int) { cuda::fail_without_cuda("quant::gpu::observe_range"); }
template <typename T>
void fake_quant_forward(int64_t, int64_t, const T*, QuantGrid, bool, bool, T*, T*, T*, T*, T*, int) {
  cuda::fail_without_cuda("quant::gpu::fake_quant_forward");
}
template <typename T>
void fake_quant_backward_x(int64_t, int64_t, const T*, const T*, const T*, const T*, QuantGrid, T*, int) {
  cuda::fail_without_cuda("quant::gpu::fake_quant_backward_x");
}
template <typename T>
void binary_forward(int64_t, int64_t, const T*, T*, T*, int) { cuda::fail_without_cuda("quant::gpu::binary_forward"); }
template <typename T>
void binary_backward_x(int64_t, const T*, const T*, T*, int) { cuda::fail_without_cuda("quant::gpu::binary_backward_x"); }
template <typename T>
void pact_forward(int64_t, int64_t, const T*, const T*, int64_t, T*, int) { cuda::fail_without_cuda("quant::gpu::pact_forward"); }
template <typename T>
void pact_backward(int64_t, int64_t, const T*, const T*, const T*, T*, T*, int) { cuda::fail_without_cuda("quant::gpu::pact_backward"); }
template <typename T>
void lsq_forward(int64_t, int64_t, const T*, const T*, int64_t, int64_t, T*, int) { cuda::fail_without_cuda("quant::gpu::lsq_forward"); }
template <typename T>
void lsq_backward(int64_t, int64_t, const T*, const T*, const T*, int64_t, int64_t, double, T*, T*, int) {
  cuda::fail_without_cuda("quant::gpu::lsq_backward");
}
template <typename T>
void row_mean_abs(int64_t, int64_t, const T*, T*, int) { cuda::fail_without_cuda("quant::gpu::row_mean_abs"); }
template <typename T>
void lsq_init_step(int64_t, int64_t, const T*, int64_t, T*, int) { cuda::fail_without_cuda("quant::gpu::lsq_init_step"); }
template <typename T>
void dorefa_forward(int64_t, int64_t, const T*, int64_t, T*, T*, int) { cuda::fail_without_cuda("quant::gpu::dorefa_forward"); }
template <typename T>
void dorefa_backward(int64_t, int64_t, const T*, const T*, const T*, T*, int) { cuda::fail_without_cuda("quant::gpu::dorefa_backward"); }

PFQ_QUANT_GPU_INSTANTIATE(float)
PFQ_QUANT_GPU_INSTANTIATE(double)

}  // namespace pfq::quant::gpu
