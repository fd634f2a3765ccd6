// gemm.cpp — row-major batched GEMM (bmm) on cuBLAS, listed in core/cuda/kernel_list.h (CUDA builds).
// cuBLAS is column-major: a row-major C[M, N] is a column-major C^T[N, M], and
// C^T = op(B)^T op(A)^T, so we call cuBLAS with the operands swapped (B first, then A) and the
// dimensions N, M; no data is transposed. TF32 as core/backend_options.h chooses.
#include <cublas_v2.h>

#include <cstdint>

#include "core/backend_options.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/kernels.h"
#include "core/cuda/handles.h"

// cuBLAS status check naming the op's shapes.
#define PFQ_GEMM_CHECK(call)                                                                        \
  do {                                                                                              \
    const cublasStatus_t pfq_gemm_status_ = (call);                                                 \
    if (pfq_gemm_status_ != CUBLAS_STATUS_SUCCESS)                                                  \
      PFQ_FAIL("matmul on cuda:", device, " (", dtype_name(dtype), " M=", M, " N=", N, " K=", K, " batch=", batch, \
               trans_a ? " A^T" : "", trans_b ? " B^T" : "", "): cuBLAS call ", #call, " failed: ",   \
               cublasGetStatusString(pfq_gemm_status_), " (status ", static_cast<int>(pfq_gemm_status_), ")"); \
  } while (0)

namespace pfq::cuda {
namespace {

// C_i[M, N] = alpha * op(A_i) * op(B_i) + beta * C_i for i < batch with A_i = A + i * stride_a
// (stride 0 shares one matrix), likewise B and C; lda/ldb/ldc are row strides.
void gemm(DType dtype, int device, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
          const void* A, int64_t lda, int64_t stride_a, const void* B, int64_t ldb, int64_t stride_b, double beta,
          void* C, int64_t ldc, int64_t stride_c, int64_t batch) {
  if (M == 0 || N == 0 || batch == 0) return;
  PFQ_CHECK(M <= INT32_MAX && N <= INT32_MAX && K <= INT32_MAX && lda <= INT32_MAX && ldb <= INT32_MAX && ldc <= INT32_MAX &&
                batch <= INT32_MAX,
            "matmul on CUDA: dimensions M=", M, " N=", N, " K=", K, " batch=", batch, " exceed cuBLAS's 32-bit sizes");
  require_device(device);
  int current = -1;
  PFQ_CUDA_CHECK(cudaGetDevice(&current));
  if (current != device) PFQ_CUDA_CHECK(cudaSetDevice(device));
  cublasHandle_t h = cublas_handle(device);
  const cublasOperation_t opa = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, opb = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int m = static_cast<int>(M), n = static_cast<int>(N), k = static_cast<int>(K), nb = static_cast<int>(batch);
  if (dtype == DType::Float32) {
    PFQ_GEMM_CHECK(cublasSetMathMode(h, backend_options().allow_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    const float a = static_cast<float>(alpha), b = static_cast<float>(beta);
    const auto* pa = static_cast<const float*>(A);
    const auto* pb = static_cast<const float*>(B);
    auto* pc = static_cast<float*>(C);
    if (batch == 1)
      PFQ_GEMM_CHECK(cublasSgemm(h, opb, opa, n, m, k, &a, pb, static_cast<int>(ldb), pa, static_cast<int>(lda), &b, pc,
                                   static_cast<int>(ldc)));
    else
      PFQ_GEMM_CHECK(cublasSgemmStridedBatched(h, opb, opa, n, m, k, &a, pb, static_cast<int>(ldb), stride_b, pa,
                                                 static_cast<int>(lda), stride_a, &b, pc, static_cast<int>(ldc), stride_c, nb));
  } else if (dtype == DType::Float64) {
    const double a = alpha, b = beta;
    const auto* pa = static_cast<const double*>(A);
    const auto* pb = static_cast<const double*>(B);
    auto* pc = static_cast<double*>(C);
    if (batch == 1)
      PFQ_GEMM_CHECK(cublasDgemm(h, opb, opa, n, m, k, &a, pb, static_cast<int>(ldb), pa, static_cast<int>(lda), &b, pc,
                                   static_cast<int>(ldc)));
    else
      PFQ_GEMM_CHECK(cublasDgemmStridedBatched(h, opb, opa, n, m, k, &a, pb, static_cast<int>(ldb), stride_b, pa,
                                                 static_cast<int>(lda), stride_a, &b, pc, static_cast<int>(ldc), stride_c, nb));
  } else {
    PFQ_FAIL("matmul on CUDA: expected float32 or float64, got ", dtype_name(dtype));
  }
}

}  // namespace

void bmm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, const Tensor& out) {
  const int64_t batch = a.size(0);
  const int64_t M = trans_a ? a.size(2) : a.size(1), K = trans_a ? a.size(1) : a.size(2);
  const int64_t N = trans_b ? b.size(1) : b.size(2);
  const bool shared_b = b.size(0) == 1;  // batch stride 0
  gemm(a.dtype(), a.device().index, trans_a, trans_b, M, N, K, 1.0, a.raw_data(), trans_a ? M : K, M * K, b.raw_data(),
       trans_b ? K : N, shared_b ? 0 : K * N, 0.0, out.raw_data(), N, M * N, batch);
}

}  // namespace pfq::cuda
