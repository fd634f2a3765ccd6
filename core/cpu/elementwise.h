// elementwise.h — CPU kernels for element-wise maps over strided inputs into a contiguous
// output: unary, binary (operands pre-broadcast to the output shape as stride-0 views) and
// dtype-converting copies. Contiguous inputs take a flat OpenMP loop; others walk runs.
#pragma once
#include <omp.h>

#include "core/cpu/strided.h"
#include "core/tensor.h"

namespace pfq::cpu {

// Below this many elements a parallel region costs more than it saves.
constexpr int64_t kParallelGrain = 32768;

// out[i] = f(x[i]); out contiguous with x's shape; TO/TI output/input scalar types.
template <typename TO, typename TI, typename F>
void map_unary(const Tensor& x, Tensor& out, F f) {
  TO* po = out.data<TO>();
  const TI* px = static_cast<const TI*>(x.storage()->data());
  const int64_t n = x.numel();
  if (x.is_contiguous()) {
    px += x.offset();
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) po[i] = static_cast<TO>(f(px[i]));
    return;
  }
  int64_t pos = 0;
  for_each_run<1>(x.shape(), {&x.strides()}, {x.offset()}, [&](auto off, auto st, int64_t len) {
    const TI* p = px + off[0];
    for (int64_t i = 0; i < len; ++i) po[pos + i] = static_cast<TO>(f(p[i * st[0]]));
    pos += len;
  });
}

// out[i] = f(a[i], b[i]); a and b already have out's shape (possibly with stride-0 dims).
template <typename T, typename F>
void map_binary(const Tensor& a, const Tensor& b, Tensor& out, F f) {
  T* po = out.data<T>();
  const T* pa = static_cast<const T*>(a.storage()->data());
  const T* pb = static_cast<const T*>(b.storage()->data());
  const int64_t n = out.numel();
  if (a.is_contiguous() && b.is_contiguous()) {
    pa += a.offset();
    pb += b.offset();
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) po[i] = f(pa[i], pb[i]);
    return;
  }
  int64_t pos = 0;
  for_each_run<2>(out.shape(), {&a.strides(), &b.strides()}, {a.offset(), b.offset()},
                  [&](auto off, auto st, int64_t len) {
                    const T* x = pa + off[0];
                    const T* y = pb + off[1];
                    T* o = po + pos;
                    if (st[0] == 1 && st[1] == 0) {
                      const T yv = *y;
                      for (int64_t i = 0; i < len; ++i) o[i] = f(x[i], yv);
                    } else if (st[0] == 1 && st[1] == 1) {
                      for (int64_t i = 0; i < len; ++i) o[i] = f(x[i], y[i]);
                    } else {
                      for (int64_t i = 0; i < len; ++i) o[i] = f(x[i * st[0]], y[i * st[1]]);
                    }
                    pos += len;
                  });
}

}  // namespace pfq::cpu
