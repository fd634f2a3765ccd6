// fake_quant_kernel.cpp — CPU kernels declared in fake_quant_kernel.h. Work is split into
// fixed (row, block) tasks; OpenMP runs them in parallel above a size threshold and per-task
// partial results are combined in task order, so every result is thread-count independent.
#include "quant/fake_quant_kernel.h"

#include <algorithm>
#include <vector>

namespace pfq::quant::cpu {
namespace {

constexpr int64_t kBlock = 16384;        // elements per task
constexpr int64_t kParallelMin = 32768;  // below this a parallel region costs more than it saves

int64_t blocks_per_row(int64_t K) { return std::max<int64_t>(1, (K + kBlock - 1) / kBlock); }

// f(c, begin, end) for every block of every row.
template <typename F>
void for_row_blocks(int64_t C, int64_t K, F f) {
  const int64_t nb = blocks_per_row(K), tasks = C * nb;
#pragma omp parallel for schedule(static) if (C * K > kParallelMin)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t c = t / nb, b = t % nb;
    f(c, b * kBlock, std::min(K, (b + 1) * kBlock));
  }
}

// out[c] = combine(... combine(init, part(c, block 0)), ..., part(c, block nb-1)).
template <typename Acc, typename Part, typename Combine>
void reduce_rows(int64_t C, int64_t K, Acc init, Part part, Combine combine, Acc* out) {
  const int64_t nb = blocks_per_row(K);
  std::vector<Acc> parts(static_cast<size_t>(C * nb), init);
  for_row_blocks(C, K, [&](int64_t c, int64_t b0, int64_t b1) { parts[c * nb + b0 / kBlock] = part(c, b0, b1); });
  for (int64_t c = 0; c < C; ++c) {
    Acc a = init;
    for (int64_t b = 0; b < nb; ++b) a = combine(a, parts[c * nb + b]);
    out[c] = a;
  }
}

double add_d(double a, double b) { return a + b; }

template <typename T>
T clampv(T v, T lo, T hi) { return v < lo ? lo : (v > hi ? hi : v); }

}  // namespace

template <typename T>
void observe_range(int64_t C, int64_t K, const T* x, bool symmetric, T* lo, T* hi) {
  struct MinMax { T lo, hi; };
  const T inf = std::numeric_limits<T>::infinity();
  std::vector<MinMax> r(static_cast<size_t>(C));
  reduce_rows<MinMax>(
      C, K, MinMax{inf, -inf},
      [&](int64_t c, int64_t b0, int64_t b1) {
        const T* p = x + c * K;
        T l = inf, h = -inf;
        for (int64_t i = b0; i < b1; ++i) {
          l = p[i] < l ? p[i] : l;
          h = p[i] > h ? p[i] : h;
        }
        return MinMax{l, h};
      },
      [](MinMax a, MinMax b) { return MinMax{b.lo < a.lo ? b.lo : a.lo, b.hi > a.hi ? b.hi : a.hi}; }, r.data());
  for (int64_t c = 0; c < C; ++c) {
    T l = r[c].lo, h = r[c].hi;
    if (l > h) l = h = T(0);  // empty row (or only NaNs)
    if (symmetric) {
      const T m = std::max(std::fabs(l), std::fabs(h));
      l = -m;
      h = m;
    }
    lo[c] = l;
    hi[c] = h;
  }
}

template <typename T>
void fake_quant_forward(int64_t C, int64_t K, const T* x, QuantGrid g, bool symmetric, bool observe, T* lo, T* hi,
                        T* scale, T* zero_point, T* out) {
  if (observe) observe_range(C, K, x, symmetric, lo, hi);
  for (int64_t c = 0; c < C; ++c) qparams_from_range(lo[c], hi[c], g, symmetric, scale[c], zero_point[c]);
  const T qmin = static_cast<T>(g.qmin), qmax = static_cast<T>(g.qmax);
  for_row_blocks(C, K, [&](int64_t c, int64_t b0, int64_t b1) {
    const T s = scale[c], z = zero_point[c];
    const T* p = x + c * K;
    T* o = out + c * K;
    for (int64_t i = b0; i < b1; ++i) o[i] = fake_quant_one(p[i], s, z, qmin, qmax);
  });
}

template <typename T>
void fake_quant_backward_x(int64_t C, int64_t K, const T* x, const T* dy, const T* scale, const T* zero_point,
                           QuantGrid g, T* dx) {
  for_row_blocks(C, K, [&](int64_t c, int64_t b0, int64_t b1) {
    const T lo = (static_cast<T>(g.qmin) - zero_point[c]) * scale[c];
    const T hi = (static_cast<T>(g.qmax) - zero_point[c]) * scale[c];
    const int64_t off = c * K;
    for (int64_t i = off + b0; i < off + b1; ++i) dx[i] = (x[i] >= lo && x[i] <= hi) ? dy[i] : T(0);
  });
}

template <typename T>
void row_mean_abs(int64_t C, int64_t K, const T* x, T* out) {
  std::vector<double> sums(static_cast<size_t>(C));
  reduce_rows<double>(
      C, K, 0.0,
      [&](int64_t c, int64_t b0, int64_t b1) {
        double s = 0;
        for (int64_t i = b0; i < b1; ++i) s += std::fabs(static_cast<double>(x[c * K + i]));
        return s;
      },
      add_d, sums.data());
  for (int64_t c = 0; c < C; ++c) out[c] = K > 0 ? static_cast<T>(sums[c] / static_cast<double>(K)) : T(0);
}

template <typename T>
void binary_forward(int64_t C, int64_t K, const T* x, T* scale, T* out) {
  row_mean_abs(C, K, x, scale);
  for_row_blocks(C, K, [&](int64_t c, int64_t b0, int64_t b1) {
    const T s = scale[c];
    for (int64_t i = c * K + b0; i < c * K + b1; ++i) out[i] = x[i] >= T(0) ? s : -s;
  });
}

template <typename T>
void binary_backward_x(int64_t n, const T* x, const T* dy, T* dx) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) dx[i] = std::fabs(x[i]) <= T(1) ? dy[i] : T(0);
}

template <typename T>
void pact_forward(int64_t C, int64_t K, const T* x, const T* alpha, int64_t qmax, T* out) {
  const T qm = static_cast<T>(qmax);
  for_row_blocks(C, K, [&](int64_t c, int64_t b0, int64_t b1) {
    const T a = alpha[c], s = a / qm;
    for (int64_t i = c * K + b0; i < c * K + b1; ++i) out[i] = fake_quant_one(clampv(x[i], T(0), a), s, T(0), T(0), qm);
  });
}

template <typename T>
void pact_backward(int64_t C, int64_t K, const T* x, const T* dy, const T* alpha, T* dx, T* dalpha) {
  std::vector<double> sums(static_cast<size_t>(C));
  reduce_rows<double>(
      C, K, 0.0,
      [&](int64_t c, int64_t b0, int64_t b1) {
        const T a = alpha[c];
        double s = 0;
        for (int64_t i = c * K + b0; i < c * K + b1; ++i) {
          dx[i] = (x[i] >= T(0) && x[i] < a) ? dy[i] : T(0);
          if (x[i] >= a) s += static_cast<double>(dy[i]);
        }
        return s;
      },
      add_d, sums.data());
  for (int64_t c = 0; c < C; ++c) dalpha[c] = static_cast<T>(sums[c]);
}

template <typename T>
void lsq_forward(int64_t C, int64_t K, const T* x, const T* step, int64_t qn, int64_t qp, T* out) {
  const T lo = -static_cast<T>(qn), hi = static_cast<T>(qp);
  for_row_blocks(C, K, [&](int64_t c, int64_t b0, int64_t b1) {
    const T s = step[c];
    for (int64_t i = c * K + b0; i < c * K + b1; ++i) out[i] = std::nearbyint(clampv(x[i] / s, lo, hi)) * s;
  });
}

template <typename T>
void lsq_backward(int64_t C, int64_t K, const T* x, const T* dy, const T* step, int64_t qn, int64_t qp,
                  double grad_scale, T* dx, T* dstep) {
  const T lo = -static_cast<T>(qn), hi = static_cast<T>(qp);
  std::vector<double> sums(static_cast<size_t>(C));
  reduce_rows<double>(
      C, K, 0.0,
      [&](int64_t c, int64_t b0, int64_t b1) {
        const T s = step[c];
        double acc = 0;
        for (int64_t i = c * K + b0; i < c * K + b1; ++i) {
          const T v = x[i] / s;
          dx[i] = (v >= lo && v <= hi) ? dy[i] : T(0);
          const T d = v <= lo ? lo : (v >= hi ? hi : std::nearbyint(v) - v);
          acc += static_cast<double>(dy[i]) * static_cast<double>(d);
        }
        return acc;
      },
      add_d, sums.data());
  for (int64_t c = 0; c < C; ++c) dstep[c] = static_cast<T>(sums[c] * grad_scale);
}

template <typename T>
void dorefa_forward(int64_t C, int64_t K, const T* x, int64_t n, T* max_tanh, T* out) {
  reduce_rows<T>(
      C, K, T(0),
      [&](int64_t c, int64_t b0, int64_t b1) {
        T m = 0;
        for (int64_t i = c * K + b0; i < c * K + b1; ++i) m = std::max(m, std::fabs(std::tanh(x[i])));
        return m;
      },
      [](T a, T b) { return a > b ? a : b; }, max_tanh);
  for (int64_t c = 0; c < C; ++c)
    if (!(max_tanh[c] > T(0))) max_tanh[c] = T(1);  // all-zero row: tanh is 0 everywhere
  const T nn = static_cast<T>(n);
  for_row_blocks(C, K, [&](int64_t c, int64_t b0, int64_t b1) {
    const T m2 = T(2) * max_tanh[c];
    for (int64_t i = c * K + b0; i < c * K + b1; ++i) {
      const T r = std::tanh(x[i]) / m2 + T(0.5);
      out[i] = T(2) * (std::nearbyint(r * nn) / nn) - T(1);
    }
  });
}

template <typename T>
void dorefa_backward(int64_t C, int64_t K, const T* x, const T* dy, const T* max_tanh, T* dx) {
  for_row_blocks(C, K, [&](int64_t c, int64_t b0, int64_t b1) {
    const T m = max_tanh[c];
    for (int64_t i = c * K + b0; i < c * K + b1; ++i) {
      const T t = std::tanh(x[i]);
      dx[i] = dy[i] * (T(1) - t * t) / m;
    }
  });
}

#define PFQ_QUANT_INSTANTIATE(T)                                                                                   \
  template void observe_range<T>(int64_t, int64_t, const T*, bool, T*, T*);                                       \
  template void fake_quant_forward<T>(int64_t, int64_t, const T*, QuantGrid, bool, bool, T*, T*, T*, T*, T*);     \
  template void fake_quant_backward_x<T>(int64_t, int64_t, const T*, const T*, const T*, const T*, QuantGrid, T*); \
  template void row_mean_abs<T>(int64_t, int64_t, const T*, T*);                                                  \
  template void binary_forward<T>(int64_t, int64_t, const T*, T*, T*);                                            \
  template void binary_backward_x<T>(int64_t, const T*, const T*, T*);                                            \
  template void pact_forward<T>(int64_t, int64_t, const T*, const T*, int64_t, T*);                               \
  template void pact_backward<T>(int64_t, int64_t, const T*, const T*, const T*, T*, T*);                         \
  template void lsq_forward<T>(int64_t, int64_t, const T*, const T*, int64_t, int64_t, T*);                       \
  template void lsq_backward<T>(int64_t, int64_t, const T*, const T*, const T*, int64_t, int64_t, double, T*, T*); \
  template void dorefa_forward<T>(int64_t, int64_t, const T*, int64_t, T*, T*);                                   \
  template void dorefa_backward<T>(int64_t, int64_t, const T*, const T*, const T*, T*);

PFQ_QUANT_INSTANTIATE(float)
PFQ_QUANT_INSTANTIATE(double)

}  // namespace pfq::quant::cpu
