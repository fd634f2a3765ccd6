// loss.cpp — log-softmax rows and the fused softmax cross-entropy with label smoothing over
// contiguous [N, K] buffers (reduce.h); core/cuda/loss.cu follows the same formulas and precisions.
#include <algorithm>
#include <cmath>

#include "core/cpu/reduce.h"

namespace pfq::cpu {

template <typename T>
void log_softmax_rows(const T* x, T* out, int64_t R, int64_t K) {
#pragma omp parallel for schedule(static) if (R * K > 65536)
  for (int64_t r = 0; r < R; ++r) {
    const T* p = x + r * K;
    T m = p[0];
    for (int64_t k = 1; k < K; ++k) m = std::max(m, p[k]);
    double s = 0;
    for (int64_t k = 0; k < K; ++k) s += std::exp(double(p[k] - m));
    const T lse = static_cast<T>(m + std::log(s));
    for (int64_t k = 0; k < K; ++k) out[r * K + k] = p[k] - lse;
  }
}

template <typename T>
void cross_entropy_forward(const T* x, const int64_t* t, int64_t N, int64_t K, double smoothing, T* logp, T* loss) {
  log_softmax_rows<T>(x, logp, N, K);
  double total = 0;
  for (int64_t i = 0; i < N; ++i) {
    double row = -(1 - smoothing) * logp[i * K + t[i]];
    if (smoothing > 0) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += logp[i * K + k];
      row -= smoothing / K * s;
    }
    total += row;
  }
  *loss = static_cast<T>(total / N);
}

template <typename T>
void cross_entropy_backward(const T* logp, const int64_t* t, int64_t N, int64_t K, double smoothing, double scale, T* dx) {
  for (int64_t i = 0; i < N; ++i)
    for (int64_t k = 0; k < K; ++k) {
      const double target = (k == t[i] ? 1 - smoothing : 0) + smoothing / K;
      dx[i * K + k] = static_cast<T>(scale * (std::exp(double(logp[i * K + k])) - target));
    }
}

#define PFQ_INST(T)                                                                                        \
  template void log_softmax_rows<T>(const T*, T*, int64_t, int64_t);                                       \
  template void cross_entropy_forward<T>(const T*, const int64_t*, int64_t, int64_t, double, T*, T*);      \
  template void cross_entropy_backward<T>(const T*, const int64_t*, int64_t, int64_t, double, double, T*);
PFQ_INST(float)
PFQ_INST(double)
#undef PFQ_INST

}  // namespace pfq::cpu
