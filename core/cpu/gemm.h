// gemm.h — the one matrix-multiply entry point of the CPU backend (float: oneDNN's sgemm when
// built with oneDNN, for the shapes where it is faster; otherwise, and for double, Eigen).
// Keeping every GEMM behind this function keeps the choice of library local.
#pragma once
#include <cstdint>

namespace pfq::cpu {

// Row-major C[M, N] = alpha * op(A) * op(B) + beta * C, op(X) = X or X^T.
// A is [M, K] (or [K, M] when trans_a), B is [K, N] (or [N, K] when trans_b).
// Multi-threaded (OpenMP) unless called inside an active OpenMP parallel region, where it runs
// on the calling thread. beta == 0 overwrites C without reading it. Deterministic for a fixed
// thread count (the library choice is a fixed rule on the shape).
template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc);

}  // namespace pfq::cpu
