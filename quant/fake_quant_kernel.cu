// fake_quant_kernel.cu — the CUDA kernels of quant/fake_quant_kernel.h (namespace gpu): the
// element-wise maps run on core/cuda's flat kernel, per-row sums/extremes on its deterministic
// row reduction (core/cuda/reduce.cuh). Scalar math comes from the PFQ_HD helpers of the header,
// so scales, zero points and rounding (rint: half to even) match the CPU kernels.
#include <limits>

#include "core/cuda/elementwise.cuh"
#include "core/cuda/reduce.cuh"
#include "quant/fake_quant_kernel.h"

namespace pfq::quant::gpu {
namespace {

using pfq::cuda::detail::launch_flat;
using pfq::cuda::detail::reduce_rows;

template <typename T>
struct MinMax {
  T lo, hi;
};

template <typename T>
__device__ __forceinline__ T clampv(T v, T lo, T hi) { return v < lo ? lo : (v > hi ? hi : v); }

__device__ __forceinline__ double add_d(double a, double b) { return a + b; }

}  // namespace

template <typename T>
void observe_range(int64_t C, int64_t K, const T* x, bool symmetric, T* lo, T* hi, int device) {
  const T inf = std::numeric_limits<T>::infinity();
  // NaNs never replace a value (comparisons with NaN are false), as in the CPU loop.
  reduce_rows(
      device, C, K, MinMax<T>{inf, -inf},
      [=] __device__(int64_t c, int64_t i) { const T v = x[c * K + i]; return MinMax<T>{v, v}; },
      [] __device__(MinMax<T> a, MinMax<T> b) {
        return MinMax<T>{b.lo < a.lo ? b.lo : a.lo, b.hi > a.hi ? b.hi : a.hi};
      },
      [=] __device__(int64_t c, MinMax<T> r) {
        T l = r.lo, h = r.hi;
        if (l > h) l = h = T(0);  // empty row (or only NaNs)
        if (symmetric) {
          const T m = fabs(l) > fabs(h) ? fabs(l) : fabs(h);
          l = -m;
          h = m;
        }
        lo[c] = l;
        hi[c] = h;
      },
      "quant::gpu::observe_range");
}

template <typename T>
void fake_quant_forward(int64_t C, int64_t K, const T* x, QuantGrid g, bool symmetric, bool observe, T* lo, T* hi,
                        T* scale, T* zero_point, T* out, int device) {
  if (observe) observe_range(C, K, x, symmetric, lo, hi, device);
  launch_flat(
      device, C, [=] __device__(int64_t c) { cpu::qparams_from_range(lo[c], hi[c], g, symmetric, scale[c], zero_point[c]); },
      "quant::gpu::qparams");
  const T qmin = static_cast<T>(g.qmin), qmax = static_cast<T>(g.qmax);
  launch_flat(
      device, C * K,
      [=] __device__(int64_t i) {
        const int64_t c = i / K;
        out[i] = cpu::fake_quant_one(x[i], scale[c], zero_point[c], qmin, qmax);
      },
      "quant::gpu::fake_quant_forward");
}

template <typename T>
void fake_quant_backward_x(int64_t C, int64_t K, const T* x, const T* dy, const T* scale, const T* zero_point,
                           QuantGrid g, T* dx, int device) {
  const T qmin = static_cast<T>(g.qmin), qmax = static_cast<T>(g.qmax);
  launch_flat(
      device, C * K,
      [=] __device__(int64_t i) {
        const int64_t c = i / K;
        const T lo = (qmin - zero_point[c]) * scale[c];
        const T hi = (qmax - zero_point[c]) * scale[c];
        dx[i] = (x[i] >= lo && x[i] <= hi) ? dy[i] : T(0);
      },
      "quant::gpu::fake_quant_backward_x");
}

template <typename T>
void row_mean_abs(int64_t C, int64_t K, const T* x, T* out, int device) {
  reduce_rows(
      device, C, K, 0.0, [=] __device__(int64_t c, int64_t i) { return fabs(static_cast<double>(x[c * K + i])); },
      [] __device__(double a, double b) { return add_d(a, b); },
      [=] __device__(int64_t c, double s) { out[c] = K > 0 ? static_cast<T>(s / static_cast<double>(K)) : T(0); },
      "quant::gpu::row_mean_abs");
}

template <typename T>
void binary_forward(int64_t C, int64_t K, const T* x, T* scale, T* out, int device) {
  row_mean_abs(C, K, x, scale, device);
  launch_flat(
      device, C * K,
      [=] __device__(int64_t i) {
        const T s = scale[i / K];
        out[i] = x[i] >= T(0) ? s : -s;
      },
      "quant::gpu::binary_forward");
}

template <typename T>
void binary_backward_x(int64_t n, const T* x, const T* dy, T* dx, int device) {
  launch_flat(device, n, [=] __device__(int64_t i) { dx[i] = fabs(x[i]) <= T(1) ? dy[i] : T(0); },
              "quant::gpu::binary_backward_x");
}

template <typename T>
void pact_forward(int64_t C, int64_t K, const T* x, const T* alpha, int64_t qmax, T* out, int device) {
  const T qm = static_cast<T>(qmax);
  launch_flat(
      device, C * K,
      [=] __device__(int64_t i) {
        const T a = alpha[i / K], s = a / qm;
        out[i] = cpu::fake_quant_one(clampv(x[i], T(0), a), s, T(0), T(0), qm);
      },
      "quant::gpu::pact_forward");
}

// dx is written while the row sum loads each element (every element is loaded exactly once).
template <typename T>
void pact_backward(int64_t C, int64_t K, const T* x, const T* dy, const T* alpha, T* dx, T* dalpha, int device) {
  reduce_rows(
      device, C, K, 0.0,
      [=] __device__(int64_t c, int64_t i) {
        const int64_t j = c * K + i;
        const T a = alpha[c];
        dx[j] = (x[j] >= T(0) && x[j] < a) ? dy[j] : T(0);
        return x[j] >= a ? static_cast<double>(dy[j]) : 0.0;
      },
      [] __device__(double a, double b) { return add_d(a, b); },
      [=] __device__(int64_t c, double s) { dalpha[c] = static_cast<T>(s); }, "quant::gpu::pact_backward");
}

template <typename T>
void lsq_forward(int64_t C, int64_t K, const T* x, const T* step, int64_t qn, int64_t qp, T* out, int device) {
  const T lo = -static_cast<T>(qn), hi = static_cast<T>(qp);
  launch_flat(
      device, C * K,
      [=] __device__(int64_t i) {
        const T s = step[i / K];
        out[i] = rint(clampv(x[i] / s, lo, hi)) * s;
      },
      "quant::gpu::lsq_forward");
}

template <typename T>
void lsq_backward(int64_t C, int64_t K, const T* x, const T* dy, const T* step, int64_t qn, int64_t qp,
                  double grad_scale, T* dx, T* dstep, int device) {
  const T lo = -static_cast<T>(qn), hi = static_cast<T>(qp);
  reduce_rows(
      device, C, K, 0.0,
      [=] __device__(int64_t c, int64_t i) {
        const int64_t j = c * K + i;
        const T v = x[j] / step[c];
        dx[j] = (v >= lo && v <= hi) ? dy[j] : T(0);
        const T d = v <= lo ? lo : (v >= hi ? hi : rint(v) - v);
        return static_cast<double>(dy[j]) * static_cast<double>(d);
      },
      [] __device__(double a, double b) { return add_d(a, b); },
      [=] __device__(int64_t c, double s) { dstep[c] = static_cast<T>(s * grad_scale); }, "quant::gpu::lsq_backward");
}

template <typename T>
void lsq_init_step(int64_t C, int64_t K, const T* x, int64_t qp, T* step, int device) {
  row_mean_abs(C, K, x, step, device);
  const double sq = std::sqrt(static_cast<double>(qp));
  launch_flat(
      device, C,
      [=] __device__(int64_t c) {
        const T v = static_cast<T>(2.0 * static_cast<double>(step[c]) / sq);
        step[c] = v > T(0) ? v : T(1);
      },
      "quant::gpu::lsq_init_step");
}

template <typename T>
void dorefa_forward(int64_t C, int64_t K, const T* x, int64_t n, T* max_tanh, T* out, int device) {
  reduce_rows(
      device, C, K, T(0), [=] __device__(int64_t c, int64_t i) { return fabs(tanh(x[c * K + i])); },
      [] __device__(T a, T b) { return a >= b ? a : b; },
      // all-zero row: tanh is 0 everywhere, use 1
      [=] __device__(int64_t c, T m) { max_tanh[c] = m > T(0) ? m : T(1); }, "quant::gpu::dorefa_max");
  const T nn = static_cast<T>(n);
  launch_flat(
      device, C * K,
      [=] __device__(int64_t i) {
        const T r = tanh(x[i]) / (T(2) * max_tanh[i / K]) + T(0.5);
        out[i] = T(2) * (rint(r * nn) / nn) - T(1);
      },
      "quant::gpu::dorefa_forward");
}

template <typename T>
void dorefa_backward(int64_t C, int64_t K, const T* x, const T* dy, const T* max_tanh, T* dx, int device) {
  launch_flat(
      device, C * K,
      [=] __device__(int64_t i) {
        const T t = tanh(x[i]);
        dx[i] = dy[i] * (T(1) - t * t) / max_tanh[i / K];
      },
      "quant::gpu::dorefa_backward");
}

PFQ_QUANT_GPU_INSTANTIATE(float)
PFQ_QUANT_GPU_INSTANTIATE(double)

}  // namespace pfq::quant::gpu
