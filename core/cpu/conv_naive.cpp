// conv_naive.cpp — direct-definition convolution, the reference every fast conv kernel is
// tested against. Slow on purpose: one output (or weight) element at a time, double sums.
#include "core/cpu/conv.h"

namespace pfq::cpu {

template <typename T>
void conv2d_forward_naive(const ConvGeom& g, const T* x, const T* w, const T* b, T* y) {
  const int64_t cg = g.cg(), ocg = g.ocg();
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t oc = 0; oc < g.OC; ++oc) {
      const int64_t grp = oc / ocg;
      for (int64_t oh = 0; oh < g.OH; ++oh)
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          double s = b ? b[oc] : 0;
          for (int64_t ic = 0; ic < cg; ++ic)
            for (int64_t kh = 0; kh < g.KH; ++kh)
              for (int64_t kw = 0; kw < g.KW; ++kw) {
                int64_t ih = oh * g.sh - g.ph + kh * g.dh, iw = ow * g.sw - g.pw + kw * g.dw;
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                s += double(x[((n * g.C + grp * cg + ic) * g.H + ih) * g.W + iw]) * w[((oc * cg + ic) * g.KH + kh) * g.KW + kw];
              }
          y[((n * g.OC + oc) * g.OH + oh) * g.OW + ow] = static_cast<T>(s);
        }
    }
}

template <typename T>
void conv2d_backward_input_naive(const ConvGeom& g, const T* dy, const T* w, T* dx) {
  const int64_t cg = g.cg(), ocg = g.ocg();
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t c = 0; c < g.C; ++c) {
      const int64_t grp = c / cg, ic = c % cg;
      for (int64_t ih = 0; ih < g.H; ++ih)
        for (int64_t iw = 0; iw < g.W; ++iw) {
          double s = 0;
          for (int64_t oc = grp * ocg; oc < (grp + 1) * ocg; ++oc)
            for (int64_t kh = 0; kh < g.KH; ++kh)
              for (int64_t kw = 0; kw < g.KW; ++kw) {
                int64_t th = ih + g.ph - kh * g.dh, tw = iw + g.pw - kw * g.dw;
                if (th < 0 || tw < 0 || th % g.sh || tw % g.sw) continue;
                int64_t oh = th / g.sh, ow = tw / g.sw;
                if (oh >= g.OH || ow >= g.OW) continue;
                s += double(dy[((n * g.OC + oc) * g.OH + oh) * g.OW + ow]) * w[((oc * cg + ic) * g.KH + kh) * g.KW + kw];
              }
          dx[((n * g.C + c) * g.H + ih) * g.W + iw] = static_cast<T>(s);
        }
    }
}

template <typename T>
void conv2d_backward_weight_naive(const ConvGeom& g, const T* dy, const T* x, T* dw) {
  const int64_t cg = g.cg(), ocg = g.ocg();
  for (int64_t oc = 0; oc < g.OC; ++oc) {
    const int64_t grp = oc / ocg;
    for (int64_t ic = 0; ic < cg; ++ic)
      for (int64_t kh = 0; kh < g.KH; ++kh)
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          double s = 0;
          for (int64_t n = 0; n < g.N; ++n)
            for (int64_t oh = 0; oh < g.OH; ++oh)
              for (int64_t ow = 0; ow < g.OW; ++ow) {
                int64_t ih = oh * g.sh - g.ph + kh * g.dh, iw = ow * g.sw - g.pw + kw * g.dw;
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                s += double(dy[((n * g.OC + oc) * g.OH + oh) * g.OW + ow]) * x[((n * g.C + grp * cg + ic) * g.H + ih) * g.W + iw];
              }
          dw[((oc * cg + ic) * g.KH + kh) * g.KW + kw] = static_cast<T>(s);
        }
  }
}

#define PFQ_INST(T)                                                                          \
  template void conv2d_forward_naive<T>(const ConvGeom&, const T*, const T*, const T*, T*); \
  template void conv2d_backward_input_naive<T>(const ConvGeom&, const T*, const T*, T*);    \
  template void conv2d_backward_weight_naive<T>(const ConvGeom&, const T*, const T*, T*);
PFQ_INST(float)
PFQ_INST(double)
#undef PFQ_INST

}  // namespace pfq::cpu
