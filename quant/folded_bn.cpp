// folded_bn.cpp — folded_bn_train (quant/folded_bn.h): argument checks, the fused CPU forward and
// backward kernels (two passes over a channel for the statistics, one for the output with the
// optional activation + fake-quantization tail; the backward needs three per-channel sums and
// one elementwise pass), and the composed references.
#include "quant/folded_bn.h"

#include <cmath>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "core/autograd.h"
#include "core/cpu/channel_rows.h"
#include "core/layout.h"
#include "core/ops.h"
#include "core/ops/op_util.h"
#include "core/profiler.h"

namespace pfq::quant {

namespace {

struct Geometry {
  int64_t N = 0, C = 0, S = 0;  // S = H * W
  bool per_position = false;    // bmap is [C, H, W] (a correction map), else [C, 1, 1]
};

Geometry check_args(const FoldedBnArgs& a) {
  const char* op = "folded_bn_train";
  PFQ_CHECK(a.y.defined() && a.y.dim() == 4, op, ": y must be [N, C, H, W], got ", a.y.describe());
  PFQ_CHECK(a.z0.defined() && a.z0.shape() == a.y.shape(), op, ": z0 ", a.z0.describe(), " and y ", a.y.describe(),
            " differ in shape");
  Geometry g{a.y.size(0), a.y.size(1), a.y.size(2) * a.y.size(3), false};
  PFQ_CHECK(g.N * g.S > 1, op, ": batch statistics need more than one value per channel, got ", a.y.describe());
  PFQ_CHECK(a.bmap.defined() && (a.bmap.shape() == Shape({g.C, 1, 1}) || a.bmap.shape() == Shape({g.C, a.y.size(2), a.y.size(3)})),
            op, ": bmap ", a.bmap.describe(), " must be [C, 1, 1] or [C, H, W] for y ", a.y.describe());
  g.per_position = a.bmap.shape() != Shape({g.C, 1, 1});
  for (const Tensor* t : {&a.z0, &a.bmap, &a.gamma, &a.beta, &a.sigma_r}) check_same_device_dtype(a.y, *t, op);
  for (const Tensor* t : {&a.gamma, &a.beta, &a.sigma_r, &a.zscale}) {
    if (t == &a.zscale && !t->defined()) continue;
    check_same_device_dtype(a.y, *t, op);
    PFQ_CHECK(t->shape() == Shape{g.C}, op, ": per-channel tensor ", t->describe(), " must be [", g.C, "]");
  }
  PFQ_CHECK(a.running_mean.defined() == a.running_var.defined(), op, ": give both running statistics or neither");
  for (const Tensor* t : {&a.running_mean, &a.running_var})
    if (t->defined()) {
      check_same_device_dtype(a.y, *t, op);
      PFQ_CHECK(t->shape() == Shape{g.C} && t->is_contiguous(), op, ": running statistic ", t->describe(),
                " must be a contiguous [", g.C, "]");
    }
  PFQ_CHECK(a.eps > 0, op, ": eps must be positive, got ", a.eps);
  return g;
}

// Contiguous, detached operands of the kernels (zs null: zscale 1; same: z0 is y).
template <typename T>
struct Ptrs {
  const T *y, *z0, *zs, *bm, *gamma, *beta, *sr;
  bool same = false;
};

// Per-channel results of the forward pass the backward needs.
struct Saved {
  std::vector<double> mu, sb;    // batch mean of z and sqrt(var + eps)
  std::vector<double> m0;        // batch mean of z0 (per-channel bias only)
  std::vector<double> k, shift;  // values of T: out = y k + shift (per-channel bias only)
};

// The folded BN's output before the tail, one expression everywhere (output, extremes, backward
// gate) so the three see the same values.
template <typename T>
inline T affine(T y, T k, T shift) { return y * k + shift; }

// The tail of one call with its range resolved (FoldedBnTail): values of T held in double.
// act is ReLU (cap infinity) or ReLU6 (cap 6); without quantization clo, chi are -inf, inf.
struct TailSpec {
  bool on = false, quant = false;
  double cap = 0;
  double s = 1, z = 0, qmin = 0, qmax = 0;  // quant: scale, zero point, integer grid
  double clo = 0, chi = 0;                  // straight-through range (fake_quant_backward_x's)
};

// Branch-free forms, so the loops using them vectorise.
template <typename T>
struct Tail {
  bool on, quant;
  T cap, s, z, qmin, qmax, clo, chi;
  explicit Tail(const TailSpec& t)
      : on(t.on), quant(t.quant), cap(static_cast<T>(t.cap)), s(static_cast<T>(t.s)), z(static_cast<T>(t.z)),
        qmin(static_cast<T>(t.qmin)), qmax(static_cast<T>(t.qmax)), clo(static_cast<T>(t.clo)), chi(static_cast<T>(t.chi)) {}
  T activate(T v) const { return v > T(0) ? (v < cap ? v : cap) : T(0); }  // fn::Relu / fn::Relu6
  T quantize(T r) const { return cpu::fake_quant_one(r, s, z, qmin, qmax); }
  // The gradient passes where 0 < pre < cap (fn::ReluGrad / Relu6Grad) and clo <= activate(pre)
  // <= chi (the quantizer's straight-through range; activate(pre) is pre where the first
  // holds): pass_lo <= pre <= pass_hi, the strict bounds moved one representable value inward.
  T pass_lo() const {
    const T above0 = std::nextafter(T(0), T(1));
    return clo > above0 ? clo : above0;
  }
  T pass_hi() const {
    const T below_cap = std::nextafter(cap, T(0));
    return chi < below_cap ? chi : below_cap;
  }
};

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

// Gradient outputs; null when not wanted. dy is also the scratch of the gated gradient when a
// tail is on (then always given). dz0 ([N, C, H, W], d loss / d z0) is written whenever it,
// dzscale or a correction map's gradient is wanted (they come out of the same pass); when z0 is
// y it is not given and d z0 is added into dy instead (zpass says whether that pass runs).
template <typename T>
struct Grads {
  T *dy, *dz0, *dzs, *dbm, *dgamma, *dbeta;
  bool zpass = false;
};

// Per-channel coefficients of the backward from the sums G = sum g, A = sum g y, GB = sum g bmap.
struct BackCoef {
  double a, bc, dmu, direct_b, k;  // d(z_i) = a + bc (z_i - mu); dy = g k
};
inline BackCoef back_coef(double G, double A, double GB, double mu, double sb, double ga, double s_r, double M) {
  const double dsb = -(s_r * A + ga * (GB - mu * G)) / (sb * sb);  // d/d(sb) of both terms
  const double dmu = -ga * G / sb;                                  // d/d(mu) of the shift term
  return {dmu / M, dsb / (sb * M), dmu, ga / sb, s_r / sb};
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

}  // namespace

Tensor folded_bn_train_reference(const FoldedBnArgs& a) {
  const Geometry g = check_args(a);
  const Shape cs{g.C, 1, 1};
  Tensor z = add(a.zscale.defined() ? mul(a.z0, reshape(a.zscale, cs)) : a.z0, a.bmap);
  Tensor mu_b = mean(z, {0, 2, 3});         // [C]
  Tensor var_b = var(z, {0, 2, 3}, false);  // [C], biased (normalisation)
  Tensor sigma_b = sqrt(add(var_b, a.eps));
  if (a.running_mean.defined()) {
    NoGradGuard ng;
    const double n = static_cast<double>(g.N * g.S);
    Tensor rm = a.running_mean, rv = a.running_var;
    rm.copy_(add(mul(rm, 1 - a.momentum), mul(mu_b.detach(), a.momentum)));
    rv.copy_(add(mul(rv, 1 - a.momentum), mul(var_b.detach(), a.momentum * n / (n - 1))));
  }
  Tensor out = mul(a.y, reshape(div(a.sigma_r.detach(), sigma_b), cs));
  Tensor shift = mul(reshape(div(a.gamma, sigma_b), cs), sub(a.bmap, reshape(mu_b, cs)));
  return add(out, add(shift, reshape(a.beta, cs)));
}

Tensor folded_bn_train_tail_reference(const FoldedBnArgs& a, const FoldedBnTail& tail) {
  Tensor out = folded_bn_train(a);
  if (tail.act == BnAct::ReLU) out = relu(out);
  if (tail.act == BnAct::ReLU6) out = relu6(out);
  if (!tail.range) return out;
  auto [lo, hi] = observe_range(out, tail.qopt);
  const auto r = tail.range(lo, hi);
  return r ? fake_quantize_range(out, r->first, r->second, tail.qopt).out : out;
}

namespace {

// The tail of this call: act, and the quantizer's range for this batch from the extremes of y.
template <typename T>
TailSpec resolve_tail(const FoldedBnTail& tail, const Saved& sv, const std::vector<T>& ymin, const std::vector<T>& ymax) {
  TailSpec t;
  const double inf = std::numeric_limits<double>::infinity();
  t.on = true;
  t.cap = tail.act == BnAct::ReLU6 ? 6.0 : inf;
  t.clo = -inf;
  t.chi = inf;
  if (!tail.range) return t;
  const Tail<T> act(t);
  // act(y k + shift) is non-decreasing in y (k = sigma_r / sb > 0), so its extremes over a
  // channel are at y's; NaNs are skipped as observe_range skips them
  T lo = std::numeric_limits<T>::infinity(), hi = -lo;
  for (size_t c = 0; c < ymin.size(); ++c) {
    if (!(ymin[c] <= ymax[c])) continue;  // a channel of NaNs
    const T k = static_cast<T>(sv.k[c]), sh = static_cast<T>(sv.shift[c]);
    const T l = act.activate(affine(ymin[c], k, sh)), h = act.activate(affine(ymax[c], k, sh));
    lo = l < lo ? l : lo;
    hi = h > hi ? h : hi;
  }
  if (lo > hi) lo = hi = T(0);  // as observe_range: no finite value
  if (tail.qopt.symmetric) {     // as observe_range: (-max|x|, max|x|)
    hi = std::fabs(lo) > std::fabs(hi) ? std::fabs(lo) : std::fabs(hi);
    lo = -hi;
  }
  const DType dt = std::is_same_v<T, double> ? DType::Float64 : DType::Float32;
  const auto r = tail.range(Tensor::full({1}, static_cast<double>(lo), dt), Tensor::full({1}, static_cast<double>(hi), dt));
  if (!r) return t;
  PFQ_CHECK(r->first.numel() == 1 && r->second.numel() == 1 && r->first.dtype() == dt && r->second.dtype() == dt,
            "folded_bn_train: the tail's range must be two [1] tensors of the input's dtype, got ", r->first.describe(),
            " and ", r->second.describe());
  const T rl = static_cast<T>(r->first.item()), rh = static_cast<T>(r->second.item());
  const cpu::QuantGrid grid = grid_of(tail.qopt);
  T s, z;
  cpu::qparams_from_range(rl, rh, grid, tail.qopt.symmetric, s, z);  // as fake_quant_forward
  t.quant = true;
  t.s = s;
  t.z = z;
  t.qmin = static_cast<double>(grid.qmin);
  t.qmax = static_cast<double>(grid.qmax);
  t.clo = (static_cast<T>(grid.qmin) - z) * s;  // as fake_quant_backward_x
  t.chi = (static_cast<T>(grid.qmax) - z) * s;
  return t;
}

}  // namespace

Tensor folded_bn_train(const FoldedBnArgs& a, const FoldedBnTail& tail) {
  const bool has_tail = tail.act != BnAct::None || tail.range;
  if (has_tail) {
    PFQ_CHECK(!tail.range || (tail.qopt.bits >= 2 && !tail.qopt.per_channel), "folded_bn_train: the tail quantizes per tensor "
              "with 2..8 bits, got bits ", tail.qopt.bits, tail.qopt.per_channel ? ", per channel" : "");
    if (tail.range) check_fake_quant_options(tail.qopt, "folded_bn_train");
  }
  if (a.y.device().is_cuda()) return has_tail ? folded_bn_train_tail_reference(a, tail) : folded_bn_train_reference(a);
  const Geometry g = check_args(a);
  // fused: ReLU / ReLU6 with a per-channel bias
  if (has_tail && (g.per_position || tail.act == BnAct::None)) return folded_bn_train_tail_reference(a, tail);
  PFQ_PROFILE("folded_bn_train");
  const bool has_zs = a.zscale.defined();
  const bool same = a.z0.impl_ptr() == a.y.impl_ptr();  // one tensor: one gradient
  // Detached operands, kept by the backward closure: contiguous, or y and z0 channels-last as
  // they come from the convolutions (core/layout.h) when the bias is per channel.
  const bool nhwc = !g.per_position && is_strictly_channels_last(a.y) && is_strictly_channels_last(a.z0);
  Tensor yc = nhwc ? a.y.detach() : a.y.detach().contiguous();
  Tensor zc = same ? yc : (nhwc ? a.z0.detach() : a.z0.detach().contiguous());
  Tensor bc = a.bmap.detach().contiguous();
  Tensor zsc = has_zs ? a.zscale.detach().contiguous() : Tensor();
  Tensor gc = a.gamma.detach().contiguous(), bec = a.beta.detach().contiguous(), sc = a.sigma_r.detach().contiguous();
  Tensor out = empty_like_layout(yc);
  auto sv = std::make_shared<Saved>();
  for (auto* v : {&sv->mu, &sv->sb, &sv->m0, &sv->k, &sv->shift}) v->resize(g.C);
  std::vector<double> var(g.C);
  auto ptrs = [=]<typename T>(T*) {
    return Ptrs<T>{yc.data<T>(), zc.data<T>(), has_zs ? zsc.data<T>() : nullptr, bc.data<T>(), gc.data<T>(), bec.data<T>(),
                   sc.data<T>(), same};
  };
  TailSpec ts;
  PFQ_DISPATCH_FLOAT(a.y.dtype(), "folded_bn_train", [&] {
    const Ptrs<scalar_t> in = ptrs(static_cast<scalar_t*>(nullptr));
    std::vector<scalar_t> ymin(has_tail ? g.C : 0), ymax(has_tail ? g.C : 0);
    scalar_t* lo = has_tail ? ymin.data() : nullptr;
    scalar_t* hi = has_tail ? ymax.data() : nullptr;
    if (nhwc) stats_nhwc<scalar_t>(g, in, a.eps, *sv, var, lo, hi);
    else (g.per_position ? stats_nchw<scalar_t, true> : stats_nchw<scalar_t, false>)(g, in, a.eps, *sv, var, lo, hi);
    if (a.running_mean.defined()) {
      Tensor rmt = a.running_mean, rvt = a.running_var;
      scalar_t* rm = rmt.data<scalar_t>();
      scalar_t* rv = rvt.data<scalar_t>();
      const double M = static_cast<double>(g.N * g.S), unbias = M / (M - 1);
      for (int64_t c = 0; c < g.C; ++c) {
        rm[c] = static_cast<scalar_t>((1 - a.momentum) * rm[c] + a.momentum * sv->mu[c]);
        rv[c] = static_cast<scalar_t>((1 - a.momentum) * rv[c] + a.momentum * var[c] * unbias);
      }
    }
    if (has_tail) ts = resolve_tail(tail, *sv, ymin, ymax);
    const Tail<scalar_t> t(ts);
    if (nhwc) output_nhwc<scalar_t>(g, in, *sv, t, out.data<scalar_t>());
    else (g.per_position ? output_nchw<scalar_t, true> : output_nchw<scalar_t, false>)(g, in, *sv, t, out.data<scalar_t>());
  });
  const bool ny = a.y.requires_grad(), nz = !same && a.z0.requires_grad(), nzs = has_zs && a.zscale.requires_grad(),
             nb = a.bmap.requires_grad(), ng = a.gamma.requires_grad(), nbe = a.beta.requires_grad();
  Tensor zs_in = has_zs ? a.zscale : Tensor();
  return record("folded_bn_train", out, {a.y, same ? Tensor() : a.z0, zs_in, a.bmap, a.gamma, a.beta},
                [=](const Tensor& gout_in) {
    Tensor gout = same_layout_as(gout_in, yc);
    const DType dt = gout.dtype();
    auto maybe = [&](bool need, const Shape& s) { return need ? Tensor::empty(s, dt) : Tensor(); };
    // the pass over z0 runs for its gradient (also y's when z0 is y), zscale's or a correction map's
    const bool zpass = nz || nzs || (nb && g.per_position) || (same && ny);
    Tensor dy = ny || ts.on ? empty_like_layout(yc) : Tensor(), dz = zpass && !same ? empty_like_layout(zc) : Tensor();
    Tensor dzs = maybe(nzs, {g.C}), dbm = maybe(nb, bc.shape()), dgm = maybe(ng, {g.C}), dbe = maybe(nbe, {g.C});
    PFQ_DISPATCH_FLOAT(dt, "folded_bn_train backward", [&] {
      auto p = [](Tensor& t) { return t.defined() ? t.data<scalar_t>() : nullptr; };
      const Grads<scalar_t> d{p(dy), p(dz), p(dzs), p(dbm), p(dgm), p(dbe), zpass};
      const Ptrs<scalar_t> in = ptrs(static_cast<scalar_t*>(nullptr));
      const Tail<scalar_t> t(ts);
      if (nhwc) backward_nhwc<scalar_t>(g, gout.data<scalar_t>(), in, *sv, t, d);
      else (g.per_position ? backward_nchw<scalar_t, true> : backward_nchw<scalar_t, false>)(g, gout.data<scalar_t>(), in, *sv, t, d);
    });
    return std::vector<Tensor>{ny ? dy : Tensor(), nz ? dz : Tensor(), dzs, dbm, dgm, dbe};
  });
}

}  // namespace pfq::quant
