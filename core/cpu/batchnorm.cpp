// batchnorm.cpp — batch normalisation kernels, parallel over channels. Statistics are
// two-pass in double (mean, then squared deviations) so tiny variances — the very channels
// PfQ looks for — are not lost to cancellation. Reductions are `omp simd` (a fixed
// vectorised order, so results stay deterministic).
#include <cmath>

#include "core/cpu/norm_pool.h"

namespace pfq::cpu {

template <typename T>
void batch_norm_train_forward(int64_t N, int64_t C, int64_t S, const T* x, const T* gamma, const T* beta, double eps, T* y,
                              double* mean, double* invstd, double* var) {
  const double M = static_cast<double>(N * S);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < C; ++c) {
    double s = 0;
    for (int64_t n = 0; n < N; ++n) {
      const T* p = x + (n * C + c) * S;
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < S; ++i) s += p[i];
    }
    const double m = s / M;
    double q = 0;
    for (int64_t n = 0; n < N; ++n) {
      const T* p = x + (n * C + c) * S;
#pragma omp simd reduction(+ : q)
      for (int64_t i = 0; i < S; ++i) {
        const double d = p[i] - m;
        q += d * d;
      }
    }
    const double v = q / M, is = 1.0 / std::sqrt(v + eps);
    mean[c] = m;
    invstd[c] = is;
    var[c] = v;
    const T scale = static_cast<T>(is * (gamma ? gamma[c] : T(1)));
    const T shift = static_cast<T>((beta ? beta[c] : T(0)) - m * is * (gamma ? gamma[c] : T(1)));
    for (int64_t n = 0; n < N; ++n) {
      const T* p = x + (n * C + c) * S;
      T* o = y + (n * C + c) * S;
#pragma omp simd
      for (int64_t i = 0; i < S; ++i) o[i] = p[i] * scale + shift;
    }
  }
}

template <typename T>
void batch_norm_apply(int64_t N, int64_t C, int64_t S, const T* x, const double* mean, const double* invstd, const T* gamma,
                      const T* beta, T* y) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const double g = gamma ? gamma[c] : 1.0;
      const T scale = static_cast<T>(invstd[c] * g);
      const T shift = static_cast<T>((beta ? beta[c] : 0.0) - mean[c] * invstd[c] * g);
      const T* p = x + (n * C + c) * S;
      T* o = y + (n * C + c) * S;
      for (int64_t i = 0; i < S; ++i) o[i] = p[i] * scale + shift;
    }
}

template <typename T>
void batch_norm_backward(int64_t N, int64_t C, int64_t S, bool training, const T* x, const T* dy, const double* mean,
                         const double* invstd, const T* gamma, T* dx, T* dgamma, T* dbeta) {
  const double M = static_cast<double>(N * S);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < C; ++c) {
    const double m = mean[c], is = invstd[c];
    double sdy = 0, sdyx = 0;  // sum(dy), sum(dy * xhat)
    for (int64_t n = 0; n < N; ++n) {
      const T* p = x + (n * C + c) * S;
      const T* d = dy + (n * C + c) * S;
#pragma omp simd reduction(+ : sdy, sdyx)
      for (int64_t i = 0; i < S; ++i) {
        sdy += d[i];
        sdyx += d[i] * ((p[i] - m) * is);
      }
    }
    if (dgamma) dgamma[c] = static_cast<T>(sdyx);
    if (dbeta) dbeta[c] = static_cast<T>(sdy);
    if (!dx) continue;
    // dx = k (dy - a - (x - m) is b) = A dy + B x + D, coefficients in double, per element in T
    const double g = gamma ? gamma[c] : 1.0;
    const double k = g * is;
    const double a = training ? sdy / M : 0.0, b = training ? sdyx / M : 0.0;
    const T A = static_cast<T>(k), B = static_cast<T>(-k * is * b), D = static_cast<T>(k * (m * is * b - a));
    for (int64_t n = 0; n < N; ++n) {
      const T* p = x + (n * C + c) * S;
      const T* d = dy + (n * C + c) * S;
      T* o = dx + (n * C + c) * S;
#pragma omp simd
      for (int64_t i = 0; i < S; ++i) o[i] = A * d[i] + B * p[i] + D;
    }
  }
}

#define PFQ_INST(T)                                                                                                     \
  template void batch_norm_train_forward<T>(int64_t, int64_t, int64_t, const T*, const T*, const T*, double, T*, double*, \
                                            double*, double*);                                                         \
  template void batch_norm_apply<T>(int64_t, int64_t, int64_t, const T*, const double*, const double*, const T*, const T*, T*); \
  template void batch_norm_backward<T>(int64_t, int64_t, int64_t, bool, const T*, const T*, const double*, const double*, \
                                       const T*, T*, T*, T*);
PFQ_INST(float)
PFQ_INST(double)
#undef PFQ_INST

}  // namespace pfq::cpu
