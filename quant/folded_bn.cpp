// folded_bn.cpp — folded_bn_train (quant/folded_bn.h): argument checks, the fused CPU forward and
// backward kernels (one pass over the channel for the statistics, one for the output; the
// backward needs three per-channel sums and one elementwise pass), and the composed reference.
#include "quant/folded_bn.h"

#include <cmath>
#include <memory>
#include <vector>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/ops/op_util.h"
#include "core/profiler.h"

namespace pfq::quant {

namespace {

struct Geometry {
  int64_t N = 0, C = 0, S = 0;  // S = H * W
  bool per_position = false;    // bmap is [C, H, W] (a correction map), else [C, 1, 1]
};

Geometry check_args(const Tensor& y, const Tensor& z0, const Tensor& bmap, const Tensor& gamma, const Tensor& beta,
                    const Tensor& sigma_r, const Tensor& running_mean, const Tensor& running_var, double eps) {
  const char* op = "folded_bn_train";
  PFQ_CHECK(y.dim() == 4, op, ": y must be [N, C, H, W], got ", y.describe());
  PFQ_CHECK(z0.shape() == y.shape(), op, ": z0 ", z0.describe(), " and y ", y.describe(), " differ in shape");
  Geometry g{y.size(0), y.size(1), y.size(2) * y.size(3), false};
  PFQ_CHECK(g.N * g.S > 1, op, ": batch statistics need more than one value per channel, got ", y.describe());
  PFQ_CHECK(bmap.shape() == Shape({g.C, 1, 1}) || bmap.shape() == Shape({g.C, y.size(2), y.size(3)}), op, ": bmap ",
            bmap.describe(), " must be [C, 1, 1] or [C, H, W] for y ", y.describe());
  g.per_position = bmap.shape() != Shape({g.C, 1, 1});
  for (const Tensor* t : {&z0, &bmap, &gamma, &beta, &sigma_r}) check_same_device_dtype(y, *t, op);
  for (const Tensor* t : {&gamma, &beta, &sigma_r})
    PFQ_CHECK(t->shape() == Shape{g.C}, op, ": per-channel tensor ", t->describe(), " must be [", g.C, "]");
  PFQ_CHECK(running_mean.defined() == running_var.defined(), op, ": give both running statistics or neither");
  for (const Tensor* t : {&running_mean, &running_var})
    if (t->defined()) {
      check_same_device_dtype(y, *t, op);
      PFQ_CHECK(t->shape() == Shape{g.C} && t->is_contiguous(), op, ": running statistic ", t->describe(),
                " must be a contiguous [", g.C, "]");
    }
  PFQ_CHECK(eps > 0, op, ": eps must be positive, got ", eps);
  return g;
}

// Per-channel results of the forward pass the backward needs.
struct Saved {
  std::vector<double> mu, sb;  // batch mean and sqrt(var + eps) of z
};

// The bias map enters the statistics through z = z0 + bmap. With a per-channel bias (PerPos
// false) it only shifts the mean, so the sums run over z0 alone; with a correction map it is
// added per position. Reductions are `omp simd` in double (fixed order: deterministic), two-pass
// like BatchNorm2d's kernels so tiny variances survive.
template <typename T, bool PerPos>
void forward_kernel(const Geometry& g, const T* y, const T* z0, const T* bm, const T* gamma, const T* beta, const T* sr,
                    double eps, T* out, Saved& sv, std::vector<double>& var) {
  const int64_t N = g.N, C = g.C, S = g.S;
  const double M = static_cast<double>(N * S);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < C; ++c) {
    const T* b = bm + (PerPos ? c * S : c);
    double sum = 0;
    for (int64_t n = 0; n < N; ++n) {
      const T* zr = z0 + (n * C + c) * S;
      if constexpr (PerPos) {
#pragma omp simd reduction(+ : sum)
        for (int64_t p = 0; p < S; ++p) sum += static_cast<double>(zr[p]) + static_cast<double>(b[p]);
      } else {
#pragma omp simd reduction(+ : sum)
        for (int64_t p = 0; p < S; ++p) sum += zr[p];
      }
    }
    const double m0 = sum / M;  // mean of z (PerPos) or of z0
    double sq = 0;
    for (int64_t n = 0; n < N; ++n) {
      const T* zr = z0 + (n * C + c) * S;
      if constexpr (PerPos) {
#pragma omp simd reduction(+ : sq)
        for (int64_t p = 0; p < S; ++p) {
          const double d = static_cast<double>(zr[p]) + static_cast<double>(b[p]) - m0;
          sq += d * d;
        }
      } else {
#pragma omp simd reduction(+ : sq)
        for (int64_t p = 0; p < S; ++p) {
          const double d = zr[p] - m0;
          sq += d * d;
        }
      }
    }
    const double mu = PerPos ? m0 : m0 + static_cast<double>(b[0]);
    const double v = sq / M, sb = std::sqrt(v + eps), ga = static_cast<double>(gamma[c]);
    const T k = static_cast<T>(static_cast<double>(sr[c]) / sb);
    const T gs = static_cast<T>(ga / sb);
    // out = y k + gamma (bmap - mu) / sb + beta
    const T shift = static_cast<T>(static_cast<double>(beta[c]) + ga * ((PerPos ? 0.0 : static_cast<double>(b[0])) - mu) / sb);
    for (int64_t n = 0; n < N; ++n) {
      const int64_t off = (n * C + c) * S;
      if constexpr (PerPos) {
#pragma omp simd
        for (int64_t p = 0; p < S; ++p) out[off + p] = y[off + p] * k + gs * b[p] + shift;
      } else {
#pragma omp simd
        for (int64_t p = 0; p < S; ++p) out[off + p] = y[off + p] * k + shift;
      }
    }
    sv.mu[c] = mu;
    sv.sb[c] = sb;
    var[c] = v;
  }
}

// Gradients. d(z) goes to dz0 and, summed over the batch, to dbmap; outputs not needed are null.
template <typename T, bool PerPos>
void backward_kernel(const Geometry& g, const T* gout, const T* y, const T* z0, const T* bm, const T* gamma, const T* sr,
                     const Saved& sv, T* dy, T* dz0, T* dbm, T* dgamma, T* dbeta) {
  const int64_t N = g.N, C = g.C, S = g.S;
  const double M = static_cast<double>(N * S);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < C; ++c) {
    const T* b = bm + (PerPos ? c * S : c);
    const double mu = sv.mu[c], sb = sv.sb[c], ga = static_cast<double>(gamma[c]), s_r = static_cast<double>(sr[c]);
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
    if (!PerPos) GB = static_cast<double>(b[0]) * G;
    if (dbeta) dbeta[c] = static_cast<T>(G);
    if (dgamma) dgamma[c] = static_cast<T>((GB - mu * G) / sb);
    // d/d(sb) of both terms, then through the biased variance to z; d/d(mu) of the shift term.
    const double dsb = -(s_r * A + ga * (GB - mu * G)) / (sb * sb);
    const double dmu = -ga * G / sb;
    const double a = dmu / M, bc = dsb / (sb * M);  // d(z_i) = a + bc (z_i - mu)
    const double direct_b = ga / sb;                // d out / d bmap at the same position, per unit of g
    const T k = static_cast<T>(s_r / sb);
    const double zshift = PerPos ? mu : mu - static_cast<double>(b[0]);  // z_i - mu = z0_i (+ b_p) - zshift
    if (dbm) {
      if constexpr (PerPos) {
        for (int64_t p = 0; p < S; ++p) dbm[c * S + p] = T(0);
      } else {
        dbm[c] = static_cast<T>(direct_b * G + dmu);  // + sum d(z) = dmu: zero up to rounding
      }
    }
    for (int64_t n = 0; n < N; ++n) {
      const int64_t off = (n * C + c) * S;
      if (dy) {
#pragma omp simd
        for (int64_t p = 0; p < S; ++p) dy[off + p] = gout[off + p] * k;
      }
      if (!dz0) continue;  // allocated whenever dz0 or a correction map's gradient is wanted
      if constexpr (PerPos) {
#pragma omp simd
        for (int64_t p = 0; p < S; ++p) {
          const double dz = a + bc * (static_cast<double>(z0[off + p]) + static_cast<double>(b[p]) - zshift);
          dz0[off + p] = static_cast<T>(dz);
          if (dbm) dbm[c * S + p] += static_cast<T>(direct_b * static_cast<double>(gout[off + p]) + dz);
        }
      } else {
#pragma omp simd
        for (int64_t p = 0; p < S; ++p) dz0[off + p] = static_cast<T>(a + bc * (static_cast<double>(z0[off + p]) - zshift));
      }
    }
  }
}

}  // namespace

Tensor folded_bn_train_reference(const Tensor& y, const Tensor& z0, const Tensor& bmap, const Tensor& gamma,
                                 const Tensor& beta, const Tensor& sigma_r, const Tensor& running_mean,
                                 const Tensor& running_var, double momentum, double eps) {
  const Geometry g = check_args(y, z0, bmap, gamma, beta, sigma_r, running_mean, running_var, eps);
  const Shape cs{g.C, 1, 1};
  Tensor z = add(z0, bmap);
  Tensor mu_b = mean(z, {0, 2, 3});         // [C]
  Tensor var_b = var(z, {0, 2, 3}, false);  // [C], biased (normalisation)
  Tensor sigma_b = sqrt(add(var_b, eps));
  if (running_mean.defined()) {
    NoGradGuard ng;
    const double n = static_cast<double>(g.N * g.S);
    Tensor unbiased = mul(var_b.detach(), n / (n - 1));
    Tensor rm = running_mean, rv = running_var;
    rm.copy_(add(mul(running_mean, 1 - momentum), mul(mu_b.detach(), momentum)));
    rv.copy_(add(mul(running_var, 1 - momentum), mul(unbiased, momentum)));
  }
  Tensor out = mul(y, reshape(div(sigma_r.detach(), sigma_b), cs));
  Tensor shift = mul(reshape(div(gamma, sigma_b), cs), sub(bmap, reshape(mu_b, cs)));
  return add(out, add(shift, reshape(beta, cs)));
}

Tensor folded_bn_train(const Tensor& y, const Tensor& z0, const Tensor& bmap, const Tensor& gamma, const Tensor& beta,
                       const Tensor& sigma_r, const Tensor& running_mean, const Tensor& running_var, double momentum,
                       double eps) {
  if (y.device().is_cuda())
    return folded_bn_train_reference(y, z0, bmap, gamma, beta, sigma_r, running_mean, running_var, momentum, eps);
  PFQ_PROFILE("folded_bn_train");
  const Geometry g = check_args(y, z0, bmap, gamma, beta, sigma_r, running_mean, running_var, eps);
  Tensor yc = y.detach().contiguous(), zc = z0.detach().contiguous(), bc = bmap.detach().contiguous();
  Tensor gc = gamma.detach().contiguous(), bec = beta.detach().contiguous(), sc = sigma_r.detach().contiguous();
  Tensor out = Tensor::empty(y.shape(), y.dtype());
  auto sv = std::make_shared<Saved>();
  sv->mu.resize(g.C);
  sv->sb.resize(g.C);
  std::vector<double> var(g.C);
  PFQ_DISPATCH_FLOAT(y.dtype(), "folded_bn_train", [&] {
    auto fwd = g.per_position ? forward_kernel<scalar_t, true> : forward_kernel<scalar_t, false>;
    fwd(g, yc.data<scalar_t>(), zc.data<scalar_t>(), bc.data<scalar_t>(), gc.data<scalar_t>(), bec.data<scalar_t>(),
        sc.data<scalar_t>(), eps, out.data<scalar_t>(), *sv, var);
    if (running_mean.defined()) {
      scalar_t* rm = running_mean.data<scalar_t>();
      scalar_t* rv = running_var.data<scalar_t>();
      const double M = static_cast<double>(g.N * g.S), unbias = M / (M - 1);
      for (int64_t c = 0; c < g.C; ++c) {
        rm[c] = static_cast<scalar_t>((1 - momentum) * rm[c] + momentum * sv->mu[c]);
        rv[c] = static_cast<scalar_t>((1 - momentum) * rv[c] + momentum * var[c] * unbias);
      }
    }
  });
  const bool ny = y.requires_grad(), nz = z0.requires_grad(), nb = bmap.requires_grad(), ng = gamma.requires_grad(),
             nbe = beta.requires_grad();
  return record("folded_bn_train", out, {y, z0, bmap, gamma, beta}, [=](const Tensor& gout_in) {
    Tensor gout = gout_in.contiguous();
    const DType dt = gout.dtype();
    Tensor dy = ny ? Tensor::empty(yc.shape(), dt) : Tensor();
    // d(z): dz0's value, and a correction map's gradient sums it (the kernel writes dbmap there)
    Tensor dz = nz || (nb && g.per_position) ? Tensor::empty(zc.shape(), dt) : Tensor();
    Tensor dbm = nb ? Tensor::empty(bc.shape(), dt) : Tensor();
    Tensor dgm = ng ? Tensor::empty({g.C}, dt) : Tensor();
    Tensor dbe = nbe ? Tensor::empty({g.C}, dt) : Tensor();
    PFQ_DISPATCH_FLOAT(dt, "folded_bn_train backward", [&] {
      auto ptr = [](Tensor& t) { return t.defined() ? t.data<scalar_t>() : nullptr; };
      auto bwd = g.per_position ? backward_kernel<scalar_t, true> : backward_kernel<scalar_t, false>;
      bwd(g, gout.data<scalar_t>(), yc.data<scalar_t>(), zc.data<scalar_t>(), bc.data<scalar_t>(), gc.data<scalar_t>(),
          sc.data<scalar_t>(), *sv, ptr(dy), ptr(dz), ptr(dbm), ptr(dgm), ptr(dbe));
    });
    return std::vector<Tensor>{dy, nz ? dz : Tensor(), dbm, dgm, dbe};
  });
}

}  // namespace pfq::quant
