// folded_bn_kernels.cpp — the CPU kernels of quant/folded_bn_kernels.h. Reductions are `omp
// simd` in double over a fixed order (NCHW: per channel; channels-last: the rows split into fixed
// chunks as core/cpu/channel_rows.h), so results do not depend on the thread count.
#include "quant/folded_bn_kernels.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/cpu/channel_rows.h"

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

// Per-channel coefficients of the backward from the sums G = sum g, A = sum g y, GB = sum g bmap.
struct BackCoef {
  double a, bc, dmu, direct_b, k;  // d(z_i) = a + bc (z_i - mu); dy = g k
};
inline BackCoef back_coef(double G, double A, double GB, double mu, double sb, double ga, double s_r, double M) {
  const double dsb = -(s_r * A + ga * (GB - mu * G)) / (sb * sb);  // d/d(sb) of both terms
  const double dmu = -ga * G / sb;                                  // d/d(mu) of the shift term
  return {dmu / M, dsb / (sb * M), dmu, ga / sb, s_r / sb};
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
#pragma omp simd reduction(+ : sum) reduction(min : lo) reduction(max : hi)
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
#pragma omp simd reduction(min : lo) reduction(max : hi)
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

template <typename T, bool PerPos>
void backward_nchw(const Geometry& g, const T* __restrict gout, const Ptrs<T>& in, const Saved& sv, const Tail<T>& t,
                   const Grads<T>& d) {
  const int64_t N = g.N, C = g.C, S = g.S;
  // Local restrict copies: the outputs never alias the inputs (fresh buffers).
  const T* __restrict y = in.y;
  const T* __restrict z0 = in.z0;
  T* __restrict dy = d.dy;
  T* __restrict dz0 = d.dz0;
  const double M = static_cast<double>(N * S);
  const Tail<T> tl = t;  // a local copy: its fields stay in registers
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < C; ++c) {
    const T* b = in.bm + (PerPos ? c * S : c);
    const double zs = in.zs ? static_cast<double>(in.zs[c]) : 1.0;
    const double mu = sv.mu[c], sb = sv.sb[c], ga = static_cast<double>(in.gamma[c]), s_r = static_cast<double>(in.sr[c]);
    const T kt = static_cast<T>(sv.k[c]), sh = static_cast<T>(sv.shift[c]);
    double G = 0, A = 0, GB = 0;  // sums of g, g * y, g * bmap (g gated by the tail)
    for (int64_t n = 0; n < N; ++n) {
      const int64_t off = (n * C + c) * S;
      if constexpr (PerPos) {
#pragma omp simd reduction(+ : G, A, GB)
        for (int64_t p = 0; p < S; ++p) {
          const double gv = gout[off + p];
          G += gv;
          A += gv * static_cast<double>(y[off + p]);
          GB += gv * static_cast<double>(b[p]);
        }
      } else if (tl.on) {  // the gated gradient goes to dy, read back by the second pass
        const T lo = tl.pass_lo(), hi = tl.pass_hi();
#pragma omp simd reduction(+ : G, A)
        for (int64_t p = 0; p < S; ++p) {
          const T yv = y[off + p], g0 = gout[off + p];
          const T pre = affine(yv, kt, sh);
          const T gv = ((pre >= lo) & (pre <= hi)) ? g0 : T(0);
          dy[off + p] = gv;
          G += gv;
          A += static_cast<double>(gv) * static_cast<double>(yv);
        }
      } else {
#pragma omp simd reduction(+ : G, A)
        for (int64_t p = 0; p < S; ++p) {
          const double gv = gout[off + p];
          G += gv;
          A += gv * static_cast<double>(y[off + p]);
        }
      }
    }
    const double b0 = PerPos ? 0.0 : static_cast<double>(b[0]);
    if (!PerPos) GB = b0 * G;
    if (d.dbeta) d.dbeta[c] = static_cast<T>(G);
    if (d.dgamma) d.dgamma[c] = static_cast<T>((GB - mu * G) / sb);
    const BackCoef q = back_coef(G, A, GB, mu, sb, ga, s_r, M);
    const double a = q.a, bc = q.bc;
    const T k = static_cast<T>(q.k);
    if (d.dbm) {
      if constexpr (PerPos) {
        for (int64_t p = 0; p < S; ++p) d.dbm[c * S + p] = T(0);
      } else {
        d.dbm[c] = static_cast<T>(q.direct_b * G + q.dmu);  // + sum d(z) = dmu: zero up to rounding
      }
    }
    double dzs = 0;  // sum d(z_i) z0_i
    // d(z_i) = a + bc (z_i - mu): with a correction map, z_i - mu = zs z0_i + b_p - mu in double;
    // with a per-channel bias, z_i - mu = zs (z0_i - m0), the difference taken first (exact for
    // the near-constant channels PfQ is about, where expanding it would cancel catastrophically).
    const double bz = bc * zs, m0 = sv.m0[c];
    const bool same = in.same;
    for (int64_t n = 0; n < N; ++n) {
      const int64_t off = (n * C + c) * S;
      const T* gr = tl.on ? dy + off : gout + off;  // the gated gradient
      if (dy && !(same && d.zpass)) {
#pragma omp simd
        for (int64_t p = 0; p < S; ++p) dy[off + p] = gr[p] * k;
      }
      if (!d.zpass) continue;
      const T* zr = z0 + off;
      T* dzr = same ? (dy ? dy + off : nullptr) : dz0 + off;  // same: dy = g k + d(z0)
      if constexpr (PerPos) {
        T* dbr = d.dbm ? d.dbm + c * S : nullptr;  // a correction map's gradient: summed over n
#pragma omp simd reduction(+ : dzs)
        for (int64_t p = 0; p < S; ++p) {
          const double z0v = zr[p];
          const double dz = a + bc * (zs * z0v + static_cast<double>(b[p]) - mu);
          dzs += dz * z0v;
          if (dbr) dbr[p] += static_cast<T>(q.direct_b * static_cast<double>(gout[off + p]) + dz);
          if (same) {
            if (dy) dzr[p] = gr[p] * k + static_cast<T>(dz * zs);
          } else if (dzr) {
            dzr[p] = static_cast<T>(dz * zs);
          }
        }
      } else if (d.dzs) {
        if (same && dzr) {
#pragma omp simd reduction(+ : dzs)
          for (int64_t p = 0; p < S; ++p) {
            const double z0v = zr[p];
            const double dz = a + bz * (z0v - m0);
            dzs += dz * z0v;
            dzr[p] = gr[p] * k + static_cast<T>(dz * zs);
          }
        } else if (same) {  // zscale's gradient alone
#pragma omp simd reduction(+ : dzs)
          for (int64_t p = 0; p < S; ++p) {
            const double z0v = zr[p];
            dzs += (a + bz * (z0v - m0)) * z0v;
          }
        } else {
#pragma omp simd reduction(+ : dzs)
          for (int64_t p = 0; p < S; ++p) {
            const double z0v = zr[p];
            const double dz = a + bz * (z0v - m0);
            dzs += dz * z0v;
            dzr[p] = static_cast<T>(dz * zs);
          }
        }
      } else {  // the float conv's gradient alone: d(z0_i) = zs d(z_i), in T
        // m0 as hi + lo in T: z0 - hi is exact near the mean, so the difference keeps T's precision
        const T ca = static_cast<T>(a * zs), cb = static_cast<T>(bz * zs), m0h = static_cast<T>(m0),
                m0l = static_cast<T>(m0 - static_cast<double>(m0h));
        if (same) {
          if (dy) {
#pragma omp simd
            for (int64_t p = 0; p < S; ++p) dzr[p] = gr[p] * k + (ca + cb * ((zr[p] - m0h) - m0l));
          }
        } else {
#pragma omp simd
          for (int64_t p = 0; p < S; ++p) dzr[p] = ca + cb * ((zr[p] - m0h) - m0l);
        }
      }
    }
    if (d.dzs) d.dzs[c] = static_cast<T>(dzs);
  }
}

template <typename T>
void backward_nhwc(const Geometry& g, const T* __restrict gout, const Ptrs<T>& in, const Saved& sv, const Tail<T>& t,
                   const Grads<T>& d) {
  const int64_t M = g.N * g.S, C = g.C;
  const double Md = static_cast<double>(M);
  T* __restrict dy = d.dy;
  std::vector<T> kt(C), sh(C);
  for (int64_t c = 0; c < C; ++c) {
    kt[c] = static_cast<T>(sv.k[c]);
    sh[c] = static_cast<T>(sv.shift[c]);
  }
  const T *pkt = kt.data(), *psh = sh.data();
  std::vector<double> sums(2 * C);  // G = sum g, A = sum g * y (g gated by the tail)
  const Tail<T> tl = t;               // a local copy: its fields stay in registers
  const T lo = tl.pass_lo(), hi = tl.pass_hi();
  ::pfq::cpu::reduce_rows<2>(M, C, [&](int64_t r0, int64_t r1, double* __restrict acc) {
    const T *__restrict k = pkt, *__restrict sh = psh;
    const T plo = lo, phi = hi;  // locals: a store to dy cannot change them
    for (int64_t r = r0; r < r1; ++r) {
      const T* gr = gout + r * C;
      const T* yr = in.y + r * C;
      if (tl.on) {  // the gated gradient goes to dy (read back by the second pass) and is summed
        T* __restrict dr = dy + r * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          const T pre = affine(yr[c], k[c], sh[c]);
          const T g0 = gr[c];
          dr[c] = ((pre >= plo) & (pre <= phi)) ? g0 : T(0);
        }
        gr = dr;
      }
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        const double gv = gr[c];
        acc[c] += gv;
        acc[C + c] += gv * static_cast<double>(yr[c]);
      }
    }
  }, sums.data());
  // per channel: k = s_r / sb for dy; d(z0) = ca + cb (z0 - m0) with (a, bz) in double for dzs
  std::vector<T> k(C), ca(C), cb(C), m0h(C), m0l(C);
  std::vector<double> a(C), bz(C), zsv(C), m0(C);
  for (int64_t c = 0; c < C; ++c) {
    const double G = sums[c], A = sums[C + c];
    const double zs = in.zs ? static_cast<double>(in.zs[c]) : 1.0;
    const double mu = sv.mu[c], sb = sv.sb[c], ga = static_cast<double>(in.gamma[c]), s_r = static_cast<double>(in.sr[c]);
    const double b0 = static_cast<double>(in.bm[c]), GB = b0 * G;
    if (d.dbeta) d.dbeta[c] = static_cast<T>(G);
    if (d.dgamma) d.dgamma[c] = static_cast<T>((GB - mu * G) / sb);
    const BackCoef q = back_coef(G, A, GB, mu, sb, ga, s_r, Md);
    if (d.dbm) d.dbm[c] = static_cast<T>(q.direct_b * G + q.dmu);
    a[c] = q.a;
    bz[c] = q.bc * zs;
    zsv[c] = zs;
    m0[c] = sv.m0[c];
    k[c] = static_cast<T>(q.k);
    ca[c] = static_cast<T>(a[c] * zs);
    cb[c] = static_cast<T>(bz[c] * zs);
    m0h[c] = static_cast<T>(m0[c]);
    m0l[c] = static_cast<T>(m0[c] - static_cast<double>(m0h[c]));
  }
  T* __restrict dz0 = d.dz0;
  const T* pk = k.data();
  const T* gsrc = t.on ? dy : gout;  // the gated gradient
  const bool same = in.same, zpass = d.zpass;
  if (d.dzs) {  // d(z0) in double, with sum d(z) z0 per channel
    std::vector<double> dzs(C);
    const double *pa = a.data(), *pb = bz.data(), *pz = zsv.data(), *p0 = m0.data();
    ::pfq::cpu::reduce_rows<1>(M, C, [&](int64_t r0, int64_t r1, double* __restrict acc) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* gr = gsrc + r * C;
        const T* zr = in.z0 + r * C;
        if (same && dy) {  // dy = g k + d(z0)
          T* __restrict dr = dy + r * C;
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) {
            const double z0v = zr[c];
            const double dz = pa[c] + pb[c] * (z0v - p0[c]);
            acc[c] += dz * z0v;
            dr[c] = gr[c] * pk[c] + static_cast<T>(dz * pz[c]);
          }
          continue;
        }
        if (same) {  // zscale's gradient alone
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) acc[c] += (pa[c] + pb[c] * (static_cast<double>(zr[c]) - p0[c])) * zr[c];
          continue;
        }
        if (dy) {
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) dy[r * C + c] = gr[c] * pk[c];
        }
        T* __restrict dzr = dz0 + r * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          const double z0v = zr[c];
          const double dz = pa[c] + pb[c] * (z0v - p0[c]);
          acc[c] += dz * z0v;
          dzr[c] = static_cast<T>(dz * pz[c]);
        }
      }
    }, dzs.data());
    for (int64_t c = 0; c < C; ++c) d.dzs[c] = static_cast<T>(dzs[c]);
    return;
  }
  const T *pca = ca.data(), *pcb = cb.data(), *ph = m0h.data(), *pl = m0l.data();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < M; ++r) {
    const T* gr = gsrc + r * C;
    const T* zr = in.z0 + r * C;
    if (same && zpass) {
      if (dy) {
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) dy[r * C + c] = gr[c] * pk[c] + (pca[c] + pcb[c] * ((zr[c] - ph[c]) - pl[c]));
      }
      continue;
    }
    if (dy) {
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) dy[r * C + c] = gr[c] * pk[c];
    }
    if (dz0) {
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) dz0[r * C + c] = pca[c] + pcb[c] * ((zr[c] - ph[c]) - pl[c]);
    }
  }
}

#define PFQ_FBN_INSTANTIATE(T)                                                                                            \
  template void stats_nchw<T, false>(const Geometry&, const Ptrs<T>&, double, Saved&, std::vector<double>&, T*, T*);    \
  template void stats_nchw<T, true>(const Geometry&, const Ptrs<T>&, double, Saved&, std::vector<double>&, T*, T*);     \
  template void stats_nhwc<T>(const Geometry&, const Ptrs<T>&, double, Saved&, std::vector<double>&, T*, T*);           \
  template void output_nchw<T, false>(const Geometry&, const Ptrs<T>&, const Saved&, const Tail<T>&, T* __restrict);    \
  template void output_nchw<T, true>(const Geometry&, const Ptrs<T>&, const Saved&, const Tail<T>&, T* __restrict);     \
  template void output_nhwc<T>(const Geometry&, const Ptrs<T>&, const Saved&, const Tail<T>&, T* __restrict);           \
  template void backward_nchw<T, false>(const Geometry&, const T* __restrict, const Ptrs<T>&, const Saved&, const Tail<T>&, \
                                        const Grads<T>&);                                                                \
  template void backward_nchw<T, true>(const Geometry&, const T* __restrict, const Ptrs<T>&, const Saved&, const Tail<T>&,  \
                                       const Grads<T>&);                                                                 \
  template void backward_nhwc<T>(const Geometry&, const T* __restrict, const Ptrs<T>&, const Saved&, const Tail<T>&,        \
                                 const Grads<T>&);
PFQ_FBN_INSTANTIATE(float)
PFQ_FBN_INSTANTIATE(double)
#undef PFQ_FBN_INSTANTIATE

}  // namespace pfq::quant::fbn
