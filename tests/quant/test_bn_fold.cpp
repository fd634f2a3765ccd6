// test_bn_fold.cpp — quant/bn_fold.h: the folded conv reproduces Conv2d + BatchNorm2d (eval)
// within 1e-5, including a channel with running_var ~ 0 (1e-30), one with gamma = 0, convs
// without bias, depthwise convs and a PfQ output_correction map.
#include <doctest/doctest.h>

#include <cmath>

#include "quant/bn_fold.h"
#include "tests/quant/quant_test_util.h"

using namespace pfq;
using namespace pfq::quant;
using pfq::quant::test::max_rel_diff;

namespace {

void set_bn_stats(BatchNorm2d& bn, Generator& g) {
  const int64_t c = bn.num_features;
  bn.weight().copy_(Tensor::randn({c}, g, 1.0, 0.5));
  bn.bias().copy_(Tensor::randn({c}, g, 0.0, 0.5));
  bn.running_mean().copy_(Tensor::randn({c}, g, 0.0, 0.3));
  bn.running_var().copy_(Tensor::rand({c}, g, 0.2, 2.0));
  bn.running_var().data<float>()[0] = 1e-30f;  // dead channel: s = gamma / sqrt(eps)
  bn.weight().data<float>()[1] = 0.0f;         // gamma = 0: the channel outputs beta
}

void check_fold(int64_t in, int64_t out, int64_t groups, bool bias, bool correction) {
  Generator g(7);
  Conv2d conv(in, out, 3, Conv2dArgs{.stride = 1, .padding = 1, .groups = groups, .bias = bias}, g);
  BatchNorm2d bn(out);
  set_bn_stats(bn, g);
  if (correction) conv.set_output_correction(Tensor::randn({out, 5, 5}, g));
  conv.eval();
  bn.eval();
  Tensor x = Tensor::randn({2, in, 5, 5}, g);
  NoGradGuard ng;
  Tensor ref = bn.forward(conv.forward(x));
  auto folded = fold_bn(conv, bn);
  CHECK(folded->has_bias());
  CHECK(folded->has_output_correction() == correction);
  Tensor y = folded->forward(x);
  CHECK(max_rel_diff(y, ref) < 1e-5);
  // channel 1 (gamma = 0) outputs beta exactly
  const float beta1 = bn.bias().data<float>()[1];
  CHECK(y.contiguous().data<float>()[25] == doctest::Approx(beta1).epsilon(1e-6));
  // the inputs are untouched
  CHECK(!conv.weight().is_same(folded->weight()));
}

}  // namespace

TEST_CASE("fold_bn: dense conv with bias matches conv + BN eval (var ~ 0, gamma = 0)") { check_fold(3, 4, 1, true, false); }
TEST_CASE("fold_bn: conv without bias") { check_fold(3, 4, 1, false, false); }
TEST_CASE("fold_bn: depthwise conv") { check_fold(4, 4, 4, false, false); }
TEST_CASE("fold_bn: output_correction is scaled by s and kept") { check_fold(3, 4, 1, false, true); }

TEST_CASE("fold_bn: scale of a dead channel is gamma / sqrt(eps)") {
  Generator g(1);
  BatchNorm2d bn(4);
  set_bn_stats(bn, g);
  Tensor s = bn_fold_scale(bn);
  CHECK(s.data<float>()[0] == doctest::Approx(bn.weight().data<float>()[0] / std::sqrt(1e-5)).epsilon(1e-6));
  CHECK(s.data<float>()[1] == 0.0f);
}

TEST_CASE("fold_bn: mismatched channels are a clear error") {
  Generator g(1);
  Conv2d conv(3, 4, 3, {}, g);
  BatchNorm2d bn(5);
  CHECK_THROWS_WITH_AS(fold_bn(conv, bn), doctest::Contains("output channels"), Error);
}
