// depthwise.cpp — direct depthwise convolution (groups == C == OC, one KHxKW filter per
// channel). im2col + GEMM would be a [1, K] x [K, OH*OW] product per channel: all overhead.
// Here each (sample, channel) plane is one task; inner loops run along output rows so the
// stride-1 case vectorises.
#include <algorithm>
#include <vector>

#include "core/cpu/conv.h"

namespace pfq::cpu {
namespace {
// Output columns ow whose input column ow*sw + off lies inside [0, W).
inline void valid_cols(int64_t off, int64_t sw, int64_t W, int64_t OW, int64_t& lo, int64_t& hi) {
  lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
  hi = W - off <= 0 ? 0 : (W - off + sw - 1) / sw;
  lo = std::min(lo, OW);
  hi = std::clamp(hi, lo, OW);
}
}  // namespace

template <typename T>
void depthwise_forward(const ConvGeom& g, const T* x, const T* w, const T* b, T* y) {
  const int64_t planes = g.N * g.C, hw = g.H * g.W, ohw = g.OH * g.OW, kk = g.KH * g.KW;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    const int64_t c = p % g.C;
    const T* xp = x + p * hw;
    const T* wc = w + c * kk;
    T* yp = y + p * ohw;
    std::fill(yp, yp + ohw, b ? b[c] : T(0));
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      T* yr = yp + oh * g.OW;
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
        if (ih < 0 || ih >= g.H) continue;
        const T* xr = xp + ih * g.W;
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          const T wv = wc[kh * g.KW + kw];
          const int64_t off = kw * g.dw - g.pw;
          int64_t lo, hi;
          valid_cols(off, g.sw, g.W, g.OW, lo, hi);
          if (g.sw == 1) {
            const T* xs = xr + off;
            for (int64_t ow = lo; ow < hi; ++ow) yr[ow] += wv * xs[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) yr[ow] += wv * xr[ow * g.sw + off];
          }
        }
      }
    }
  }
}

template <typename T>
void depthwise_backward_input(const ConvGeom& g, const T* dy, const T* w, T* dx) {
  const int64_t planes = g.N * g.C, hw = g.H * g.W, ohw = g.OH * g.OW, kk = g.KH * g.KW;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    const int64_t c = p % g.C;
    T* dxp = dx + p * hw;
    const T* wc = w + c * kk;
    const T* dyp = dy + p * ohw;
    std::fill(dxp, dxp + hw, T(0));
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      const T* dyr = dyp + oh * g.OW;
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
        if (ih < 0 || ih >= g.H) continue;
        T* dxr = dxp + ih * g.W;
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          const T wv = wc[kh * g.KW + kw];
          const int64_t off = kw * g.dw - g.pw;
          int64_t lo, hi;
          valid_cols(off, g.sw, g.W, g.OW, lo, hi);
          if (g.sw == 1) {
            T* ds = dxr + off;
            for (int64_t ow = lo; ow < hi; ++ow) ds[ow] += wv * dyr[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) dxr[ow * g.sw + off] += wv * dyr[ow];
          }
        }
      }
    }
  }
}

template <typename T>
void depthwise_backward_weight(const ConvGeom& g, const T* dy, const T* x, T* dw) {
  const int64_t hw = g.H * g.W, ohw = g.OH * g.OW, kk = g.KH * g.KW;
  // Parallel over channels; each channel sums its samples in order: deterministic.
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < g.C; ++c) {
    std::vector<double> acc(kk, 0.0);
    for (int64_t n = 0; n < g.N; ++n) {
      const T* xp = x + (n * g.C + c) * hw;
      const T* dyp = dy + (n * g.C + c) * ohw;
      for (int64_t kh = 0; kh < g.KH; ++kh)
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          const int64_t off = kw * g.dw - g.pw;
          int64_t lo, hi;
          valid_cols(off, g.sw, g.W, g.OW, lo, hi);
          T s = 0;
          for (int64_t oh = 0; oh < g.OH; ++oh) {
            const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
            if (ih < 0 || ih >= g.H) continue;
            const T* xr = xp + ih * g.W;
            const T* dyr = dyp + oh * g.OW;
            if (g.sw == 1) {
              const T* xs = xr + off;
              for (int64_t ow = lo; ow < hi; ++ow) s += dyr[ow] * xs[ow];
            } else {
              for (int64_t ow = lo; ow < hi; ++ow) s += dyr[ow] * xr[ow * g.sw + off];
            }
          }
          acc[kh * g.KW + kw] += s;
        }
    }
    for (int64_t k = 0; k < kk; ++k) dw[c * kk + k] = static_cast<T>(acc[k]);
  }
}

#define PFQ_INST(T)                                                                        \
  template void depthwise_forward<T>(const ConvGeom&, const T*, const T*, const T*, T*); \
  template void depthwise_backward_input<T>(const ConvGeom&, const T*, const T*, T*);    \
  template void depthwise_backward_weight<T>(const ConvGeom&, const T*, const T*, T*);
PFQ_INST(float)
PFQ_INST(double)
#undef PFQ_INST

}  // namespace pfq::cpu
