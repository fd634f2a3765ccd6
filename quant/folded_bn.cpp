// folded_bn.cpp — folded_bn_train (quant/folded_bn.h): argument checks, the composed references,
// the tail's range for the batch, and the op that runs the fused CPU kernels
// (quant/folded_bn_kernels.h) and records their backward.
#include "quant/folded_bn.h"

#include <cmath>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "core/autograd.h"
#include "core/dist/sync_stats.h"
#include "core/layout.h"
#include "core/ops.h"
#include "core/ops/op_util.h"
#include "core/profiler.h"
#include "quant/folded_bn_kernels.h"

namespace pfq::quant {

namespace {

fbn::Geometry check_args(const FoldedBnArgs& a) {
  const char* op = "folded_bn_train";
  PFQ_CHECK(a.y.defined() && a.y.dim() == 4, op, ": y must be [N, C, H, W], got ", a.y.describe());
  PFQ_CHECK(a.z0.defined() && a.z0.shape() == a.y.shape(), op, ": z0 ", a.z0.describe(), " and y ", a.y.describe(),
            " differ in shape");
  fbn::Geometry g{a.y.size(0), a.y.size(1), a.y.size(2) * a.y.size(3), false};
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

}  // namespace

Tensor folded_bn_train_reference(const FoldedBnArgs& a) {
  const fbn::Geometry g = check_args(a);
  const Shape cs{g.C, 1, 1};
  Tensor z = add(a.zscale.defined() ? mul(a.z0, reshape(a.zscale, cs)) : a.z0, a.bmap);
  double n = static_cast<double>(g.N * g.S);  // values per channel in the batch (all ranks' with sync_stats)
  Tensor mu_b, var_b;                          // [C]; the variance biased (normalisation)
  if (a.sync_stats) {
    dist::GlobalMoments g_all = dist::global_batch_moments(z, "folded_bn_train");
    mu_b = g_all.mean;
    var_b = g_all.var;
    n = g_all.count;
  } else {
    mu_b = mean(z, {0, 2, 3});
    var_b = var(z, {0, 2, 3}, false);
  }
  Tensor sigma_b = sqrt(add(var_b, a.eps));
  if (a.running_mean.defined()) {
    NoGradGuard ng;
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
fbn::TailSpec resolve_tail(const FoldedBnTail& tail, const fbn::Saved& sv, const std::vector<T>& ymin,
                           const std::vector<T>& ymax) {
  fbn::TailSpec t;
  const double inf = std::numeric_limits<double>::infinity();
  t.on = true;
  t.cap = tail.act == BnAct::ReLU6 ? 6.0 : inf;
  t.clo = -inf;
  t.chi = inf;
  if (!tail.range) return t;
  const fbn::Tail<T> act(t);
  // act(y k + shift) is non-decreasing in y (k = sigma_r / sb > 0), so its extremes over a
  // channel are at y's; NaNs are skipped as observe_range skips them
  T lo = std::numeric_limits<T>::infinity(), hi = -lo;
  for (size_t c = 0; c < ymin.size(); ++c) {
    if (!(ymin[c] <= ymax[c])) continue;  // a channel of NaNs
    const T k = static_cast<T>(sv.k[c]), sh = static_cast<T>(sv.shift[c]);
    const T l = act.activate(fbn::affine(ymin[c], k, sh)), h = act.activate(fbn::affine(ymax[c], k, sh));
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
  // CUDA, and the statistics of several ranks' batches: the composed formula
  if (a.y.device().is_cuda() || a.sync_stats) return has_tail ? folded_bn_train_tail_reference(a, tail) : folded_bn_train_reference(a);
  const fbn::Geometry g = check_args(a);
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
  auto sv = std::make_shared<fbn::Saved>();
  for (auto* v : {&sv->mu, &sv->sb, &sv->m0, &sv->k, &sv->shift}) v->resize(g.C);
  std::vector<double> var(g.C);
  auto ptrs = [=]<typename T>(T*) {
    return fbn::Ptrs<T>{yc.data<T>(), zc.data<T>(), has_zs ? zsc.data<T>() : nullptr, bc.data<T>(), gc.data<T>(), bec.data<T>(),
                   sc.data<T>(), same};
  };
  fbn::TailSpec ts;
  PFQ_DISPATCH_FLOAT(a.y.dtype(), "folded_bn_train", [&] {
    const fbn::Ptrs<scalar_t> in = ptrs(static_cast<scalar_t*>(nullptr));
    std::vector<scalar_t> ymin(has_tail ? g.C : 0), ymax(has_tail ? g.C : 0);
    scalar_t* lo = has_tail ? ymin.data() : nullptr;
    scalar_t* hi = has_tail ? ymax.data() : nullptr;
    if (nhwc) fbn::stats_nhwc<scalar_t>(g, in, a.eps, *sv, var, lo, hi);
    else if (g.per_position) fbn::stats_nchw<scalar_t, true>(g, in, a.eps, *sv, var, lo, hi);
    else fbn::stats_nchw<scalar_t, false>(g, in, a.eps, *sv, var, lo, hi);
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
    const fbn::Tail<scalar_t> t(ts);
    if (nhwc) fbn::output_nhwc<scalar_t>(g, in, *sv, t, out.data<scalar_t>());
    else if (g.per_position) fbn::output_nchw<scalar_t, true>(g, in, *sv, t, out.data<scalar_t>());
    else fbn::output_nchw<scalar_t, false>(g, in, *sv, t, out.data<scalar_t>());
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
      const fbn::Grads<scalar_t> d{p(dy), p(dz), p(dzs), p(dbm), p(dgm), p(dbe), zpass};
      const fbn::Ptrs<scalar_t> in = ptrs(static_cast<scalar_t*>(nullptr));
      const fbn::Tail<scalar_t> t(ts);
      if (nhwc) fbn::backward_nhwc<scalar_t>(g, gout.data<scalar_t>(), in, *sv, t, d);
      else if (g.per_position) fbn::backward_nchw<scalar_t, true>(g, gout.data<scalar_t>(), in, *sv, t, d);
      else fbn::backward_nchw<scalar_t, false>(g, gout.data<scalar_t>(), in, *sv, t, d);
    });
    return std::vector<Tensor>{ny ? dy : Tensor(), nz ? dz : Tensor(), dzs, dbm, dgm, dbe};
  });
}

}  // namespace pfq::quant
