// conv.cpp — dense and grouped convolution by im2col + GEMM, parallel over groups of samples
// (each thread runs single-threaded GEMMs on its own samples; small feature maps put several
// samples side by side in one GEMM). 1x1/stride-1/unpadded convolutions of one sample skip
// the lowering and multiply the input in place.
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

// col [cg*KH*KW, OH*OW] (rows `ldc` apart) from the cg channels of one sample starting at x.
template <typename T>
void im2col(const ConvGeom& g, const T* x, T* col, int64_t ldc) {
  const int64_t cg = g.cg();
  for (int64_t ic = 0; ic < cg; ++ic)
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        T* dst = col + ((ic * g.KH + kh) * g.KW + kw) * ldc;
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

// Accumulates col [cg*KH*KW, OH*OW] (rows `ldc` apart) back into dx (cg channels of one sample).
template <typename T>
void col2im(const ConvGeom& g, const T* col, int64_t ldc, T* dx) {
  const int64_t cg = g.cg();
  for (int64_t ic = 0; ic < cg; ++ic)
    for (int64_t kh = 0; kh < g.KH; ++kh)
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const T* src = col + ((ic * g.KH + kh) * g.KW + kw) * ldc;
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

// Copies `rows` rows of `len` elements between buffers with different row strides.
template <typename T>
void copy_rows(const T* src, int64_t lds, T* dst, int64_t ldd, int64_t rows, int64_t len) {
  for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * ldd, src + r * lds, len * sizeof(T));
}

// Samples lowered together into one GEMM: small feature maps (late layers) give skinny
// per-sample products that run far below peak, so several samples share one wide GEMM.
// Keeps at least one group per thread when the batch allows.
int64_t samples_per_group(const ConvGeom& g) {
  const int64_t ohw = g.OH * g.OW;
  constexpr int64_t kTargetCols = 512;
  if (ohw >= kTargetCols) return 1;
  const int64_t threads = std::max(1, omp_get_max_threads());
  const int64_t want = (kTargetCols + ohw - 1) / ohw;
  return std::max<int64_t>(1, std::min(want, g.N / threads));
}

// Lowers samples [n0, n0 + S) of group grp into col [kdim, S*ohw] (or, for pointwise
// convolutions of one sample, returns the input itself).
template <typename T>
const T* lower(const ConvGeom& g, const T* x, int64_t n0, int64_t S, int64_t grp, T* col) {
  const int64_t cg = g.cg(), ohw = g.OH * g.OW, ld = S * ohw;
  if (g.is_pointwise() && S == 1) return x + (n0 * g.C + grp * cg) * g.H * g.W;
  for (int64_t s = 0; s < S; ++s) {
    const T* xg = x + ((n0 + s) * g.C + grp * cg) * g.H * g.W;
    if (g.is_pointwise()) copy_rows(xg, ohw, col + s * ohw, ld, cg, ohw);
    else im2col(g, xg, col + s * ohw, ld);
  }
  return col;
}

}  // namespace

template <typename T>
void conv2d_forward(const ConvGeom& g, const T* x, const T* w, const T* b, T* y) {
  const int64_t cg = g.cg(), ocg = g.ocg(), ohw = g.OH * g.OW, kdim = cg * g.KH * g.KW;
  const int64_t S = samples_per_group(g), ngroups = (g.N + S - 1) / S;
#pragma omp parallel for schedule(static)
  for (int64_t q = 0; q < ngroups; ++q) {
    const int64_t n0 = q * S, s_here = std::min(S, g.N - n0), ld = s_here * ohw;
    T* col = scratch<T>(kdim * ld, 0);
    T* out = s_here > 1 ? scratch<T>(ocg * ld, 1) : nullptr;
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const T* src = lower(g, x, n0, s_here, grp, col);
      T* yg = y + (n0 * g.OC + grp * ocg) * ohw;
      gemm<T>(false, false, ocg, ld, kdim, T(1), w + grp * ocg * kdim, kdim, src, ld, T(0), out ? out : yg, ld);
      for (int64_t s = 0; s < s_here; ++s) {
        T* ys = y + ((n0 + s) * g.OC + grp * ocg) * ohw;
        if (out) copy_rows(out + s * ohw, ld, ys, ohw, ocg, ohw);
        if (b)
          for (int64_t oc = 0; oc < ocg; ++oc) {
            const T bv = b[grp * ocg + oc];
            T* yo = ys + oc * ohw;
            for (int64_t i = 0; i < ohw; ++i) yo[i] += bv;
          }
      }
    }
  }
}

template <typename T>
void conv2d_backward_input(const ConvGeom& g, const T* dy, const T* w, T* dx) {
  const int64_t cg = g.cg(), ocg = g.ocg(), ohw = g.OH * g.OW, kdim = cg * g.KH * g.KW, hw = g.H * g.W;
  const int64_t S = samples_per_group(g), ngroups = (g.N + S - 1) / S;
#pragma omp parallel for schedule(static)
  for (int64_t q = 0; q < ngroups; ++q) {
    const int64_t n0 = q * S, s_here = std::min(S, g.N - n0), ld = s_here * ohw;
    T* col = scratch<T>(kdim * ld, 0);
    T* dyp = s_here > 1 ? scratch<T>(ocg * ld, 1) : nullptr;
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const T* dyg = dy + (n0 * g.OC + grp * ocg) * ohw;
      if (dyp) {
        for (int64_t s = 0; s < s_here; ++s) copy_rows(dy + ((n0 + s) * g.OC + grp * ocg) * ohw, ohw, dyp + s * ohw, ld, ocg, ohw);
        dyg = dyp;
      }
      const T* wg = w + grp * ocg * kdim;
      T* dx0 = dx + (n0 * g.C + grp * cg) * hw;
      if (g.is_pointwise() && s_here == 1) {
        gemm<T>(true, false, kdim, ld, ocg, T(1), wg, kdim, dyg, ld, T(0), dx0, ld);
        continue;
      }
      gemm<T>(true, false, kdim, ld, ocg, T(1), wg, kdim, dyg, ld, T(0), col, ld);
      for (int64_t s = 0; s < s_here; ++s) {
        T* dxs = dx + ((n0 + s) * g.C + grp * cg) * hw;
        if (g.is_pointwise()) {
          copy_rows(col + s * ohw, ld, dxs, hw, cg, hw);
        } else {
          std::fill(dxs, dxs + cg * hw, T(0));
          col2im(g, col + s * ohw, ld, dxs);
        }
      }
    }
  }
}

template <typename T>
void conv2d_backward_weight(const ConvGeom& g, const T* dy, const T* x, T* dw) {
  const int64_t cg = g.cg(), ocg = g.ocg(), ohw = g.OH * g.OW, kdim = cg * g.KH * g.KW;
  const int64_t wsize = g.OC * kdim;
  const int64_t S = samples_per_group(g), ngroups = (g.N + S - 1) / S;
  const int nthreads = std::max<int>(1, std::min<int64_t>(omp_get_max_threads(), ngroups));
  // One partial dW per thread over a fixed split of the sample groups, summed in thread
  // order: deterministic for a given thread count.
  // The partial sums live in a persistent buffer (no fresh pages per call).
  // (thread_local: each OpenMP worker must use the caller's buffer through `part`.)
  thread_local std::vector<T> partial;
  partial.assign(static_cast<size_t>(nthreads) * wsize, T(0));
  T* const part = partial.data();
#pragma omp parallel num_threads(nthreads)
  {
    const int t = omp_get_thread_num();
    const int64_t lo = ngroups * t / nthreads, hi = ngroups * (t + 1) / nthreads;
    T* acc = part + t * wsize;
    for (int64_t q = lo; q < hi; ++q) {
      const int64_t n0 = q * S, s_here = std::min(S, g.N - n0), ld = s_here * ohw;
      T* col = scratch<T>(kdim * ld, 0);
      T* dyp = s_here > 1 ? scratch<T>(ocg * ld, 1) : nullptr;
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        const T* src = lower(g, x, n0, s_here, grp, col);
        const T* dyg = dy + (n0 * g.OC + grp * ocg) * ohw;
        if (dyp) {
          for (int64_t s = 0; s < s_here; ++s) copy_rows(dy + ((n0 + s) * g.OC + grp * ocg) * ohw, ohw, dyp + s * ohw, ld, ocg, ohw);
          dyg = dyp;
        }
        gemm<T>(false, true, ocg, kdim, ld, T(1), dyg, ld, src, ld, T(1), acc + grp * ocg * kdim, kdim);
      }
    }
  }
  std::copy(part, part + wsize, dw);
  for (int t = 1; t < nthreads; ++t) {
    const T* p = part + t * wsize;
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
