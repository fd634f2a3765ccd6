// depthwise.cpp — direct depthwise convolution (groups == C == OC, one KHxKW filter per
// channel). im2col + GEMM would be a [1, K] x [K, OH*OW] product per channel: all overhead.
// Each (sample, channel) plane is one task: the plane is copied into a zero-padded scratch
// buffer so the tap loops need no bounds checks, and the innermost loop runs along an output
// row with restrict pointers so the stride-1 case vectorises.
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/cpu/conv.h"

namespace pfq::cpu {
namespace {

template <typename T>
T* plane_scratch(size_t n, int slot = 0) {
  thread_local std::vector<T> buf[2];
  if (buf[slot].size() < n) buf[slot].resize(n);
  return buf[slot].data();
}

// Padded plane geometry: rows PH = H + 2ph (+ slack for strides), cols PW = W + 2pw.
// `slack` zeros after the last row let the stride-1 path read whole padded rows as one flat
// vector: output element i = oh * PW + ow (ow < PW) reads input i + kh*dh*PW + kw*dw.
struct Padded {
  int64_t PH, PW, slack;
  explicit Padded(const ConvGeom& g)
      : PH(std::max(g.H + 2 * g.ph, (g.OH - 1) * g.sh + (g.KH - 1) * g.dh + 1)),
        PW(std::max(g.W + 2 * g.pw, (g.OW - 1) * g.sw + (g.KW - 1) * g.dw + 1)),
        slack((g.KW - 1) * g.dw + 1) {}
  int64_t size() const { return PH * PW + slack; }
};

inline bool flat_path(const ConvGeom& g) { return g.sh == 1 && g.sw == 1; }

template <typename T>
void pad_plane(const ConvGeom& g, const Padded& p, const T* x, T* xp) {
  std::fill(xp, xp + p.size(), T(0));
  for (int64_t h = 0; h < g.H; ++h) std::memcpy(xp + (h + g.ph) * p.PW + g.pw, x + h * g.W, g.W * sizeof(T));
}

}  // namespace

template <typename T>
void depthwise_forward(const ConvGeom& g, const T* x, const T* w, const T* b, T* y) {
  const int64_t planes = g.N * g.C, hw = g.H * g.W, ohw = g.OH * g.OW, kk = g.KH * g.KW;
  const Padded pd(g);
  const bool flat = flat_path(g);
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    const int64_t c = p % g.C;
    T* xp = plane_scratch<T>(pd.size());
    pad_plane(g, pd, x + p * hw, xp);
    const T* wc = w + c * kk;
    T* yp = y + p * ohw;
    const T bias = b ? b[c] : T(0);
    if (flat) {
      // Whole padded rows at once: KH*KW long axpys, then the valid columns copied out.
      const int64_t len = g.OH * pd.PW;
      T* __restrict acc = plane_scratch<T>(len, 1);
      for (int64_t i = 0; i < len; ++i) acc[i] = bias;
      for (int64_t kh = 0; kh < g.KH; ++kh)
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          const T wv = wc[kh * g.KW + kw];
          const T* __restrict src = xp + kh * g.dh * pd.PW + kw * g.dw;
          for (int64_t i = 0; i < len; ++i) acc[i] += wv * src[i];
        }
      for (int64_t oh = 0; oh < g.OH; ++oh) std::memcpy(yp + oh * g.OW, acc + oh * pd.PW, g.OW * sizeof(T));
      continue;
    }
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      T* __restrict yr = yp + oh * g.OW;
      for (int64_t ow = 0; ow < g.OW; ++ow) yr[ow] = bias;
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        const T* xr = xp + (oh * g.sh + kh * g.dh) * pd.PW;
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          const T wv = wc[kh * g.KW + kw];
          const T* __restrict xs = xr + kw * g.dw;
          for (int64_t ow = 0; ow < g.OW; ++ow) yr[ow] += wv * xs[ow * g.sw];
        }
      }
    }
  }
}

// dy of one plane copied into rows of width PW (zeros beyond OW), for the flat path.
template <typename T>
void widen_rows(const ConvGeom& g, const Padded& pd, const T* dy, T* out) {
  std::fill(out, out + g.OH * pd.PW, T(0));
  for (int64_t oh = 0; oh < g.OH; ++oh) std::memcpy(out + oh * pd.PW, dy + oh * g.OW, g.OW * sizeof(T));
}

template <typename T>
void depthwise_backward_input(const ConvGeom& g, const T* dy, const T* w, T* dx) {
  const int64_t planes = g.N * g.C, hw = g.H * g.W, ohw = g.OH * g.OW, kk = g.KH * g.KW;
  const Padded pd(g);
  const bool flat = flat_path(g);
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    const int64_t c = p % g.C;
    T* dxp = plane_scratch<T>(pd.size());
    std::fill(dxp, dxp + pd.size(), T(0));
    const T* wc = w + c * kk;
    const T* dyp = dy + p * ohw;
    if (flat) {
      const int64_t len = g.OH * pd.PW;
      T* dyw = plane_scratch<T>(len, 1);
      widen_rows(g, pd, dyp, dyw);
      for (int64_t kh = 0; kh < g.KH; ++kh)
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          const T wv = wc[kh * g.KW + kw];
          T* __restrict dst = dxp + kh * g.dh * pd.PW + kw * g.dw;
          const T* __restrict src = dyw;
          for (int64_t i = 0; i < len; ++i) dst[i] += wv * src[i];
        }
    } else {
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        const T* __restrict dyr = dyp + oh * g.OW;
        for (int64_t kh = 0; kh < g.KH; ++kh) {
          T* dxr = dxp + (oh * g.sh + kh * g.dh) * pd.PW;
          for (int64_t kw = 0; kw < g.KW; ++kw) {
            const T wv = wc[kh * g.KW + kw];
            T* __restrict ds = dxr + kw * g.dw;
            for (int64_t ow = 0; ow < g.OW; ++ow) ds[ow * g.sw] += wv * dyr[ow];
          }
        }
      }
    }
    T* dxo = dx + p * hw;
    for (int64_t h = 0; h < g.H; ++h) std::memcpy(dxo + h * g.W, dxp + (h + g.ph) * pd.PW + g.pw, g.W * sizeof(T));
  }
}

template <typename T>
void depthwise_backward_weight(const ConvGeom& g, const T* dy, const T* x, T* dw) {
  const int64_t hw = g.H * g.W, ohw = g.OH * g.OW, kk = g.KH * g.KW;
  const Padded pd(g);
  const bool flat = flat_path(g);
  // Parallel over channels; each channel sums its samples in order: deterministic.
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < g.C; ++c) {
    T* xp = plane_scratch<T>(pd.size());
    T* dyw = flat ? plane_scratch<T>(g.OH * pd.PW, 1) : nullptr;
    std::vector<double> acc(kk, 0.0);
    for (int64_t n = 0; n < g.N; ++n) {
      pad_plane(g, pd, x + (n * g.C + c) * hw, xp);
      const T* dyp = dy + (n * g.C + c) * ohw;
      if (flat) widen_rows(g, pd, dyp, dyw);
      for (int64_t kh = 0; kh < g.KH; ++kh)
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          T s = 0;
          if (flat) {
            // One long dot product over padded rows; dyw is zero beyond OW.
            const int64_t len = g.OH * pd.PW;
            const T* __restrict xs = xp + kh * g.dh * pd.PW + kw * g.dw;
#pragma omp simd reduction(+ : s)
            for (int64_t i = 0; i < len; ++i) s += dyw[i] * xs[i];
          } else {
            for (int64_t oh = 0; oh < g.OH; ++oh) {
              const T* __restrict dyr = dyp + oh * g.OW;
              const T* __restrict xs = xp + (oh * g.sh + kh * g.dh) * pd.PW + kw * g.dw;
#pragma omp simd reduction(+ : s)
              for (int64_t ow = 0; ow < g.OW; ++ow) s += dyr[ow] * xs[ow * g.sw];
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
