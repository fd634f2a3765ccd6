// kernels.cpp — int8 conv/linear/pool kernels and fixed-point multipliers
// (quant/integer/kernels.h). The GEMM's inner loop widens int8 to int32 in a form the compiler
// vectorises; sums are exact, so results never depend on the thread count.
#include "quant/integer/kernels.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace pfq::quant::cpu {

void conv2d_s8_naive(const IntConvGeom& g, const int8_t* x, int32_t zx, const int8_t* w, int32_t* acc) {
  const int64_t OH = g.OH(), OW = g.OW(), icg = g.IC / g.groups, ocg = g.OC / g.groups;
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t oc = 0; oc < g.OC; ++oc) {
      const int64_t grp = oc / ocg;
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          int32_t s = 0;
          for (int64_t ic = 0; ic < icg; ++ic)
            for (int64_t kh = 0; kh < g.KH; ++kh)
              for (int64_t kw = 0; kw < g.KW; ++kw) {
                const int64_t ih = oh * g.stride_h - g.pad_h + kh * g.dil_h, iw = ow * g.stride_w - g.pad_w + kw * g.dil_w;
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                const int32_t xv = x[((n * g.IC + grp * icg + ic) * g.H + ih) * g.W + iw];
                s += static_cast<int32_t>(w[((oc * icg + ic) * g.KH + kh) * g.KW + kw]) * (xv - zx);
              }
          acc[((n * g.OC + oc) * OH + oh) * OW + ow] = s;
        }
    }
}

namespace {

// c [M, P] = a [M, K] * b [K, P], int8 inputs, int32 accumulation.
void gemm_s8(int64_t M, int64_t K, int64_t P, const int8_t* a, const int8_t* b, int32_t* c) {
  for (int64_t i = 0; i < M; ++i) {
    int32_t* ci = c + i * P;
    for (int64_t p = 0; p < P; ++p) ci[p] = 0;
    for (int64_t k = 0; k < K; ++k) {
      const int32_t av = a[i * K + k];
      if (av == 0) continue;
      const int8_t* bk = b + k * P;
      for (int64_t p = 0; p < P; ++p) ci[p] += av * static_cast<int32_t>(bk[p]);
    }
  }
}

}  // namespace

void conv2d_s8_im2col(const IntConvGeom& g, const int8_t* x, int32_t zx, const int8_t* w, int32_t* acc) {
  const int64_t OH = g.OH(), OW = g.OW(), P = OH * OW, icg = g.IC / g.groups, ocg = g.OC / g.groups;
  const int64_t K = icg * g.KH * g.KW;
  PFQ_CHECK(zx >= -128 && zx <= 127, "conv2d_s8_im2col: input zero point ", zx, " is outside int8");
  // zx * sum(w[oc]): the padded taps hold zx, so subtracting it over all taps is exact.
  std::vector<int32_t> wsum(static_cast<size_t>(g.OC), 0);
  for (int64_t oc = 0; oc < g.OC; ++oc)
    for (int64_t k = 0; k < K; ++k) wsum[oc] += w[oc * K + k];
  const int64_t jobs = g.N * g.groups;
#pragma omp parallel
  {
    std::vector<int8_t> col(static_cast<size_t>(K * P));
#pragma omp for schedule(static)
    for (int64_t job = 0; job < jobs; ++job) {
      const int64_t n = job / g.groups, grp = job % g.groups;
      for (int64_t ic = 0; ic < icg; ++ic) {
        const int8_t* xc = x + (n * g.IC + grp * icg + ic) * g.H * g.W;
        for (int64_t kh = 0; kh < g.KH; ++kh)
          for (int64_t kw = 0; kw < g.KW; ++kw) {
            int8_t* row = col.data() + ((ic * g.KH + kh) * g.KW + kw) * P;
            for (int64_t oh = 0; oh < OH; ++oh) {
              const int64_t ih = oh * g.stride_h - g.pad_h + kh * g.dil_h;
              for (int64_t ow = 0; ow < OW; ++ow) {
                const int64_t iw = ow * g.stride_w - g.pad_w + kw * g.dil_w;
                row[oh * OW + ow] = (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) ? static_cast<int8_t>(zx) : xc[ih * g.W + iw];
              }
            }
          }
      }
      int32_t* out = acc + (n * g.OC + grp * ocg) * P;
      gemm_s8(ocg, K, P, w + grp * ocg * K, col.data(), out);
      if (zx != 0)
        for (int64_t o = 0; o < ocg; ++o) {
          const int32_t corr = zx * wsum[grp * ocg + o];
          for (int64_t p = 0; p < P; ++p) out[o * P + p] -= corr;
        }
    }
  }
}

void linear_s8_naive(int64_t N, int64_t K, int64_t OC, const int8_t* x, int32_t zx, const int8_t* w, int32_t* acc) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < OC; ++o) {
      int32_t s = 0;
      for (int64_t k = 0; k < K; ++k) s += static_cast<int32_t>(w[o * K + k]) * (static_cast<int32_t>(x[n * K + k]) - zx);
      acc[n * OC + o] = s;
    }
}

void linear_s8(int64_t N, int64_t K, int64_t OC, const int8_t* x, int32_t zx, const int8_t* w, int32_t* acc) {
#pragma omp parallel for schedule(static) if (N * OC * K > 65536)
  for (int64_t n = 0; n < N; ++n) {
    const int8_t* xn = x + n * K;
    for (int64_t o = 0; o < OC; ++o) {
      const int8_t* wo = w + o * K;
      int32_t s = 0, wsum = 0;
      for (int64_t k = 0; k < K; ++k) {
        s += static_cast<int32_t>(wo[k]) * static_cast<int32_t>(xn[k]);
        wsum += wo[k];
      }
      acc[n * OC + o] = s - zx * wsum;
    }
  }
}

void global_sum_s8(int64_t N, int64_t C, int64_t HW, const int8_t* x, int32_t zx, int32_t* sum) {
  for (int64_t i = 0; i < N * C; ++i) {
    int32_t s = 0;
    for (int64_t j = 0; j < HW; ++j) s += static_cast<int32_t>(x[i * HW + j]) - zx;
    sum[i] = s;
  }
}

FixedMultiplier fixed_multiplier(double M) {
  PFQ_CHECK(std::isfinite(M), "fixed_multiplier: multiplier ", M, " is not finite");
  if (M == 0) return {0, 0};
  int e = 0;
  const double f = std::frexp(M, &e);  // M = f * 2^e, 0.5 <= |f| < 1
  int64_t m = std::llround(f * 2147483648.0);
  int64_t r = 31 - e;
  if (m == (int64_t{1} << 31) || m == -(int64_t{1} << 31)) {
    m /= 2;
    r -= 1;
  }
  PFQ_CHECK(r >= 0, "fixed_multiplier: |M| = ", std::fabs(M), " is too large for a Q31 multiplier (needs |M| < 2^30)");
  if (r > 62) {
    m = std::llround(std::ldexp(M, 62));
    r = 62;
  }
  return {static_cast<int32_t>(m), static_cast<int32_t>(r)};
}

void max_pool_s8(int64_t N, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t SH, int64_t SW, int64_t PH, int64_t PW,
                 int64_t OH, int64_t OW, const int8_t* x, int8_t* y) {
#pragma omp parallel for
  for (int64_t nc = 0; nc < N * C; ++nc) {
    const int8_t* xp = x + nc * H * W;
    int8_t* yp = y + nc * OH * OW;
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        int best = -129;  // below every code: a window of padding only (not produced by valid geometry) stays detectable
        for (int64_t kh = 0; kh < KH; ++kh) {
          const int64_t h = oh * SH - PH + kh;
          if (h < 0 || h >= H) continue;
          for (int64_t kw = 0; kw < KW; ++kw) {
            const int64_t w = ow * SW - PW + kw;
            if (w >= 0 && w < W) best = std::max(best, int{xp[h * W + w]});
          }
        }
        yp[oh * OW + ow] = static_cast<int8_t>(std::max(best, -128));
      }
  }
}

}  // namespace pfq::quant::cpu
