// folded_bn.cpp — folded_bn_train (quant/folded_bn.h): argument checks, the fused CPU forward and
// backward kernels (two passes over a channel for the statistics, one for the output; the
// backward needs three per-channel sums and one elementwise pass), and the composed reference.
#include "quant/folded_bn.h"

#include <cmath>
#include <limits>
#include <memory>
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

// Contiguous, detached operands of the kernels (zs null: zscale 1).
template <typename T>
struct Ptrs {
  const T *y, *z0, *zs, *bm, *gamma, *beta, *sr;
};

// Per-channel results of the forward pass the backward needs.
struct Saved {
  std::vector<double> mu, sb;  // batch mean of z and sqrt(var + eps)
  std::vector<double> m0;      // batch mean of z0 (per-channel bias only)
};

// The bias map enters the statistics through z = z0 zs + bmap. With a per-channel bias (PerPos
// false) it only shifts the mean, so the sums run over z0 alone and are scaled; with a correction
// map it is added per position. Reductions are `omp simd` in double (fixed order: deterministic),
// two-pass like BatchNorm2d's kernels so tiny variances survive.
template <typename T, bool PerPos>
void forward_kernel(const Geometry& g, const Ptrs<T>& in, double eps, T* __restrict out, Saved& sv, std::vector<double>& var) {
  const int64_t N = g.N, C = g.C, S = g.S;
  const double M = static_cast<double>(N * S);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < C; ++c) {
    const T* b = in.bm + (PerPos ? c * S : c);
    const double zs = in.zs ? static_cast<double>(in.zs[c]) : 1.0;
    double sum = 0;
    for (int64_t n = 0; n < N; ++n) {
      const T* zr = in.z0 + (n * C + c) * S;
      if constexpr (PerPos) {
#pragma omp simd reduction(+ : sum)
        for (int64_t p = 0; p < S; ++p) sum += zs * static_cast<double>(zr[p]) + static_cast<double>(b[p]);
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
    const double b0 = PerPos ? 0.0 : static_cast<double>(b[0]);
    const double mu = PerPos ? m : zs * m + b0;
    const double v = PerPos ? sq / M : zs * zs * sq / M;
    const double sb = std::sqrt(v + eps), ga = static_cast<double>(in.gamma[c]);
    const T k = static_cast<T>(static_cast<double>(in.sr[c]) / sb);
    const T gs = static_cast<T>(ga / sb);
    // out = y k + gamma (bmap - mu) / sb + beta
    const T shift = static_cast<T>(static_cast<double>(in.beta[c]) + ga * (b0 - mu) / sb);
    for (int64_t n = 0; n < N; ++n) {
      const int64_t off = (n * C + c) * S;
      if constexpr (PerPos) {
#pragma omp simd
        for (int64_t p = 0; p < S; ++p) out[off + p] = in.y[off + p] * k + gs * b[p] + shift;
      } else {
#pragma omp simd
        for (int64_t p = 0; p < S; ++p) out[off + p] = in.y[off + p] * k + shift;
      }
    }
    sv.mu[c] = mu;
    sv.sb[c] = sb;
    sv.m0[c] = PerPos ? 0.0 : m;
    var[c] = v;
  }
}

// Gradient outputs; null when not wanted. dz0 ([N, C, H, W], d loss / d z0) is written whenever
// it, dzscale or a correction map's gradient is wanted (they come out of the same pass).
template <typename T>
struct Grads {
  T *dy, *dz0, *dzs, *dbm, *dgamma, *dbeta;
};

template <typename T, bool PerPos>
void backward_kernel(const Geometry& g, const T* __restrict gout, const Ptrs<T>& in, const Saved& sv, const Grads<T>& d) {
  const int64_t N = g.N, C = g.C, S = g.S;
  // Local restrict copies: the outputs never alias the inputs (fresh buffers).
  const T* __restrict y = in.y;
  const T* __restrict z0 = in.z0;
  T* __restrict dy = d.dy;
  T* __restrict dz0 = d.dz0;
  const double M = static_cast<double>(N * S);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < C; ++c) {
    const T* b = in.bm + (PerPos ? c * S : c);
    const double zs = in.zs ? static_cast<double>(in.zs[c]) : 1.0;
    const double mu = sv.mu[c], sb = sv.sb[c], ga = static_cast<double>(in.gamma[c]), s_r = static_cast<double>(in.sr[c]);
    double G = 0, A = 0, GB = 0;  // sums of g, g * y, g * bmap
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
    // d/d(sb) of both terms, then through the biased variance to z; d/d(mu) of the shift term.
    const double dsb = -(s_r * A + ga * (GB - mu * G)) / (sb * sb);
    const double dmu = -ga * G / sb;
    const double a = dmu / M, bc = dsb / (sb * M);  // d(z_i) = a + bc (z_i - mu)
    const double direct_b = ga / sb;                // d out / d bmap at the same position, per unit of g
    const T k = static_cast<T>(s_r / sb);
    if (d.dbm) {
      if constexpr (PerPos) {
        for (int64_t p = 0; p < S; ++p) d.dbm[c * S + p] = T(0);
      } else {
        d.dbm[c] = static_cast<T>(direct_b * G + dmu);  // + sum d(z) = dmu: zero up to rounding
      }
    }
    double dzs = 0;  // sum d(z_i) z0_i
    // d(z_i) = a + bc (z_i - mu): with a correction map, z_i - mu = zs z0_i + b_p - mu in double;
    // with a per-channel bias, z_i - mu = zs (z0_i - m0), the difference taken first (exact for
    // the near-constant channels PfQ is about, where expanding it would cancel catastrophically).
    const double bz = bc * zs, m0 = sv.m0[c];
    for (int64_t n = 0; n < N; ++n) {
      const int64_t off = (n * C + c) * S;
      if (dy) {
#pragma omp simd
        for (int64_t p = 0; p < S; ++p) dy[off + p] = gout[off + p] * k;
      }
      if (!dz0) continue;
      const T* zr = z0 + off;
      T* dzr = dz0 + off;
      if constexpr (PerPos) {
        T* dbr = d.dbm ? d.dbm + c * S : nullptr;  // a correction map's gradient: summed over n
#pragma omp simd reduction(+ : dzs)
        for (int64_t p = 0; p < S; ++p) {
          const double z0v = zr[p];
          const double dz = a + bc * (zs * z0v + static_cast<double>(b[p]) - mu);
          dzs += dz * z0v;
          dzr[p] = static_cast<T>(dz * zs);
          if (dbr) dbr[p] += static_cast<T>(direct_b * static_cast<double>(gout[off + p]) + dz);
        }
      } else if (d.dzs) {
#pragma omp simd reduction(+ : dzs)
        for (int64_t p = 0; p < S; ++p) {
          const double z0v = zr[p];
          const double dz = a + bz * (z0v - m0);
          dzs += dz * z0v;
          dzr[p] = static_cast<T>(dz * zs);
        }
      } else {  // the float conv's gradient alone: d(z0_i) = zs d(z_i), in T
        // m0 as hi + lo in T: z0 - hi is exact near the mean, so the difference keeps T's precision
        const T ca = static_cast<T>(a * zs), cb = static_cast<T>(bz * zs), m0h = static_cast<T>(m0),
                m0l = static_cast<T>(m0 - static_cast<double>(m0h));
#pragma omp simd
        for (int64_t p = 0; p < S; ++p) dzr[p] = ca + cb * ((zr[p] - m0h) - m0l);
      }
    }
    if (d.dzs) d.dzs[c] = static_cast<T>(dzs);
  }
}

// Channels-last y and z0 ([M, C] rows, M = N*H*W) with a per-channel bias: the same formulas as
// forward_kernel / backward_kernel (PerPos false), the per-channel sums over a fixed split of the
// rows (core/cpu/channel_rows.h: deterministic), every loop vectorised over the channels.
template <typename T>
void forward_nhwc(const Geometry& g, const Ptrs<T>& in, double eps, T* __restrict out, Saved& sv, std::vector<double>& var) {
  const int64_t M = g.N * g.S, C = g.C;
  const double Md = static_cast<double>(M);
  std::vector<double> m(C), sq(C);
  cpu::reduce_rows<1>(M, C, [&](int64_t r0, int64_t r1, double* acc) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* zr = in.z0 + r * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) acc[c] += zr[c];
    }
  }, m.data());
  for (int64_t c = 0; c < C; ++c) m[c] /= Md;
  const double* pm = m.data();
  cpu::reduce_rows<1>(M, C, [&](int64_t r0, int64_t r1, double* acc) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* zr = in.z0 + r * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        const double d = zr[c] - pm[c];
        acc[c] += d * d;
      }
    }
  }, sq.data());
  std::vector<T> k(C), shift(C);
  for (int64_t c = 0; c < C; ++c) {
    const double zs = in.zs ? static_cast<double>(in.zs[c]) : 1.0, b0 = static_cast<double>(in.bm[c]);
    const double mu = zs * m[c] + b0, v = zs * zs * sq[c] / Md;
    const double sb = std::sqrt(v + eps), ga = static_cast<double>(in.gamma[c]);
    k[c] = static_cast<T>(static_cast<double>(in.sr[c]) / sb);
    shift[c] = static_cast<T>(static_cast<double>(in.beta[c]) + ga * (b0 - mu) / sb);
    sv.mu[c] = mu;
    sv.sb[c] = sb;
    sv.m0[c] = m[c];
    var[c] = v;
  }
  const T inf = std::numeric_limits<T>::infinity();
  cpu::affine_rows(M, C, in.y, k.data(), shift.data(), -inf, inf, out);  // out = y k + shift
}

template <typename T>
void backward_nhwc(const Geometry& g, const T* __restrict gout, const Ptrs<T>& in, const Saved& sv, const Grads<T>& d) {
  const int64_t M = g.N * g.S, C = g.C;
  const double Md = static_cast<double>(M);
  std::vector<double> sums(2 * C);  // G = sum g, A = sum g * y
  cpu::reduce_rows<2>(M, C, [&](int64_t r0, int64_t r1, double* acc) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* gr = gout + r * C;
      const T* yr = in.y + r * C;
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
    const double dsb = -(s_r * A + ga * (GB - mu * G)) / (sb * sb);
    const double dmu = -ga * G / sb;
    if (d.dbm) d.dbm[c] = static_cast<T>(ga / sb * G + dmu);
    a[c] = dmu / Md;
    bz[c] = dsb / (sb * Md) * zs;
    zsv[c] = zs;
    m0[c] = sv.m0[c];
    k[c] = static_cast<T>(s_r / sb);
    ca[c] = static_cast<T>(a[c] * zs);
    cb[c] = static_cast<T>(bz[c] * zs);
    m0h[c] = static_cast<T>(m0[c]);
    m0l[c] = static_cast<T>(m0[c] - static_cast<double>(m0h[c]));
  }
  T* __restrict dy = d.dy;
  T* __restrict dz0 = d.dz0;
  const T* pk = k.data();
  if (d.dzs) {  // d(z0) in double, with sum d(z) z0 per channel
    std::vector<double> dzs(C);
    const double *pa = a.data(), *pb = bz.data(), *pz = zsv.data(), *p0 = m0.data();
    cpu::reduce_rows<1>(M, C, [&](int64_t r0, int64_t r1, double* acc) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* gr = gout + r * C;
        const T* zr = in.z0 + r * C;
        if (dy) {
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) dy[r * C + c] = gr[c] * pk[c];
        }
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          const double z0v = zr[c];
          const double dz = pa[c] + pb[c] * (z0v - p0[c]);
          acc[c] += dz * z0v;
          dz0[r * C + c] = static_cast<T>(dz * pz[c]);
        }
      }
    }, dzs.data());
    for (int64_t c = 0; c < C; ++c) d.dzs[c] = static_cast<T>(dzs[c]);
    return;
  }
  const T *pca = ca.data(), *pcb = cb.data(), *ph = m0h.data(), *pl = m0l.data();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < M; ++r) {
    const T* gr = gout + r * C;
    const T* zr = in.z0 + r * C;
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

Tensor folded_bn_train(const FoldedBnArgs& a) {
  if (a.y.device().is_cuda()) return folded_bn_train_reference(a);
  PFQ_PROFILE("folded_bn_train");
  const Geometry g = check_args(a);
  const bool has_zs = a.zscale.defined();
  // Detached operands, kept by the backward closure: contiguous, or y and z0 channels-last as
  // they come from the convolutions (core/layout.h) when the bias is per channel.
  const bool nhwc = !g.per_position && is_strictly_channels_last(a.y) && is_strictly_channels_last(a.z0);
  Tensor yc = nhwc ? a.y.detach() : a.y.detach().contiguous(), zc = nhwc ? a.z0.detach() : a.z0.detach().contiguous();
  Tensor bc = a.bmap.detach().contiguous();
  Tensor zsc = has_zs ? a.zscale.detach().contiguous() : Tensor();
  Tensor gc = a.gamma.detach().contiguous(), bec = a.beta.detach().contiguous(), sc = a.sigma_r.detach().contiguous();
  Tensor out = empty_like_layout(yc);
  auto sv = std::make_shared<Saved>();
  sv->mu.resize(g.C);
  sv->sb.resize(g.C);
  sv->m0.resize(g.C);
  std::vector<double> var(g.C);
  auto ptrs = [=]<typename T>(T*) {
    return Ptrs<T>{yc.data<T>(), zc.data<T>(), has_zs ? zsc.data<T>() : nullptr, bc.data<T>(), gc.data<T>(), bec.data<T>(),
                   sc.data<T>()};
  };
  PFQ_DISPATCH_FLOAT(a.y.dtype(), "folded_bn_train", [&] {
    const Ptrs<scalar_t> in = ptrs(static_cast<scalar_t*>(nullptr));
    if (nhwc) forward_nhwc<scalar_t>(g, in, a.eps, out.data<scalar_t>(), *sv, var);
    else (g.per_position ? forward_kernel<scalar_t, true> : forward_kernel<scalar_t, false>)(g, in, a.eps, out.data<scalar_t>(), *sv, var);
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
  });
  const bool ny = a.y.requires_grad(), nz = a.z0.requires_grad(), nzs = has_zs && a.zscale.requires_grad(),
             nb = a.bmap.requires_grad(), ng = a.gamma.requires_grad(), nbe = a.beta.requires_grad();
  Tensor zs_in = has_zs ? a.zscale : Tensor();
  return record("folded_bn_train", out, {a.y, a.z0, zs_in, a.bmap, a.gamma, a.beta}, [=](const Tensor& gout_in) {
    Tensor gout = same_layout_as(gout_in, yc);
    const DType dt = gout.dtype();
    auto maybe = [&](bool need, const Shape& s) { return need ? Tensor::empty(s, dt) : Tensor(); };
    Tensor dy = ny ? empty_like_layout(yc) : Tensor(), dz = nz || nzs || (nb && g.per_position) ? empty_like_layout(zc) : Tensor();
    Tensor dzs = maybe(nzs, {g.C}), dbm = maybe(nb, bc.shape()), dgm = maybe(ng, {g.C}), dbe = maybe(nbe, {g.C});
    PFQ_DISPATCH_FLOAT(dt, "folded_bn_train backward", [&] {
      auto p = [](Tensor& t) { return t.defined() ? t.data<scalar_t>() : nullptr; };
      const Grads<scalar_t> d{p(dy), p(dz), p(dzs), p(dbm), p(dgm), p(dbe)};
      const Ptrs<scalar_t> in = ptrs(static_cast<scalar_t*>(nullptr));
      if (nhwc) backward_nhwc<scalar_t>(g, gout.data<scalar_t>(), in, *sv, d);
      else (g.per_position ? backward_kernel<scalar_t, true> : backward_kernel<scalar_t, false>)(g, gout.data<scalar_t>(), in, *sv, d);
    });
    return std::vector<Tensor>{dy, nz ? dz : Tensor(), dzs, dbm, dgm, dbe};
  });
}

}  // namespace pfq::quant
