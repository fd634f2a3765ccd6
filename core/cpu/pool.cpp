// pool.cpp — max, average and adaptive-average pooling kernels, parallel over planes; max
// pooling also on channels-last tensors (parallel over output rows, vectorised over channels).
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/cpu/norm_pool.h"

namespace pfq::cpu {

template <typename T>
void max_pool_forward(const PoolGeom& g, const T* x, T* y, int64_t* argmax) {
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < g.planes; ++p) {
    const T* xp = x + p * g.H * g.W;
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        T best = -std::numeric_limits<T>::infinity();
        int64_t bi = -1;
        for (int64_t i = 0; i < g.kh; ++i) {
          const int64_t ih = oh * g.sh - g.ph + i;
          if (ih < 0 || ih >= g.H) continue;
          for (int64_t j = 0; j < g.kw; ++j) {
            const int64_t iw = ow * g.sw - g.pw + j;
            if (iw < 0 || iw >= g.W) continue;
            const T v = xp[ih * g.W + iw];
            if (bi < 0 || v > best || std::isnan(v)) {
              best = v;
              bi = ih * g.W + iw;
            }
          }
        }
        const int64_t o = (p * g.OH + oh) * g.OW + ow;
        y[o] = best;
        if (argmax) argmax[o] = bi;
      }
  }
}

template <typename T>
void max_pool_backward(const PoolGeom& g, const T* dy, const int64_t* argmax, T* dx) {
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < g.planes; ++p) {
    T* dxp = dx + p * g.H * g.W;
    std::fill(dxp, dxp + g.H * g.W, T(0));
    for (int64_t o = p * g.OH * g.OW; o < (p + 1) * g.OH * g.OW; ++o)
      if (argmax[o] >= 0) dxp[argmax[o]] += dy[o];
  }
}

template <typename T>
void max_pool_forward_nhwc(const PoolGeom& g, int64_t C, const T* x, T* y, int64_t* argmax) {
  const int64_t N = g.planes / C, rows = N * g.OH;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = r / g.OH, oh = r % g.OH;
    const T* xn = x + n * g.H * g.W * C;
    for (int64_t ow = 0; ow < g.OW; ++ow) {
      T* yo = y + (r * g.OW + ow) * C;
      int64_t* ao = argmax ? argmax + (r * g.OW + ow) * C : nullptr;
      bool first = true;  // the NCHW kernel's bi < 0: the window's first cell is taken as it is
      for (int64_t i = 0; i < g.kh; ++i) {
        const int64_t ih = oh * g.sh - g.ph + i;
        if (ih < 0 || ih >= g.H) continue;
        for (int64_t j = 0; j < g.kw; ++j) {
          const int64_t iw = ow * g.sw - g.pw + j;
          if (iw < 0 || iw >= g.W) continue;
          const int64_t cell = ih * g.W + iw;
          const T* xv = xn + cell * C;
          if (first) {
            std::copy_n(xv, C, yo);
            if (ao) std::fill_n(ao, C, cell);
            first = false;
          } else if (ao) {
            for (int64_t c = 0; c < C; ++c) {
              const T v = xv[c];
              const bool take = v > yo[c] || std::isnan(v);
              yo[c] = take ? v : yo[c];
              ao[c] = take ? cell : ao[c];
            }
          } else {
            for (int64_t c = 0; c < C; ++c) {
              const T v = xv[c];
              yo[c] = v > yo[c] || std::isnan(v) ? v : yo[c];
            }
          }
        }
      }
      if (first) {  // an empty window (not reachable with padding <= kernel / 2): as the NCHW kernel
        std::fill_n(yo, C, -std::numeric_limits<T>::infinity());
        if (ao) std::fill_n(ao, C, int64_t{-1});
      }
    }
  }
}

template <typename T>
void max_pool_backward_nhwc(const PoolGeom& g, int64_t C, const T* dy, const int64_t* argmax, T* dx) {
  const int64_t N = g.planes / C, in = g.H * g.W * C, out = g.OH * g.OW * C;
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    T* dxn = dx + n * in;
    std::fill(dxn, dxn + in, T(0));
    for (int64_t o = n * out; o < (n + 1) * out; ++o)
      if (argmax[o] >= 0) dxn[argmax[o] * C + o % C] += dy[o];
  }
}

namespace {
// Window of output (oh, ow) clipped to the padded input; count per PyTorch's avg_pool2d.
inline void window(const PoolGeom& g, int64_t oh, int64_t ow, bool include_pad, int64_t& h0, int64_t& h1, int64_t& w0,
                   int64_t& w1, int64_t& count) {
  h0 = oh * g.sh - g.ph;
  w0 = ow * g.sw - g.pw;
  h1 = std::min(h0 + g.kh, g.H + g.ph);
  w1 = std::min(w0 + g.kw, g.W + g.pw);
  const int64_t padded = (h1 - h0) * (w1 - w0);
  h0 = std::max<int64_t>(h0, 0);
  w0 = std::max<int64_t>(w0, 0);
  h1 = std::min(h1, g.H);
  w1 = std::min(w1, g.W);
  count = include_pad ? padded : (h1 - h0) * (w1 - w0);
}
}  // namespace

template <typename T>
void avg_pool_forward(const PoolGeom& g, bool include_pad, const T* x, T* y) {
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < g.planes; ++p) {
    const T* xp = x + p * g.H * g.W;
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        int64_t h0, h1, w0, w1, cnt;
        window(g, oh, ow, include_pad, h0, h1, w0, w1, cnt);
        double s = 0;
        for (int64_t i = h0; i < h1; ++i)
          for (int64_t j = w0; j < w1; ++j) s += xp[i * g.W + j];
        y[(p * g.OH + oh) * g.OW + ow] = static_cast<T>(cnt > 0 ? s / cnt : 0);
      }
  }
}

template <typename T>
void avg_pool_backward(const PoolGeom& g, bool include_pad, const T* dy, T* dx) {
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < g.planes; ++p) {
    T* dxp = dx + p * g.H * g.W;
    std::fill(dxp, dxp + g.H * g.W, T(0));
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        int64_t h0, h1, w0, w1, cnt;
        window(g, oh, ow, include_pad, h0, h1, w0, w1, cnt);
        if (cnt == 0) continue;
        const T v = dy[(p * g.OH + oh) * g.OW + ow] / static_cast<T>(cnt);
        for (int64_t i = h0; i < h1; ++i)
          for (int64_t j = w0; j < w1; ++j) dxp[i * g.W + j] += v;
      }
  }
}

template <typename T>
void adaptive_avg_pool_forward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const T* x, T* y) {
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    const T* xp = x + p * H * W;
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t h0 = oh * H / OH, h1 = ((oh + 1) * H + OH - 1) / OH;
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t w0 = ow * W / OW, w1 = ((ow + 1) * W + OW - 1) / OW;
        double s = 0;
        for (int64_t i = h0; i < h1; ++i)
          for (int64_t j = w0; j < w1; ++j) s += xp[i * W + j];
        y[(p * OH + oh) * OW + ow] = static_cast<T>(s / ((h1 - h0) * (w1 - w0)));
      }
    }
  }
}

template <typename T>
void adaptive_avg_pool_backward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const T* dy, T* dx) {
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    T* dxp = dx + p * H * W;
    std::fill(dxp, dxp + H * W, T(0));
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t h0 = oh * H / OH, h1 = ((oh + 1) * H + OH - 1) / OH;
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t w0 = ow * W / OW, w1 = ((ow + 1) * W + OW - 1) / OW;
        const T v = dy[(p * OH + oh) * OW + ow] / static_cast<T>((h1 - h0) * (w1 - w0));
        for (int64_t i = h0; i < h1; ++i)
          for (int64_t j = w0; j < w1; ++j) dxp[i * W + j] += v;
      }
    }
  }
}

#define PFQ_INST(T)                                                                                         \
  template void max_pool_forward<T>(const PoolGeom&, const T*, T*, int64_t*);                              \
  template void max_pool_backward<T>(const PoolGeom&, const T*, const int64_t*, T*);                       \
  template void max_pool_forward_nhwc<T>(const PoolGeom&, int64_t, const T*, T*, int64_t*);                \
  template void max_pool_backward_nhwc<T>(const PoolGeom&, int64_t, const T*, const int64_t*, T*);         \
  template void avg_pool_forward<T>(const PoolGeom&, bool, const T*, T*);                                  \
  template void avg_pool_backward<T>(const PoolGeom&, bool, const T*, T*);                                 \
  template void adaptive_avg_pool_forward<T>(int64_t, int64_t, int64_t, int64_t, int64_t, const T*, T*);   \
  template void adaptive_avg_pool_backward<T>(int64_t, int64_t, int64_t, int64_t, int64_t, const T*, T*);
PFQ_INST(float)
PFQ_INST(double)
#undef PFQ_INST

}  // namespace pfq::cpu
