// gemm.cpp — row-major GEMM: float through oneDNN's dnnl_sgemm (JIT AVX2/AVX-512 kernels) when
// the build has oneDNN and the shape is one where it is faster, otherwise Eigen maps over the
// caller's memory (no copies).
#include "core/cpu/gemm.h"

// GCC 12's AVX-512 intrinsics (avx512fintrin.h's _mm512_extractf64x4_pd over avxintrin.h's
// self-initialised _mm256_undefined_pd, GCC bug 105593, fixed in GCC 13) report
// -Wmaybe-uninitialized inside Eigen's GEMM kernels when built with -march=native on an
// AVX-512 machine: 278 lines per build, none about pfq's code. GCC decides by the location of
// the Eigen and intrinsic code, so the pragma covers their first inclusion (this is the only
// file that includes Eigen; it must stay the first to include <immintrin.h> in its unity
// group, core/cpu) and nothing of this file's own code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <Eigen/Core>  // includes <immintrin.h> when vectorising
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#include <type_traits>

#ifdef PFQ_WITH_ONEDNN
#include <dnnl.h>
#endif

namespace pfq::cpu {
namespace {
template <typename T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using CMap = Eigen::Map<const RowMat<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <typename T>
using MMap = Eigen::Map<RowMat<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

template <typename T, typename LA, typename RB>
void finish(MMap<T>& c, const LA& a, const RB& b, T alpha, T beta) {
  if (beta == T(0)) {
    if (alpha == T(1)) c.noalias() = a * b;
    else c.noalias() = alpha * (a * b);
  } else {
    if (beta != T(1)) c *= beta;
    if (alpha == T(1)) c.noalias() += a * b;
    else c.noalias() += alpha * (a * b);
  }
}

template <typename T>
void eigen_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
                int64_t ldb, T beta, T* C, int64_t ldc) {
  MMap<T> c(C, M, N, Eigen::OuterStride<>(ldc));
  CMap<T> a(A, trans_a ? K : M, trans_a ? M : K, Eigen::OuterStride<>(lda));
  CMap<T> b(B, trans_b ? N : K, trans_b ? K : N, Eigen::OuterStride<>(ldb));
  if (!trans_a && !trans_b) finish(c, a, b, alpha, beta);
  else if (trans_a && !trans_b) finish(c, a.transpose(), b, alpha, beta);
  else if (!trans_a && trans_b) finish(c, a, b.transpose(), alpha, beta);
  else finish(c, a.transpose(), b.transpose(), alpha, beta);
}

#ifdef PFQ_WITH_ONEDNN
// Whether dnnl_sgemm beats Eigen on this shape. Measured single-threaded (as the im2col
// convolutions call it, one GEMM per OpenMP thread) on AVX-512 with oneDNN 2.6, on the shapes
// of the ResNet-20 / MobileNetV1/V2 pointwise convolutions and linear layers: A*B and A^T*B
// are 1.1-1.6x faster in oneDNN for every size tried (M, K 16..256, N 512/1024). A*B^T (the
// weight gradient: small M x N, long K) is up to 4x slower in oneDNN unless the output is
// large (M >= 96 and N >= 128) or the reduction short (K <= 256); A^T*B^T is slower in oneDNN
// for most sizes and no caller uses it. A fixed rule, so a shape always takes the same kernel.
bool onednn_faster(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K) {
  if (!trans_b) return true;
  if (trans_a) return false;
  return K <= 256 || (M >= 96 && N >= 128);
}

// C = alpha op(A) op(B) + beta C through dnnl_sgemm; false (C untouched) where oneDNN is not
// used: a slower shape, alpha == 0 (BLAS semantics would skip op(A) op(B), Eigen's path
// propagates NaN/Inf from A and B), or leading dimensions oneDNN rejects (a stored matrix of
// one row may have any stride for Eigen; dnnl_sgemm wants ld >= its row length).
bool onednn_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (alpha == 0.0f || !onednn_faster(trans_a, trans_b, M, N, K)) return false;
  if (lda < (trans_a ? M : K) || ldb < (trans_b ? K : N) || ldc < N) return false;
  // Inside an active OpenMP parallel region oneDNN runs the product on the calling thread
  // alone; outside one it uses the OpenMP threads (omp_get_max_threads()). dnnl_sgemm with
  // beta == 0 writes C without reading it (NaN there does not leak; tests/core/test_gemm.cpp).
  return dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) == dnnl_success;
}
#endif
}  // namespace

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {  // C = beta C (oneDNN would leave C as it is when beta == 0)
    MMap<T> c(C, M, N, Eigen::OuterStride<>(ldc));
    if (beta == T(0)) c.setZero();
    else c *= beta;
    return;
  }
#ifdef PFQ_WITH_ONEDNN
  if constexpr (std::is_same_v<T, float>)
    if (onednn_gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) return;
#endif
  eigen_gemm<T>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t, float,
                          float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*, int64_t,
                           double, double*, int64_t);

}  // namespace pfq::cpu
