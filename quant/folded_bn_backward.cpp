// folded_bn_backward.cpp — the CPU backward kernels of quant/folded_bn_kernels.h (the forward:
// folded_bn_kernels.cpp). Reductions are `omp simd` in double over a fixed order (NCHW: per
// channel; channels-last: the rows split into fixed chunks as core/cpu/channel_rows.h), so results
// do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/cpu/channel_rows.h"
#include "quant/folded_bn_kernels.h"

namespace pfq::quant::fbn {

namespace {

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

#define PFQ_FBN_BACKWARD_INSTANTIATE(T)                                                                                     \
  template void backward_nchw<T, false>(const Geometry&, const T* __restrict, const Ptrs<T>&, const Saved&, const Tail<T>&, \
                                        const Grads<T>&);                                                                \
  template void backward_nchw<T, true>(const Geometry&, const T* __restrict, const Ptrs<T>&, const Saved&, const Tail<T>&,  \
                                       const Grads<T>&);                                                                 \
  template void backward_nhwc<T>(const Geometry&, const T* __restrict, const Ptrs<T>&, const Saved&, const Tail<T>&,        \
                                 const Grads<T>&);
PFQ_FBN_BACKWARD_INSTANTIATE(float)
PFQ_FBN_BACKWARD_INSTANTIATE(double)
#undef PFQ_FBN_BACKWARD_INSTANTIATE

}  // namespace pfq::quant::fbn
