// conv.cpp — dense and grouped convolution by im2col + GEMM, parallel over the batch
// (each thread runs single-threaded GEMMs on its own samples). 1x1/stride-1/unpadded
// convolutions skip the lowering and multiply the input in place.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/cpu/conv.h"
#include "core/cpu/gemm.h"

namespace pfq::cpu {
namespace {

// A per-thread scratch buffer that keeps its pages between calls (no page faults per step).
template <typename T>
T* scratch(size_t n, int slot = 0) {
  thread_local std::vector<T> buf[2];
  if (buf[slot].size() < n) buf[slot].resize(n);
  return buf[slot].data();
}

// col [cg*KH*KW, OH*OW] from the cg channels of one sample starting at x.
template <typename T>
void im2col(const ConvGeom& g, const T* x, T* col) {
  const int64_t cg = g.cg(), ohw = g.OH * g.OW;
  for (int64_t ic = 0; ic < cg; ++ic)
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        T* dst = col + ((ic * g.KH + kh) * g.KW + kw) * ohw;
        const T* src = x + ic * g.H * g.W;
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
          T* d = dst + oh * g.OW;
          if (ih < 0 || ih >= g.H) {
            std::fill(d, d + g.OW, T(0));
            continue;
          }
          const T* s = src + ih * g.W;
          const int64_t off = kw * g.dw - g.pw;
          if (g.sw == 1) {
            // valid ow range: 0 <= ow + off < W
            const int64_t lo = std::clamp<int64_t>(-off, 0, g.OW), hi = std::clamp<int64_t>(g.W - off, lo, g.OW);
            std::fill(d, d + lo, T(0));
            std::memcpy(d + lo, s + lo + off, (hi - lo) * sizeof(T));
            std::fill(d + hi, d + g.OW, T(0));
          } else {
            for (int64_t ow = 0; ow < g.OW; ++ow) {
              const int64_t iw = ow * g.sw + off;
              d[ow] = (iw >= 0 && iw < g.W) ? s[iw] : T(0);
            }
          }
        }
      }
}

// Accumulates col [cg*KH*KW, OH*OW] back into dx (cg channels of one sample).
template <typename T>
void col2im(const ConvGeom& g, const T* col, T* dx) {
  const int64_t cg = g.cg(), ohw = g.OH * g.OW;
  for (int64_t ic = 0; ic < cg; ++ic)
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const T* src = col + ((ic * g.KH + kh) * g.KW + kw) * ohw;
        T* dst = dx + ic * g.H * g.W;
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
          if (ih < 0 || ih >= g.H) continue;
          T* d = dst + ih * g.W;
          const T* s = src + oh * g.OW;
          const int64_t off = kw * g.dw - g.pw;
          if (g.sw == 1) {
            const int64_t lo = std::clamp<int64_t>(-off, 0, g.OW), hi = std::clamp<int64_t>(g.W - off, lo, g.OW);
            for (int64_t ow = lo; ow < hi; ++ow) d[ow + off] += s[ow];
          } else {
            for (int64_t ow = 0; ow < g.OW; ++ow) {
              const int64_t iw = ow * g.sw + off;
              if (iw >= 0 && iw < g.W) d[iw] += s[ow];
            }
          }
        }
      }
}

}  // namespace

template <typename T>
void conv2d_forward(const ConvGeom& g, const T* x, const T* w, const T* b, T* y) {
  const int64_t cg = g.cg(), ocg = g.ocg(), ohw = g.OH * g.OW, kdim = cg * g.KH * g.KW;
  const bool direct = g.is_pointwise();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < g.N; ++n) {
    T* col = direct ? nullptr : scratch<T>(kdim * ohw);
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const T* xg = x + (n * g.C + grp * cg) * g.H * g.W;
      const T* src = xg;
      if (!direct) {
        im2col(g, xg, col);
        src = col;
      }
      T* yg = y + (n * g.OC + grp * ocg) * ohw;
      gemm<T>(false, false, ocg, ohw, kdim, T(1), w + grp * ocg * kdim, kdim, src, ohw, T(0), yg, ohw);
      if (b)
        for (int64_t oc = 0; oc < ocg; ++oc) {
          const T bv = b[grp * ocg + oc];
          T* yo = yg + oc * ohw;
          for (int64_t i = 0; i < ohw; ++i) yo[i] += bv;
        }
    }
  }
}

template <typename T>
void conv2d_backward_input(const ConvGeom& g, const T* dy, const T* w, T* dx) {
  const int64_t cg = g.cg(), ocg = g.ocg(), ohw = g.OH * g.OW, kdim = cg * g.KH * g.KW;
  const bool direct = g.is_pointwise();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < g.N; ++n) {
    T* col = direct ? nullptr : scratch<T>(kdim * ohw);
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      T* dxg = dx + (n * g.C + grp * cg) * g.H * g.W;
      const T* dyg = dy + (n * g.OC + grp * ocg) * ohw;
      const T* wg = w + grp * ocg * kdim;
      if (direct) {
        gemm<T>(true, false, kdim, ohw, ocg, T(1), wg, kdim, dyg, ohw, T(0), dxg, ohw);
      } else {
        gemm<T>(true, false, kdim, ohw, ocg, T(1), wg, kdim, dyg, ohw, T(0), col, ohw);
        std::fill(dxg, dxg + cg * g.H * g.W, T(0));
        col2im(g, col, dxg);
      }
    }
  }
}

template <typename T>
void conv2d_backward_weight(const ConvGeom& g, const T* dy, const T* x, T* dw) {
  const int64_t cg = g.cg(), ocg = g.ocg(), ohw = g.OH * g.OW, kdim = cg * g.KH * g.KW;
  const int64_t wsize = g.OC * kdim;
  const bool direct = g.is_pointwise();
  const int nthreads = std::max<int>(1, std::min<int64_t>(omp_get_max_threads(), g.N));
  // One partial dW per thread over a fixed batch split, summed in thread order: deterministic.
  std::vector<T> partial(static_cast<size_t>(nthreads) * wsize, T(0));
#pragma omp parallel num_threads(nthreads)
  {
    const int t = omp_get_thread_num();
    const int64_t lo = g.N * t / nthreads, hi = g.N * (t + 1) / nthreads;
    T* acc = partial.data() + t * wsize;
    T* col = direct ? nullptr : scratch<T>(kdim * ohw);
    for (int64_t n = lo; n < hi; ++n)
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        const T* xg = x + (n * g.C + grp * cg) * g.H * g.W;
        const T* src = xg;
        if (!direct) {
          im2col(g, xg, col);
          src = col;
        }
        const T* dyg = dy + (n * g.OC + grp * ocg) * ohw;
        gemm<T>(false, true, ocg, kdim, ohw, T(1), dyg, ohw, src, ohw, T(1), acc + grp * ocg * kdim, kdim);
      }
  }
  std::copy(partial.begin(), partial.begin() + wsize, dw);
  for (int t = 1; t < nthreads; ++t) {
    const T* p = partial.data() + t * wsize;
    for (int64_t i = 0; i < wsize; ++i) dw[i] += p[i];
  }
}

#define PFQ_INST(T)                                                                     \
  template void conv2d_forward<T>(const ConvGeom&, const T*, const T*, const T*, T*); \
  template void conv2d_backward_input<T>(const ConvGeom&, const T*, const T*, T*);    \
  template void conv2d_backward_weight<T>(const ConvGeom&, const T*, const T*, T*);
PFQ_INST(float)
PFQ_INST(double)
#undef PFQ_INST

}  // namespace pfq::cpu
