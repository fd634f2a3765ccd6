// no_cuda_kernels.cpp — the entry points of core/cuda/kernels.h in a build without CUDA: each
// throws the "built without CUDA" error of no_cuda.cpp. Ops reach them only with a CUDA tensor,
// which such a build cannot create, so these are a safety net with a clear message.
#include "core/cuda/kernels.h"
#include "core/cuda/cuda_runtime.h"

namespace pfq::cuda {
#define PFQ_NO_CUDA_UNARY(F) void map_unary(const Tensor&, const Tensor&, fn::F) { fail_without_cuda("cuda::map_unary<" #F ">"); }
PFQ_CUDA_UNARY_FUNCTORS(PFQ_NO_CUDA_UNARY)
#undef PFQ_NO_CUDA_UNARY
#define PFQ_NO_CUDA_BINARY(F) \
  void map_binary(const Tensor&, const Tensor&, const Tensor&, fn::F) { fail_without_cuda("cuda::map_binary<" #F ">"); }
PFQ_CUDA_BINARY_FUNCTORS(PFQ_NO_CUDA_BINARY)
PFQ_CUDA_BINARY_FLOAT_FUNCTORS(PFQ_NO_CUDA_BINARY)
#undef PFQ_NO_CUDA_BINARY

void copy(const Tensor&, const Tensor&) { fail_without_cuda("cuda::copy"); }
void fill(const Tensor&, double) { fail_without_cuda("cuda::fill"); }
void sum_rows(const Tensor&, const Tensor&, int64_t, int64_t) { fail_without_cuda("cuda::sum_rows"); }
void extreme_rows(const Tensor&, int64_t, int64_t, bool, const Tensor&, const Tensor&) { fail_without_cuda("cuda::extreme_rows"); }
void scatter_rows(const Tensor&, const Tensor&, const Tensor&, int64_t, int64_t) { fail_without_cuda("cuda::scatter_rows"); }
void log_softmax_rows(const Tensor&, const Tensor&, int64_t, int64_t) { fail_without_cuda("cuda::log_softmax_rows"); }
void cross_entropy_forward(const Tensor&, const Tensor&, double, const Tensor&, const Tensor&) {
  fail_without_cuda("cuda::cross_entropy_forward");
}
void cross_entropy_backward(const Tensor&, const Tensor&, double, const Tensor&, const Tensor&) {
  fail_without_cuda("cuda::cross_entropy_backward");
}
void sgd_update(const Tensor&, const Tensor&, const Tensor&, bool, double, double, double, bool, double) {
  fail_without_cuda("cuda::sgd_update");
}
void adam_update(const Tensor&, const Tensor&, const Tensor&, const Tensor&, double, double, double, double, double,
                 double, double) {
  fail_without_cuda("cuda::adam_update");
}

}  // namespace pfq::cuda
