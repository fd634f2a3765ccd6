// batchnorm_nhwc.cpp — batch normalisation kernels for channels-last inputs, x [M, C] (M =
// N*H*W): the channel is the fastest index, so every loop runs over whole rows and vectorises
// over channels. Per-channel sums are taken over a fixed split of the rows into chunks (in
// double, two passes as batchnorm.cpp: mean, then squared deviations; core/cpu/channel_rows.h), so
// the results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/cpu/norm_pool.h"
#include "core/cpu/channel_rows.h"

namespace pfq::cpu {
namespace {

template <typename T>
void scale_shift(int64_t C, const double* mean, const double* invstd, const T* gamma, const T* beta, std::vector<T>& scale,
                 std::vector<T>& shift) {
  scale.resize(C);
  shift.resize(C);
  for (int64_t c = 0; c < C; ++c) {
    const double g = gamma ? gamma[c] : 1.0;
    scale[c] = static_cast<T>(invstd[c] * g);
    shift[c] = static_cast<T>((beta ? beta[c] : 0.0) - mean[c] * invstd[c] * g);
  }
}

template <typename T, bool Gated>
void backward_rows(int64_t M, int64_t C, bool training, const T* x, const T* dy, const T* y, T lo, T hi, const double* mean,
                   const double* invstd, const T* gamma, T* dx, T* dgamma, T* dbeta) {
  std::vector<double> sums(2 * C);  // sum(dy), sum(dy * xhat), dy gated by the activation
  reduce_rows<2>(M, C, [&](int64_t r0, int64_t r1, double* acc) {
    double* sdy = acc;
    double* sdyx = acc + C;
    for (int64_t r = r0; r < r1; ++r) {
      const T* p = x + r * C;
      const T* d = dy + r * C;
      const T* a = Gated ? y + r * C : nullptr;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        const T g = detail::gated<T, Gated>(d[c], a, c, lo, hi);
        sdy[c] += g;
        sdyx[c] += static_cast<double>(g) * ((p[c] - mean[c]) * invstd[c]);
      }
    }
  }, sums.data());
  for (int64_t c = 0; c < C; ++c) {
    if (dgamma) dgamma[c] = static_cast<T>(sums[C + c]);
    if (dbeta) dbeta[c] = static_cast<T>(sums[c]);
  }
  if (!dx) return;
  // dx = A dy + B x + D per channel, coefficients in double (as batchnorm.cpp)
  const double Md = static_cast<double>(M);
  std::vector<T> A(C), B(C), D(C);
  for (int64_t c = 0; c < C; ++c) {
    const double is = invstd[c], k = (gamma ? gamma[c] : 1.0) * is;
    const double a = training ? sums[c] / Md : 0.0, b = training ? sums[C + c] / Md : 0.0;
    A[c] = static_cast<T>(k);
    B[c] = static_cast<T>(-k * is * b);
    D[c] = static_cast<T>(k * (mean[c] * is * b - a));
  }
  const T* pa = A.data();
  const T* pb = B.data();
  const T* pd = D.data();
#pragma omp parallel for schedule(static) if (M * C > 32768)
  for (int64_t r = 0; r < M; ++r) {
    const T* p = x + r * C;
    const T* d = dy + r * C;
    const T* ya = Gated ? y + r * C : nullptr;
    T* o = dx + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) o[c] = pa[c] * detail::gated<T, Gated>(d[c], ya, c, lo, hi) + pb[c] * p[c] + pd[c];
  }
}

}  // namespace

template <typename T>
void batch_norm_train_forward_nhwc(int64_t M, int64_t C, const T* x, const T* gamma, const T* beta, double eps, T lo, T hi, T* y,
                                   double* mean, double* invstd, double* var) {
  const double Md = static_cast<double>(M);
  reduce_rows<1>(M, C, [&](int64_t r0, int64_t r1, double* s) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* p = x + r * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) s[c] += p[c];
    }
  }, mean);
  for (int64_t c = 0; c < C; ++c) mean[c] /= Md;
  reduce_rows<1>(M, C, [&](int64_t r0, int64_t r1, double* q) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* p = x + r * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        const double d = p[c] - mean[c];
        q[c] += d * d;
      }
    }
  }, var);
  for (int64_t c = 0; c < C; ++c) {
    var[c] /= Md;
    invstd[c] = 1.0 / std::sqrt(var[c] + eps);
  }
  std::vector<T> scale, shift;
  scale_shift(C, mean, invstd, gamma, beta, scale, shift);
  affine_rows(M, C, x, scale.data(), shift.data(), lo, hi, y);
}

template <typename T>
void batch_norm_apply_nhwc(int64_t M, int64_t C, const T* x, const double* mean, const double* invstd, const T* gamma,
                           const T* beta, T lo, T hi, T* y) {
  std::vector<T> scale, shift;
  scale_shift(C, mean, invstd, gamma, beta, scale, shift);
  affine_rows(M, C, x, scale.data(), shift.data(), lo, hi, y);
}

template <typename T>
void batch_norm_backward_nhwc(int64_t M, int64_t C, bool training, const T* x, const T* dy, const T* y, T lo, T hi,
                              const double* mean, const double* invstd, const T* gamma, T* dx, T* dgamma, T* dbeta) {
  if (y) backward_rows<T, true>(M, C, training, x, dy, y, lo, hi, mean, invstd, gamma, dx, dgamma, dbeta);
  else backward_rows<T, false>(M, C, training, x, dy, nullptr, lo, hi, mean, invstd, gamma, dx, dgamma, dbeta);
}

#define PFQ_INST(T)                                                                                                       \
  template void batch_norm_train_forward_nhwc<T>(int64_t, int64_t, const T*, const T*, const T*, double, T, T, T*, double*, \
                                                 double*, double*);                                                       \
  template void batch_norm_apply_nhwc<T>(int64_t, int64_t, const T*, const double*, const double*, const T*, const T*, T, T, T*); \
  template void batch_norm_backward_nhwc<T>(int64_t, int64_t, bool, const T*, const T*, const T*, T, T, const double*,     \
                                            const double*, const T*, T*, T*, T*);
PFQ_INST(float)
PFQ_INST(double)
#undef PFQ_INST

}  // namespace pfq::cpu
