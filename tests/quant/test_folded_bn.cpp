// test_folded_bn.cpp — the fused folded-BN training op (quant/folded_bn.h) against its
// composition of generic ops: output, every gradient and the running-statistics update, for a
// per-channel bias and a [C, H, W] correction map, with and without a statistics scale (bn_stats
// quantized: z0 = y, zscale = 1 / s), float32 (the fused kernels accumulate in double, the
// reference in float, hence the tolerance) and float64, y and z0 plain or channels-last; the fused
// activation + fake-quantization tail against relu / relu6 and the quantizer module's ops.
#include <doctest/doctest.h>

#include "core/layout.h"
#include "quant/folded_bn.h"
#include "quant/quantizer.h"
#include "tests/gradcheck.h"

using namespace pfq;
using namespace pfq::quant;

namespace {

struct Args {
  Tensor y, z0, zscale, bmap, gamma, beta, sigma_r, rm, rv;
  bool same = false;  // z0 is y (bn_stats quantized)
  FoldedBnArgs op() const {
    return {.y = y, .z0 = same ? y : z0, .zscale = zscale, .bmap = bmap, .gamma = gamma, .beta = beta, .sigma_r = sigma_r,
            .running_mean = rm, .running_var = rv, .momentum = 0.1, .eps = 1e-5};
  }
};

Args make_args(DType dt, bool per_position, bool quantized, uint64_t seed) {
  Generator g(seed);
  const int64_t N = 3, C = 5, H = 4, W = 3;
  Args a;
  a.z0 = Tensor::randn({N, C, H, W}, g, 0.4, 1.3).to(dt).set_requires_grad(true);
  // y: the quantized conv is close to s * z0
  a.y = add(mul(a.z0.detach(), 0.7), Tensor::randn({N, C, H, W}, g, 0.0, 0.05).to(dt)).set_requires_grad(true);
  a.bmap = (per_position ? Tensor::randn({C, H, W}, g, 0.0, 0.5) : Tensor::randn({C, 1, 1}, g, 0.0, 0.5))
               .to(dt)
               .set_requires_grad(true);
  a.gamma = Tensor::randn({C}, g, 1.0, 0.5).to(dt).set_requires_grad(true);
  a.beta = Tensor::randn({C}, g, 0.0, 0.5).to(dt).set_requires_grad(true);
  a.sigma_r = Tensor::rand({C}, g, 0.5, 2.0).to(dt);
  a.rm = Tensor::randn({C}, g, 0.0, 0.3).to(dt);
  a.rv = Tensor::rand({C}, g, 0.5, 2.0).to(dt);
  if (quantized) {
    a.same = true;
    a.zscale = Tensor::from_vector<double>({1.4, -0.7, 2.0, 0.9, 1.1}, {C}).to(dt).set_requires_grad(true);
  }
  return a;
}

Args clone_leaves(const Args& a) {
  Args b = a;
  for (Tensor* t : {&b.y, &b.z0, &b.bmap, &b.gamma, &b.beta, &b.zscale})
    if (t->defined()) *t = t->detach().clone().set_requires_grad(true);
  b.rm = a.rm.clone();
  b.rv = a.rv.clone();
  return b;
}

// out (from a's leaves) against ref (from b's copies): the values, the running statistics and
// the gradients of sum(out * w) for a seeded random w.
void check_matches_reference(const Args& a, const Args& b, const Tensor& out, const Tensor& ref, bool quantized, double tol,
                             uint64_t seed) {
  CHECK(test::max_abs_diff(out, ref) < tol);
  CHECK(test::max_abs_diff(a.rm, b.rm) < tol);
  CHECK(test::max_abs_diff(a.rv, b.rv) < tol);
  Generator g(seed);
  Tensor w = Tensor::randn(out.shape(), g).to(out.dtype());
  sum(mul(out, w)).backward();
  sum(mul(ref, w)).backward();
  const char* names[] = {"y", "z0", "bmap", "gamma", "beta", "zscale"};
  const Tensor* ta[] = {&a.y, &a.z0, &a.bmap, &a.gamma, &a.beta, &a.zscale};
  const Tensor* tb[] = {&b.y, &b.z0, &b.bmap, &b.gamma, &b.beta, &b.zscale};
  for (int i = 0; i < 6; ++i) {
    CAPTURE(names[i]);
    if ((i == 1 && quantized) || (i == 5 && !quantized)) continue;  // z0 is y / no zscale
    REQUIRE(ta[i]->grad().defined());
    CHECK(test::max_abs_diff(ta[i]->grad(), tb[i]->grad()) < tol * 10);
  }
}

}  // namespace

TEST_CASE("folded_bn_train: fused CPU kernels equal the composed reference (values, gradients, running stats)") {
  for (DType dt : {DType::Float32, DType::Float64})
    for (bool per_position : {false, true})
      for (bool quantized : {false, true})
        for (bool channels_last : {false, true}) {  // y and z0 as the convolutions give them (core/layout.h)
          CAPTURE(dtype_name(dt));
          CAPTURE(per_position);
          CAPTURE(quantized);
          CAPTURE(channels_last);
          const double tol = dt == DType::Float32 ? 2e-5 : 1e-12;
          Args a = make_args(dt, per_position, quantized, 7), b = clone_leaves(a);
          FoldedBnArgs fa = a.op();
          if (channels_last) {
            fa.y = to_channels_last(a.y);
            fa.z0 = quantized ? fa.y : to_channels_last(a.z0);
          }
          Tensor out = folded_bn_train(fa);
          // the channels-last kernels (per-channel bias) keep the layout; a correction map goes NCHW
          CHECK(is_strictly_channels_last(out) == (channels_last && !per_position));
          Tensor ref = folded_bn_train_reference(b.op());
          check_matches_reference(a, b, out, ref, quantized, tol, 8);
          // a per-channel constant shift is normalised away: its gradient vanishes
          if (!per_position) CHECK(test::max_abs_diff(a.bmap.grad(), Tensor::zeros({5, 1, 1}, dt)) < tol * 10);
        }
}

TEST_CASE("folded_bn_train: sync_stats (--sync-bn) in a group of one is the reference formula, gradients and running stats included") {
  // Several ranks: tests/e2e/test_distributed_e2e.cpp compares 2 ranks with one process.
  for (DType dt : {DType::Float32, DType::Float64})
    for (bool quantized : {false, true}) {
      CAPTURE(dtype_name(dt));
      CAPTURE(quantized);
      const double tol = dt == DType::Float32 ? 2e-5 : 1e-12;
      Args a = make_args(dt, false, quantized, 11), b = clone_leaves(a);
      FoldedBnArgs fa = a.op();
      fa.sync_stats = true;
      Tensor out = folded_bn_train(fa);
      Tensor ref = folded_bn_train_reference(b.op());
      check_matches_reference(a, b, out, ref, quantized, tol, 12);
    }
}

TEST_CASE("folded_bn_train: bad arguments are refused with the shapes") {
  Args a = make_args(DType::Float32, false, false, 9);
  FoldedBnArgs bad = a.op();
  bad.bmap = Tensor::zeros({5, 2, 2});
  CHECK_THROWS_WITH_AS(folded_bn_train(bad), doctest::Contains("must be [C, 1, 1] or [C, H, W]"), Error);
  bad = a.op();
  bad.gamma = Tensor::ones({4});
  CHECK_THROWS_WITH_AS(folded_bn_train(bad), doctest::Contains("must be [5]"), Error);
  bad = a.op();
  bad.zscale = Tensor::ones({3});
  CHECK_THROWS_WITH_AS(folded_bn_train(bad), doctest::Contains("must be [5]"), Error);
  bad = a.op();
  bad.running_var = Tensor();
  CHECK_THROWS_WITH_AS(folded_bn_train(bad), doctest::Contains("both running statistics"), Error);
}

TEST_CASE("folded_bn_train: float32 gradients of a near-constant channel match a float64 computation") {
  // The channels PfQ is about: z0 = 50 + 1e-3 noise, variance ~1e-6 against eps 1e-5. Expanding
  // d(z_i) = a + bc (z_i - mu) into ca + cb z_i would cancel in float32; the kernel must not.
  Args a = make_args(DType::Float32, false, false, 10);
  {
    Generator g(11);
    std::vector<float> z = a.z0.detach().to_vector<float>();
    std::vector<float> noise = Tensor::randn({3, 1, 4, 3}, g, 0.0, 1e-3).to_vector<float>();
    for (int64_t n = 0; n < 3; ++n)
      for (int64_t p = 0; p < 12; ++p) z[(n * 5 + 0) * 12 + p] = 50.0f + noise[n * 12 + p];
    a.z0 = Tensor::from_vector(z, {3, 5, 4, 3}).set_requires_grad(true);
  }
  Args d;  // the same values in float64
  for (auto [dst, src] : {std::pair{&d.y, &a.y}, {&d.z0, &a.z0}, {&d.bmap, &a.bmap}, {&d.gamma, &a.gamma}, {&d.beta, &a.beta}})
    *dst = src->detach().to(DType::Float64).set_requires_grad(true);
  d.sigma_r = a.sigma_r.to(DType::Float64);
  Generator g(12);
  Tensor w = Tensor::randn(a.y.shape(), g);
  sum(mul(folded_bn_train(a.op()), w)).backward();
  sum(mul(folded_bn_train_reference(d.op()), w.to(DType::Float64))).backward();
  const Tensor ref = d.z0.grad();
  const double scale = max(abs(ref)).item();
  CHECK(test::max_abs_diff(a.z0.grad(), ref) < 1e-4 * scale);
  CHECK(test::max_abs_diff(a.y.grad(), d.y.grad()) < 1e-4 * max(abs(d.y.grad())).item());
}

namespace {

// The tail's quantizer: ema (calib 0: quantizing from the first batch; calib 5: observing only)
// or minmax, unsigned 4-bit per tensor, as prepare_qat builds activation quantizers.
std::unique_ptr<Quantizer> tail_quantizer(const std::string& kind, DType dt) {
  QuantSpec s;
  s.bits = 4;
  s.symmetric = false;
  s.dtype = dt;
  s.calib_batches = kind == "ema-calibrating" ? 5 : 0;
  return make_quantizer(kind == "minmax" ? "minmax" : "ema", s);
}

FoldedBnTail tail_of(BnAct act, Quantizer* q) {
  FoldedBnTail t;
  t.act = act;
  if (q) {
    t.range = [q](const Tensor& lo, const Tensor& hi) { return q->range_from_batch(lo, hi, true); };
    t.qopt = {q->spec().bits, q->spec().symmetric, false};
  }
  return t;
}

}  // namespace

TEST_CASE("folded_bn_train tail: the fused activation + fake quantization equals relu / relu6 then the quantizer") {
  for (DType dt : {DType::Float32, DType::Float64})
    for (bool quantized : {false, true})
      for (bool channels_last : {false, true})
        for (BnAct act : {BnAct::ReLU, BnAct::ReLU6})
          for (std::string kind : {"none", "ema", "ema-calibrating", "minmax"}) {
            const std::string dtn = dtype_name(dt);
            CAPTURE(dtn);
            CAPTURE(quantized);
            CAPTURE(channels_last);
            CAPTURE(static_cast<int>(act));
            CAPTURE(kind);
            Args a = make_args(dt, false, quantized, 21), b = clone_leaves(a);
            for (Args* x : {&a, &b}) {  // outputs spread over [-3, 9]: both clips are hit
              NoGradGuard ng;
              x->gamma.mul_(3.0);
              x->beta.add_(Tensor::full(x->beta.shape(), 3.0, x->beta.dtype()));
            }
            std::unique_ptr<Quantizer> qa, qb;
            if (kind != "none") {
              qa = tail_quantizer(kind, dt);
              qb = tail_quantizer(kind, dt);
            }
            FoldedBnArgs fa = a.op(), fb = b.op();  // both in one layout: the same statistics kernels
            if (channels_last)
              for (FoldedBnArgs* f : {&fa, &fb}) {
                f->y = to_channels_last(f->y);
                f->z0 = quantized ? f->y : to_channels_last(f->z0);
              }
            Tensor out = folded_bn_train(fa, tail_of(act, qa.get()));
            CHECK(is_strictly_channels_last(out) == channels_last);
            Tensor ref = folded_bn_train_tail_reference(fb, tail_of(act, qb.get()));
            // the same values: the batch range from the extremes of y is the range of the output
            CHECK(test::max_abs_diff(out, ref) == 0);
            if (qa) {
              for (size_t i = 0; i < qa->buffers().size(); ++i)
                CHECK(test::max_abs_diff(qa->buffers()[i].second, qb->buffers()[i].second) == 0);
              REQUIRE(qa->last_scale().defined() == qb->last_scale().defined());
              if (qa->last_scale().defined()) CHECK(test::max_abs_diff(qa->last_scale(), qb->last_scale()) == 0);
            }
            CHECK(test::max_abs_diff(a.rv, b.rv) == 0);
            Generator g(22);
            Tensor w = Tensor::randn(out.shape(), g).to(dt);
            sum(mul(out, w)).backward();
            sum(mul(ref, w)).backward();
            const double tol = dt == DType::Float32 ? 1e-5 : 1e-13;
            for (auto [ga, gb] : {std::pair{&a.y, &b.y}, {&a.gamma, &b.gamma}, {&a.beta, &b.beta}, {&a.bmap, &b.bmap}}) {
              REQUIRE(ga->grad().defined());
              CHECK(test::max_abs_diff(ga->grad(), gb->grad()) <= tol * std::max(1.0, max(abs(gb->grad())).item()));
            }
            if (!quantized) CHECK(test::max_abs_diff(a.z0.grad(), b.z0.grad()) <= tol * std::max(1.0, max(abs(b.z0.grad())).item()));
          }
}

TEST_CASE("folded_bn_train tail: a correction map or no activation runs the composition; bad tails are refused") {
  Args a = make_args(DType::Float32, true, false, 23), b = clone_leaves(a);
  auto qa = tail_quantizer("ema", DType::Float32), qb = tail_quantizer("ema", DType::Float32);
  Tensor out = folded_bn_train(a.op(), tail_of(BnAct::ReLU, qa.get()));
  CHECK(test::max_abs_diff(out, folded_bn_train_tail_reference(b.op(), tail_of(BnAct::ReLU, qb.get()))) == 0);
  Args c = make_args(DType::Float32, false, false, 24);
  auto qc = tail_quantizer("minmax", DType::Float32);
  const Tensor none = folded_bn_train(c.op(), tail_of(BnAct::None, qc.get()));
  CHECK(min(none).item() < 0);  // no activation: negative values kept (4-bit grid around 0)
  FoldedBnTail bad = tail_of(BnAct::ReLU, qc.get());
  bad.qopt.bits = 1;
  CHECK_THROWS_WITH_AS(folded_bn_train(c.op(), bad), doctest::Contains("2..8 bits"), Error);
  bad = tail_of(BnAct::ReLU, qc.get());
  bad.range = [](const Tensor&, const Tensor&) { return std::optional<std::pair<Tensor, Tensor>>({Tensor::zeros({2}), Tensor::ones({2})}); };
  CHECK_THROWS_WITH_AS(folded_bn_train(c.op(), bad), doctest::Contains("two [1] tensors"), Error);
  QuantSpec pc;
  pc.per_channel = true;
  pc.channels = 5;
  CHECK_THROWS_WITH_AS(make_quantizer("ema", pc)->range_from_batch(Tensor::zeros({1}), Tensor::ones({1}), true),
                       doctest::Contains("batch range"), Error);
}
