// batchnorm.cpp — batch normalisation kernels, parallel over channels. Statistics are
// two-pass in double (mean, then squared deviations) so tiny variances — the very channels
// PfQ looks for — are not lost to cancellation. Reductions are `omp simd` (a fixed
// vectorised order, so results stay deterministic).
#include <algorithm>
#include <cmath>

#include "core/cpu/norm_pool.h"

namespace pfq::cpu {

template <typename T>
void batch_norm_train_forward(int64_t N, int64_t C, int64_t S, const T* x, const T* gamma, const T* beta, double eps, T lo, T hi,
                              T* y, double* mean, double* invstd, double* var) {
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
      for (int64_t i = 0; i < S; ++i) o[i] = std::min(std::max(p[i] * scale + shift, lo), hi);
    }
  }
}

template <typename T>
void batch_norm_apply(int64_t N, int64_t C, int64_t S, const T* x, const double* mean, const double* invstd, const T* gamma,
                      const T* beta, T lo, T hi, T* y) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const double g = gamma ? gamma[c] : 1.0;
      const T scale = static_cast<T>(invstd[c] * g);
      const T shift = static_cast<T>((beta ? beta[c] : 0.0) - mean[c] * invstd[c] * g);
      const T* p = x + (n * C + c) * S;
      T* o = y + (n * C + c) * S;
#pragma omp simd
      for (int64_t i = 0; i < S; ++i) o[i] = std::min(std::max(p[i] * scale + shift, lo), hi);
    }
}

namespace {

template <typename T, bool Gated>
void bn_backward_channels(int64_t N, int64_t C, int64_t S, bool training, const T* x, const T* dy, const T* y, T lo, T hi,
                          const double* mean, const double* invstd, const T* gamma, T* dx, T* dgamma, T* dbeta) {
  const double M = static_cast<double>(N * S);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < C; ++c) {
    const double m = mean[c], is = invstd[c];
    double sdy = 0, sdyx = 0;  // sum(dy), sum(dy * xhat), dy gated by the activation
    for (int64_t n = 0; n < N; ++n) {
      const int64_t off = (n * C + c) * S;
      const T* p = x + off;
      const T* d = dy + off;
      const T* a = Gated ? y + off : nullptr;
#pragma omp simd reduction(+ : sdy, sdyx)
      for (int64_t i = 0; i < S; ++i) {
        const T g = detail::gated<T, Gated>(d[i], a, i, lo, hi);
        sdy += g;
        sdyx += g * ((p[i] - m) * is);
      }
    }
    if (dgamma) dgamma[c] = static_cast<T>(sdyx);
    if (dbeta) dbeta[c] = static_cast<T>(sdy);
    if (!dx) continue;
    // dx = k (dy - a - (x - m) is b) = A dy + B x + D, coefficients in double, per element in T
    const double gm = gamma ? gamma[c] : 1.0;
    const double k = gm * is;
    const double a = training ? sdy / M : 0.0, b = training ? sdyx / M : 0.0;
    const T A = static_cast<T>(k), B = static_cast<T>(-k * is * b), D = static_cast<T>(k * (m * is * b - a));
    for (int64_t n = 0; n < N; ++n) {
      const int64_t off = (n * C + c) * S;
      const T* p = x + off;
      const T* d = dy + off;
      const T* ya = Gated ? y + off : nullptr;
      T* o = dx + off;
#pragma omp simd
      for (int64_t i = 0; i < S; ++i) o[i] = A * detail::gated<T, Gated>(d[i], ya, i, lo, hi) + B * p[i] + D;
    }
  }
}

}  // namespace

template <typename T>
void batch_norm_backward(int64_t N, int64_t C, int64_t S, bool training, const T* x, const T* dy, const T* y, T lo, T hi,
                         const double* mean, const double* invstd, const T* gamma, T* dx, T* dgamma, T* dbeta) {
  if (y)
    bn_backward_channels<T, true>(N, C, S, training, x, dy, y, lo, hi, mean, invstd, gamma, dx, dgamma, dbeta);
  else
    bn_backward_channels<T, false>(N, C, S, training, x, dy, nullptr, lo, hi, mean, invstd, gamma, dx, dgamma, dbeta);
}

#define PFQ_INST(T)                                                                                                     \
  template void batch_norm_train_forward<T>(int64_t, int64_t, int64_t, const T*, const T*, const T*, double, T, T, T*, \
                                            double*, double*, double*);                                                \
  template void batch_norm_apply<T>(int64_t, int64_t, int64_t, const T*, const double*, const double*, const T*, const T*, T, T, \
                                    T*);                                                                                \
  template void batch_norm_backward<T>(int64_t, int64_t, int64_t, bool, const T*, const T*, const T*, T, T, const double*, \
                                       const double*, const T*, T*, T*, T*);
PFQ_INST(float)
PFQ_INST(double)
#undef PFQ_INST

}  // namespace pfq::cpu
