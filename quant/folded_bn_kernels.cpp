// folded_bn_kernels.cpp — the CPU forward kernels of quant/folded_bn_kernels.h (the backward
// kernels: folded_bn_backward.cpp). Reductions are `omp simd` in double over a fixed order (NCHW:
// per channel; channels-last: the rows split into fixed chunks as core/cpu/channel_rows.h), so
// results do not depend on the thread count.
#include "quant/folded_bn_kernels.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/cpu/channel_rows.h"

// The min/max reductions below are `omp simd` for GCC, which vectorises them; clang 14 cannot
// (a float select without -ffast-math) and says so with -Wpass-failed, one warning per
// instantiation. It runs them in order either way, so for clang they carry no pragma.
#if defined(__clang__)
#define PFQ_OMP_SIMD_MINMAX(clauses)
#else
#define PFQ_OMP_SIMD_PRAGMA(x) _Pragma(#x)
#define PFQ_OMP_SIMD_MINMAX(clauses) PFQ_OMP_SIMD_PRAGMA(omp simd clauses)
#endif

namespace pfq::quant::fbn {

namespace {

// Per-channel sums (when sum is given) and extremes of the rows of a channels-last x [M, C]:
// chunks as ::pfq::cpu::reduce_rows, so the sums equal its.
template <typename T>
void sum_minmax_rows(int64_t M, int64_t C, const T* x, double* sum, T* mn, T* mx) {
  const int64_t chunks = std::min<int64_t>(::pfq::cpu::kRowChunks, M), rows = (M + chunks - 1) / chunks;
  const T inf = std::numeric_limits<T>::infinity();
  std::vector<double> ps(static_cast<size_t>(sum ? chunks * C : 0), 0.0);
  std::vector<T> pl(static_cast<size_t>(chunks * C), inf), ph(static_cast<size_t>(chunks * C), -inf);
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < chunks; ++k) {
    const int64_t r0 = k * rows, r1 = std::min(M, r0 + rows);
    double* __restrict s = sum ? ps.data() + k * C : nullptr;
    T* __restrict l = pl.data() + k * C;
    T* __restrict h = ph.data() + k * C;
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * C;
      if (s) {
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) s[c] += xr[c];
      }
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        l[c] = xr[c] < l[c] ? xr[c] : l[c];
        h[c] = xr[c] > h[c] ? xr[c] : h[c];
      }
    }
  }
  for (int64_t c = 0; c < C; ++c) {
    mn[c] = inf;
    mx[c] = -inf;
    if (sum) sum[c] = 0.0;
  }
  for (int64_t k = 0; k < chunks; ++k)
    for (int64_t c = 0; c < C; ++c) {
      if (sum) sum[c] += ps[k * C + c];
      mn[c] = pl[k * C + c] < mn[c] ? pl[k * C + c] : mn[c];
      mx[c] = ph[k * C + c] > mx[c] ? ph[k * C + c] : mx[c];
    }
}

}  // namespace

// Forward, NCHW: per channel the statistics of z (two passes), the output map (k, shift) and,
// when ymin is given, the extremes of y (inside the sum pass when z0 is y). The bias map enters
// the statistics through z = z0 zs + bmap. With a per-channel bias (PerPos false) it only shifts
// the mean, so the sums run over z0 alone and are scaled; with a correction map it is added per
// position. Reductions are `omp simd` in double (fixed order: deterministic), two-pass like
// BatchNorm2d's kernels so tiny variances survive.
template <typename T, bool PerPos>
void stats_nchw(const Geometry& g, const Ptrs<T>& in, double eps, Saved& sv, std::vector<double>& var, T* ymin, T* ymax) {
  const int64_t N = g.N, C = g.C, S = g.S;
  const double M = static_cast<double>(N * S);
  const T inf = std::numeric_limits<T>::infinity();
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < C; ++c) {
    const T* b = in.bm + (PerPos ? c * S : c);
    const double zs = in.zs ? static_cast<double>(in.zs[c]) : 1.0;
    double sum = 0;
    T lo = inf, hi = -inf;
    const bool ext_in_sum = !PerPos && ymin && in.same;
    for (int64_t n = 0; n < N; ++n) {
      const T* zr = in.z0 + (n * C + c) * S;
      if constexpr (PerPos) {
#pragma omp simd reduction(+ : sum)
        for (int64_t p = 0; p < S; ++p) sum += zs * static_cast<double>(zr[p]) + static_cast<double>(b[p]);
      } else if (ext_in_sum) {
PFQ_OMP_SIMD_MINMAX(reduction(+ : sum) reduction(min : lo) reduction(max : hi))
        for (int64_t p = 0; p < S; ++p) {
          const T v = zr[p];
          sum += v;
          lo = v < lo ? v : lo;
          hi = v > hi ? v : hi;
        }
      } else {
#pragma omp simd reduction(+ : sum)
        for (int64_t p = 0; p < S; ++p) sum += zr[p];
      }
    }
    const double m = sum / M;  // mean of z (PerPos) or of z0
    double sq = 0;
    for (int64_t n = 0; n < N; ++n) {
      const T* zr = in.z0 + (n * C + c) * S;
      if constexpr (PerPos) {
#pragma omp simd reduction(+ : sq)
        for (int64_t p = 0; p < S; ++p) {
          const double d = zs * static_cast<double>(zr[p]) + static_cast<double>(b[p]) - m;
          sq += d * d;
        }
      } else {
#pragma omp simd reduction(+ : sq)
        for (int64_t p = 0; p < S; ++p) {
          const double d = zr[p] - m;
          sq += d * d;
        }
      }
    }
    if (ymin && !ext_in_sum)
      for (int64_t n = 0; n < N; ++n) {
        const T* yr = in.y + (n * C + c) * S;
PFQ_OMP_SIMD_MINMAX(reduction(min : lo) reduction(max : hi))
        for (int64_t p = 0; p < S; ++p) {
          lo = yr[p] < lo ? yr[p] : lo;
          hi = yr[p] > hi ? yr[p] : hi;
        }
      }
    const double b0 = PerPos ? 0.0 : static_cast<double>(b[0]);
    const double mu = PerPos ? m : zs * m + b0;
    const double v = PerPos ? sq / M : zs * zs * sq / M;
    const double sb = std::sqrt(v + eps), ga = static_cast<double>(in.gamma[c]);
    // out = y k + gamma (bmap - mu) / sb + beta
    sv.k[c] = static_cast<T>(static_cast<double>(in.sr[c]) / sb);
    sv.shift[c] = static_cast<T>(static_cast<double>(in.beta[c]) + ga * (b0 - mu) / sb);
    sv.mu[c] = mu;
    sv.sb[c] = sb;
    sv.m0[c] = PerPos ? 0.0 : m;
    var[c] = v;
    if (ymin) {
      ymin[c] = lo;
      ymax[c] = hi;
    }
  }
}

template <typename T, bool PerPos>
void output_nchw(const Geometry& g, const Ptrs<T>& in, const Saved& sv, const Tail<T>& t, T* __restrict out) {
  const int64_t C = g.C, S = g.S;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < g.N * C; ++i) {
    const int64_t c = i % C, off = i * S;
    const T k = static_cast<T>(sv.k[c]), shift = static_cast<T>(sv.shift[c]);
    const T* y = in.y + off;
    T* o = out + off;
    if constexpr (PerPos) {
      const T* b = in.bm + c * S;
      const T gs = static_cast<T>(static_cast<double>(in.gamma[c]) / sv.sb[c]);
#pragma omp simd
      for (int64_t p = 0; p < S; ++p) o[p] = y[p] * k + gs * b[p] + shift;
    } else if (t.on && t.quant) {
      const Tail<T> tl = t;
#pragma omp simd
      for (int64_t p = 0; p < S; ++p) o[p] = tl.quantize(tl.activate(affine(y[p], k, shift)));
    } else if (t.on) {
      const Tail<T> tl = t;
#pragma omp simd
      for (int64_t p = 0; p < S; ++p) o[p] = tl.activate(affine(y[p], k, shift));
    } else {
#pragma omp simd
      for (int64_t p = 0; p < S; ++p) o[p] = affine(y[p], k, shift);
    }
  }
}

// Forward, channels-last y and z0 ([M, C] rows, M = N*H*W) with a per-channel bias: the same
// formulas as stats_nchw (PerPos false), the per-channel sums over a fixed split of the rows
// (core/cpu/channel_rows.h: deterministic), every loop vectorised over the channels.
template <typename T>
void stats_nhwc(const Geometry& g, const Ptrs<T>& in, double eps, Saved& sv, std::vector<double>& var, T* ymin, T* ymax) {
  const int64_t M = g.N * g.S, C = g.C;
  const double Md = static_cast<double>(M);
  std::vector<double> m(C), sq(C);
  if (ymin && in.same) {
    sum_minmax_rows(M, C, in.z0, m.data(), ymin, ymax);
  } else {
    ::pfq::cpu::reduce_rows<1>(M, C, [&](int64_t r0, int64_t r1, double* acc) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* zr = in.z0 + r * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) acc[c] += zr[c];
      }
    }, m.data());
    if (ymin) sum_minmax_rows<T>(M, C, in.y, nullptr, ymin, ymax);
  }
  for (int64_t c = 0; c < C; ++c) m[c] /= Md;
  const double* pm = m.data();
  ::pfq::cpu::reduce_rows<1>(M, C, [&](int64_t r0, int64_t r1, double* acc) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* zr = in.z0 + r * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        const double d = zr[c] - pm[c];
        acc[c] += d * d;
      }
    }
  }, sq.data());
  for (int64_t c = 0; c < C; ++c) {
    const double zs = in.zs ? static_cast<double>(in.zs[c]) : 1.0, b0 = static_cast<double>(in.bm[c]);
    const double mu = zs * m[c] + b0, v = zs * zs * sq[c] / Md;
    const double sb = std::sqrt(v + eps), ga = static_cast<double>(in.gamma[c]);
    sv.k[c] = static_cast<T>(static_cast<double>(in.sr[c]) / sb);
    sv.shift[c] = static_cast<T>(static_cast<double>(in.beta[c]) + ga * (b0 - mu) / sb);
    sv.mu[c] = mu;
    sv.sb[c] = sb;
    sv.m0[c] = m[c];
    var[c] = v;
  }
}

template <typename T>
void output_nhwc(const Geometry& g, const Ptrs<T>& in, const Saved& sv, const Tail<T>& t, T* __restrict out) {
  const int64_t M = g.N * g.S, C = g.C;
  std::vector<T> k(C), shift(C);
  for (int64_t c = 0; c < C; ++c) {
    k[c] = static_cast<T>(sv.k[c]);
    shift[c] = static_cast<T>(sv.shift[c]);
  }
  const T *pk = k.data(), *ps = shift.data();
#pragma omp parallel for schedule(static) if (M * C > 32768)
  for (int64_t r = 0; r < M; ++r) {
    const T* y = in.y + r * C;
    T* o = out + r * C;
    if (t.on && t.quant) {
      const Tail<T> tl = t;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) o[c] = tl.quantize(tl.activate(affine(y[c], pk[c], ps[c])));
    } else if (t.on) {
      const Tail<T> tl = t;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) o[c] = tl.activate(affine(y[c], pk[c], ps[c]));
    } else {
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) o[c] = affine(y[c], pk[c], ps[c]);
    }
  }
}

#define PFQ_FBN_INSTANTIATE(T)                                                                                         \
  template void stats_nchw<T, false>(const Geometry&, const Ptrs<T>&, double, Saved&, std::vector<double>&, T*, T*); \
  template void stats_nchw<T, true>(const Geometry&, const Ptrs<T>&, double, Saved&, std::vector<double>&, T*, T*);  \
  template void stats_nhwc<T>(const Geometry&, const Ptrs<T>&, double, Saved&, std::vector<double>&, T*, T*);        \
  template void output_nchw<T, false>(const Geometry&, const Ptrs<T>&, const Saved&, const Tail<T>&, T* __restrict); \
  template void output_nchw<T, true>(const Geometry&, const Ptrs<T>&, const Saved&, const Tail<T>&, T* __restrict);  \
  template void output_nhwc<T>(const Geometry&, const Ptrs<T>&, const Saved&, const Tail<T>&, T* __restrict);
PFQ_FBN_INSTANTIATE(float)
PFQ_FBN_INSTANTIATE(double)
#undef PFQ_FBN_INSTANTIATE

}  // namespace pfq::quant::fbn

#undef PFQ_OMP_SIMD_MINMAX
#ifdef PFQ_OMP_SIMD_PRAGMA
#undef PFQ_OMP_SIMD_PRAGMA
#endif
