// no_dnn.cpp — the cuBLAS/cuDNN/pooling entry points of core/cuda/dnn.h in a build without
// CUDA: no tensor can live on a GPU there, so reaching one of these is a clear error.
#include "core/cuda/cuda_runtime.h"
#include "core/cuda/dnn.h"
#include "core/error.h"

namespace pfq::cuda {
void gemm(DType, int, bool, bool, int64_t, int64_t, int64_t, double, const void*, int64_t, int64_t, const void*, int64_t, int64_t,
          double, void*, int64_t, int64_t, int64_t) { fail_without_cuda("matmul"); }
void conv2d_forward(DType, int, const ConvGeom&, const void*, const void*, const void*, void*) { fail_without_cuda("conv2d"); }
void conv2d_backward_input(DType, int, const ConvGeom&, const void*, const void*, void*) { fail_without_cuda("conv2d"); }
void conv2d_backward_weight(DType, int, const ConvGeom&, const void*, const void*, void*) { fail_without_cuda("conv2d"); }
void conv2d_backward_bias(DType, int, const ConvGeom&, const void*, void*) { fail_without_cuda("conv2d"); }
int64_t conv_algo_cache_size() { return 0; }
void batch_norm_train_forward(DType, int, int64_t, int64_t, int64_t, const void*, const void*, const void*, double, double, void*,
                              void*, void*, void*, void*) { fail_without_cuda("batch_norm"); }
void batch_norm_infer_forward(DType, int, int64_t, int64_t, int64_t, const void*, const void*, const void*, const void*, const void*,
                              double, void*) { fail_without_cuda("batch_norm"); }
void batch_norm_train_backward(DType, int, int64_t, int64_t, int64_t, const void*, const void*, const void*, const void*, const void*,
                               double, void*, void*, void*) { fail_without_cuda("batch_norm"); }
double batch_norm_min_eps() { return 0; }
bool batch_norm_own_fits(int64_t, int64_t, int64_t) { return false; }
void batch_norm_act_train_forward(DType, int, int64_t, int64_t, int64_t, const void*, const void*, const void*, double, double, void*,
                                  void*, double, double, void*, void*, void*) { fail_without_cuda("batch_norm"); }
void batch_norm_act_train_backward(DType, int, int64_t, int64_t, int64_t, const void*, const void*, const void*, double, double,
                                   const void*, const void*, const void*, void*, void*, void*) { fail_without_cuda("batch_norm"); }
void max_pool_forward(DType, int, const PoolGeom&, const void*, void*, int64_t*) { fail_without_cuda("max_pool2d"); }
void max_pool_backward(DType, int, const PoolGeom&, const void*, const int64_t*, void*) { fail_without_cuda("max_pool2d"); }
void avg_pool_forward(DType, int, const PoolGeom&, bool, const void*, void*) { fail_without_cuda("avg_pool2d"); }
void avg_pool_backward(DType, int, const PoolGeom&, bool, const void*, void*) { fail_without_cuda("avg_pool2d"); }
void adaptive_avg_pool_forward(DType, int, int64_t, int64_t, int64_t, int64_t, int64_t, const void*, void*) {
  fail_without_cuda("adaptive_avg_pool2d");
}
void adaptive_avg_pool_backward(DType, int, int64_t, int64_t, int64_t, int64_t, int64_t, const void*, void*) {
  fail_without_cuda("adaptive_avg_pool2d");
}

}  // namespace pfq::cuda
