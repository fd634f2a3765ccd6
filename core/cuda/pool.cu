// pool.cu — max, average and adaptive-average pooling on CUDA (listed in core/cuda/kernel_list.h).
// One thread per output element forward, one per input element backward: the backward gathers
// from the windows that cover its pixel instead of scattering with atomics, so it is
// deterministic and sums in the CPU kernels' order (core/cpu/pool.cpp gives the semantics).
#include <cuda_runtime.h>

#include <cmath>

#include "core/cuda/cuda_check.h"
#include "core/cuda/kernels.h"

namespace pfq::cuda {
namespace {

constexpr int kThreads = 256;

unsigned blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 65535 ? b : 65535);  // grid-stride loops cover the rest
}

#define PFQ_GRID_LOOP(i, n) \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += static_cast<int64_t>(blockDim.x) * gridDim.x)

__device__ inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
__device__ inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

// First output index whose window (start o*s - p, length k) covers position i, and the last.
__device__ inline void covering(int64_t i, int64_t k, int64_t s, int64_t p, int64_t out, int64_t& lo, int64_t& hi) {
  const int64_t t = i + p - k + 1;  // o*s >= t
  lo = t <= 0 ? 0 : (t + s - 1) / s;
  hi = imin((i + p) / s, out - 1);
}

// Window of output (oh, ow) clipped to the padded input; count per PyTorch's avg_pool2d.
__device__ inline int64_t avg_window(const PoolGeom& g, int64_t oh, int64_t ow, bool include_pad, int64_t& h0,
                                     int64_t& h1, int64_t& w0, int64_t& w1) {
  h0 = oh * g.sh - g.ph;
  w0 = ow * g.sw - g.pw;
  h1 = imin(h0 + g.kh, g.H + g.ph);
  w1 = imin(w0 + g.kw, g.W + g.pw);
  const int64_t padded = (h1 - h0) * (w1 - w0);
  h0 = imax(h0, 0);
  w0 = imax(w0, 0);
  h1 = imin(h1, g.H);
  w1 = imin(w1, g.W);
  return include_pad ? padded : (h1 - h0) * (w1 - w0);
}

template <typename T>
__global__ void max_pool_forward_kernel(PoolGeom g, const T* x, T* y, int64_t* argmax) {
  const int64_t n = g.planes * g.OH * g.OW;
  PFQ_GRID_LOOP(o, n) {
    const int64_t ow = o % g.OW, oh = (o / g.OW) % g.OH, p = o / (g.OW * g.OH);
    const T* xp = x + p * g.H * g.W;
    T best = T(0);
    int64_t bi = -1;
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t ih = oh * g.sh - g.ph + i;
      if (ih < 0 || ih >= g.H) continue;
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t iw = ow * g.sw - g.pw + j;
        if (iw < 0 || iw >= g.W) continue;
        const T v = xp[ih * g.W + iw];
        if (bi < 0 || v > best || isnan(v)) {
          best = v;
          bi = ih * g.W + iw;
        }
      }
    }
    y[o] = bi < 0 ? T(-INFINITY) : best;
    argmax[o] = bi;
  }
}

template <typename T>
__global__ void max_pool_backward_kernel(PoolGeom g, const T* dy, const int64_t* argmax, T* dx) {
  const int64_t n = g.planes * g.H * g.W;
  PFQ_GRID_LOOP(i, n) {
    const int64_t iw = i % g.W, ih = (i / g.W) % g.H, p = i / (g.W * g.H);
    const int64_t flat = ih * g.W + iw;
    int64_t oh0, oh1, ow0, ow1;
    covering(ih, g.kh, g.sh, g.ph, g.OH, oh0, oh1);
    covering(iw, g.kw, g.sw, g.pw, g.OW, ow0, ow1);
    T acc = T(0);
    for (int64_t oh = oh0; oh <= oh1; ++oh)
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        const int64_t o = (p * g.OH + oh) * g.OW + ow;
        if (argmax[o] == flat) acc += dy[o];
      }
    dx[i] = acc;
  }
}

template <typename T>
__global__ void avg_pool_forward_kernel(PoolGeom g, bool include_pad, const T* x, T* y) {
  const int64_t n = g.planes * g.OH * g.OW;
  PFQ_GRID_LOOP(o, n) {
    const int64_t ow = o % g.OW, oh = (o / g.OW) % g.OH, p = o / (g.OW * g.OH);
    const T* xp = x + p * g.H * g.W;
    int64_t h0, h1, w0, w1;
    const int64_t cnt = avg_window(g, oh, ow, include_pad, h0, h1, w0, w1);
    double s = 0;
    for (int64_t a = h0; a < h1; ++a)
      for (int64_t b = w0; b < w1; ++b) s += xp[a * g.W + b];
    y[o] = static_cast<T>(cnt > 0 ? s / cnt : 0);
  }
}

template <typename T>
__global__ void avg_pool_backward_kernel(PoolGeom g, bool include_pad, const T* dy, T* dx) {
  const int64_t n = g.planes * g.H * g.W;
  PFQ_GRID_LOOP(i, n) {
    const int64_t iw = i % g.W, ih = (i / g.W) % g.H, p = i / (g.W * g.H);
    int64_t oh0, oh1, ow0, ow1;
    covering(ih, g.kh, g.sh, g.ph, g.OH, oh0, oh1);
    covering(iw, g.kw, g.sw, g.pw, g.OW, ow0, ow1);
    T acc = T(0);
    for (int64_t oh = oh0; oh <= oh1; ++oh)
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        int64_t h0, h1, w0, w1;
        const int64_t cnt = avg_window(g, oh, ow, include_pad, h0, h1, w0, w1);
        if (cnt > 0) acc += dy[(p * g.OH + oh) * g.OW + ow] / static_cast<T>(cnt);
      }
    dx[i] = acc;
  }
}

template <typename T>
__global__ void adaptive_avg_forward_kernel(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const T* x, T* y) {
  const int64_t n = planes * OH * OW;
  PFQ_GRID_LOOP(o, n) {
    const int64_t ow = o % OW, oh = (o / OW) % OH, p = o / (OW * OH);
    const int64_t h0 = oh * H / OH, h1 = ((oh + 1) * H + OH - 1) / OH;
    const int64_t w0 = ow * W / OW, w1 = ((ow + 1) * W + OW - 1) / OW;
    const T* xp = x + p * H * W;
    double s = 0;
    for (int64_t a = h0; a < h1; ++a)
      for (int64_t b = w0; b < w1; ++b) s += xp[a * W + b];
    y[o] = static_cast<T>(s / ((h1 - h0) * (w1 - w0)));
  }
}

// Output bins covering position i: oh with floor(oh*H/OH) <= i < ceil((oh+1)*H/OH).
__device__ inline void adaptive_covering(int64_t i, int64_t in, int64_t out, int64_t& lo, int64_t& hi) {
  lo = imax(i * out / in - 1, 0);
  hi = imin((i + 1) * out / in + 1, out - 1);
}

template <typename T>
__global__ void adaptive_avg_backward_kernel(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const T* dy, T* dx) {
  const int64_t n = planes * H * W;
  PFQ_GRID_LOOP(i, n) {
    const int64_t iw = i % W, ih = (i / W) % H, p = i / (W * H);
    int64_t oh0, oh1, ow0, ow1;
    adaptive_covering(ih, H, OH, oh0, oh1);
    adaptive_covering(iw, W, OW, ow0, ow1);
    T acc = T(0);
    for (int64_t oh = oh0; oh <= oh1; ++oh) {
      const int64_t h0 = oh * H / OH, h1 = ((oh + 1) * H + OH - 1) / OH;
      if (ih < h0 || ih >= h1) continue;
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        const int64_t w0 = ow * W / OW, w1 = ((ow + 1) * W + OW - 1) / OW;
        if (iw < w0 || iw >= w1) continue;
        acc += dy[(p * OH + oh) * OW + ow] / static_cast<T>((h1 - h0) * (w1 - w0));
      }
    }
    dx[i] = acc;
  }
}

void set_device(int device) {
  int current = -1;
  PFQ_CUDA_CHECK(cudaGetDevice(&current));
  if (current != device) PFQ_CUDA_CHECK(cudaSetDevice(device));
}

// On t's device, for n > 0 threads' work: launch(T{}, blocks) with T = t's element type (float
// or double), then the launch's status checked.
template <typename F>
void launch(const Tensor& t, int64_t n, const char* op, const char* kernel, F&& f) {
  if (n == 0) return;
  set_device(t.device().index);
  if (t.dtype() == DType::Float32) f(float{}, blocks_for(n));
  else if (t.dtype() == DType::Float64) f(double{}, blocks_for(n));
  else PFQ_FAIL(op, " on CUDA: expected float32 or float64, got ", dtype_name(t.dtype()));
  PFQ_CUDA_CHECK_LAUNCH(kernel);
}

}  // namespace

void max_pool_forward(const PoolGeom& g, const Tensor& x, const Tensor& y, const Tensor& argmax) {
  launch(x, g.planes * g.OH * g.OW, "max_pool2d", "max_pool_forward_kernel", [&](auto t, unsigned blocks) {
    using T = decltype(t);
    max_pool_forward_kernel<T><<<blocks, kThreads>>>(g, x.data<T>(), y.data<T>(), argmax.data<int64_t>());
  });
}

void max_pool_backward(const PoolGeom& g, const Tensor& dy, const Tensor& argmax, const Tensor& dx) {
  launch(dy, g.planes * g.H * g.W, "max_pool2d backward", "max_pool_backward_kernel", [&](auto t, unsigned blocks) {
    using T = decltype(t);
    max_pool_backward_kernel<T><<<blocks, kThreads>>>(g, dy.data<T>(), argmax.data<int64_t>(), dx.data<T>());
  });
}

void avg_pool_forward(const PoolGeom& g, bool count_include_pad, const Tensor& x, const Tensor& y) {
  launch(x, g.planes * g.OH * g.OW, "avg_pool2d", "avg_pool_forward_kernel", [&](auto t, unsigned blocks) {
    using T = decltype(t);
    avg_pool_forward_kernel<T><<<blocks, kThreads>>>(g, count_include_pad, x.data<T>(), y.data<T>());
  });
}

void avg_pool_backward(const PoolGeom& g, bool count_include_pad, const Tensor& dy, const Tensor& dx) {
  launch(dy, g.planes * g.H * g.W, "avg_pool2d backward", "avg_pool_backward_kernel", [&](auto t, unsigned blocks) {
    using T = decltype(t);
    avg_pool_backward_kernel<T><<<blocks, kThreads>>>(g, count_include_pad, dy.data<T>(), dx.data<T>());
  });
}

void adaptive_avg_pool_forward(const Tensor& x, const Tensor& y) {
  const int64_t planes = x.size(0) * x.size(1), H = x.size(2), W = x.size(3), OH = y.size(2), OW = y.size(3);
  launch(x, planes * OH * OW, "adaptive_avg_pool2d", "adaptive_avg_forward_kernel", [&](auto t, unsigned blocks) {
    using T = decltype(t);
    adaptive_avg_forward_kernel<T><<<blocks, kThreads>>>(planes, H, W, OH, OW, x.data<T>(), y.data<T>());
  });
}

void adaptive_avg_pool_backward(const Tensor& dy, const Tensor& dx) {
  const int64_t planes = dx.size(0) * dx.size(1), H = dx.size(2), W = dx.size(3), OH = dy.size(2), OW = dy.size(3);
  launch(dy, planes * H * W, "adaptive_avg_pool2d backward", "adaptive_avg_backward_kernel", [&](auto t, unsigned blocks) {
    using T = decltype(t);
    adaptive_avg_backward_kernel<T><<<blocks, kThreads>>>(planes, H, W, OH, OW, dy.data<T>(), dx.data<T>());
  });
}

}  // namespace pfq::cuda
