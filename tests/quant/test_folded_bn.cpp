// test_folded_bn.cpp — the fused folded-BN training op (quant/folded_bn.h) against its
// composition of generic ops: output, every gradient and the running-statistics update, for a
// per-channel bias and a [C, H, W] correction map, with and without a statistics scale (bn_stats
// quantized: z0 = y, zscale = 1 / s), float32 (the fused kernels accumulate in double, the
// reference in float, hence the tolerance) and float64, y and z0 plain or channels-last.
#include <doctest/doctest.h>

#include "core/layout.h"
#include "quant/folded_bn.h"
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
          CHECK(test::max_abs_diff(out, ref) < tol);
          CHECK(test::max_abs_diff(a.rm, b.rm) < tol);
          CHECK(test::max_abs_diff(a.rv, b.rv) < tol);
          Generator g(8);
          Tensor w = Tensor::randn(out.shape(), g).to(dt);
          sum(mul(out, w)).backward();
          sum(mul(ref, w)).backward();
          const char* names[] = {"y", "z0", "bmap", "gamma", "beta", "zscale"};
          Tensor* ta[] = {&a.y, &a.z0, &a.bmap, &a.gamma, &a.beta, &a.zscale};
          Tensor* tb[] = {&b.y, &b.z0, &b.bmap, &b.gamma, &b.beta, &b.zscale};
          for (int i = 0; i < 6; ++i) {
            CAPTURE(names[i]);
            if ((i == 1 && quantized) || (i == 5 && !quantized)) continue;  // z0 is y / no zscale
            REQUIRE(ta[i]->grad().defined());
            CHECK(test::max_abs_diff(ta[i]->grad(), tb[i]->grad()) < tol * 10);
          }
          // a per-channel constant shift is normalised away: its gradient vanishes
          if (!per_position) CHECK(test::max_abs_diff(a.bmap.grad(), Tensor::zeros({5, 1, 1}, dt)) < tol * 10);
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
