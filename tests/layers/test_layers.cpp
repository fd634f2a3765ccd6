// test_layers.cpp — individual layers: PyTorch default initialisation bounds and seeding,
// Conv2d fields/consistency checks, BatchNorm2d train vs eval statistics and buffers, Dropout
// seeding, shape propagation of every layer against its forward, MAC formulas.
#include <doctest/doctest.h>

#include <cmath>

#include "core/ops.h"
#include "layers/layers.h"
#include "tests/gradcheck.h"

using namespace pfq;

namespace {
double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.detach().to(DType::Float64).to_vector<double>()) m = std::max(m, std::abs(v));
  return m;
}
}  // namespace

TEST_CASE("layers: conv/linear default init is U(-1/sqrt(fan_in), 1/sqrt(fan_in)) and seeded") {
  Generator g1(7), g2(7), g3(8);
  Conv2d a(6, 8, 3, {.groups = 2}, g1), b(6, 8, 3, {.groups = 2}, g2), c(6, 8, 3, {.groups = 2}, g3);
  CHECK(a.weight().shape() == Shape{8, 3, 3, 3});
  const double bound = 1.0 / std::sqrt(3.0 * 9);  // fan_in = IC/groups * KH * KW
  CHECK(max_abs(a.weight()) <= bound);
  CHECK(max_abs(a.weight()) > 0.9 * bound);  // actually spread over the range
  CHECK(max_abs(a.bias()) <= bound);
  CHECK(a.weight().to_vector<float>() == b.weight().to_vector<float>());
  CHECK(a.weight().to_vector<float>() != c.weight().to_vector<float>());
  Linear l(50, 4, true, g1);
  CHECK(max_abs(l.weight()) <= 1.0 / std::sqrt(50.0));
  CHECK(max_abs(l.weight()) > 0.9 / std::sqrt(50.0));
  Linear nb(5, 4, false, g1);
  CHECK_FALSE(nb.bias().defined());
  CHECK(nb.named_parameters().size() == 1);
}

TEST_CASE("layers: Conv2d fields, output shape, MACs and consistency after surgery") {
  Conv2d c(4, 6, 3, {.stride = 2, .padding = 1, .dilation = 1, .groups = 2, .bias = false});
  CHECK(c.in_channels == 4);
  CHECK(c.out_channels == 6);
  CHECK(c.kernel == std::array<int64_t, 2>{3, 3});
  CHECK(c.stride == std::array<int64_t, 2>{2, 2});
  CHECK(c.groups == 2);
  CHECK_FALSE(c.has_bias());
  CHECK_FALSE(c.is_depthwise());
  CHECK(Conv2d(5, 5, 3, {.groups = 5}).is_depthwise());
  CHECK(c.output_shape({2, 4, 9, 9}) == Shape{2, 6, 5, 5});
  CHECK(c.macs({2, 4, 9, 9}) == 2 * 6 * 5 * 5 * 2 * 9);
  Generator g(1);
  const Tensor x = Tensor::randn({2, 4, 9, 9}, g);
  CHECK(c.forward(x).shape() == c.output_shape(x.shape()));
  CHECK_THROWS_WITH_AS(c.forward(Tensor::randn({2, 3, 9, 9}, g)), doctest::Contains("expected input [N, 4, H, W]"), Error);
  // Surgery that edits the weight but forgets the fields is caught.
  c.set_parameter("weight", Tensor::zeros({5, 2, 3, 3}));
  CHECK_THROWS_WITH_AS(c.forward(x), doctest::Contains("disagrees with the configuration"), Error);
  c.out_channels = 5;
  CHECK_THROWS_AS(c.check_consistent(), Error);  // 5 outputs are not divisible by 2 groups
  c.groups = 1;
  c.in_channels = 2;
  CHECK_NOTHROW(c.check_consistent());
  CHECK_THROWS_WITH_AS(Conv2d(4, 6, 3, {.groups = 4}), doctest::Contains("divisible by groups"), Error);
}

TEST_CASE("layers: BatchNorm2d init, training statistics and buffer updates") {
  BatchNorm2d bn(3);
  CHECK(bn.weight().to_vector<float>() == std::vector<float>{1, 1, 1});
  CHECK(bn.bias().to_vector<float>() == std::vector<float>{0, 0, 0});
  CHECK(bn.running_mean().to_vector<float>() == std::vector<float>{0, 0, 0});
  CHECK(bn.running_var().to_vector<float>() == std::vector<float>{1, 1, 1});
  CHECK(bn.batches_tracked() == 0);
  Generator g(2);
  const Tensor x = Tensor::randn({4, 3, 5, 5}, g, 2.0, 3.0);
  const Tensor y = bn.forward(x);
  // Training: normalised with batch statistics -> per-channel mean 0, (biased) variance 1.
  CHECK(max_abs(mean(y, {0, 2, 3})) < 1e-5);
  CHECK(var(y, {0, 2, 3}, false).to_vector<float>()[1] == doctest::Approx(1.0).epsilon(1e-3));
  const Tensor bm = mean(x, {0, 2, 3}), bv = var(x, {0, 2, 3}, true);
  CHECK(test::max_abs_diff(bn.running_mean(), mul(bm, 0.1)) < 1e-5);
  CHECK(test::max_abs_diff(bn.running_var(), add(mul(bv, 0.1), 0.9)) < 1e-4);
  CHECK(bn.batches_tracked() == 1);
  // Eval: the running statistics, not the batch's.
  bn.eval();
  const Tensor ye = bn.forward(x);
  const Tensor expect = div(sub(x, reshape(bn.running_mean(), {1, 3, 1, 1})), sqrt(add(reshape(bn.running_var(), {1, 3, 1, 1}), 1e-5)));
  CHECK(test::max_abs_diff(ye, expect) < 1e-4);
  CHECK(test::max_abs_diff(ye, y) > 0.1);
  CHECK(bn.batches_tracked() == 1);  // eval does not count
}

TEST_CASE("layers: BatchNorm2d cumulative momentum and no running statistics") {
  BatchNorm2d cum(2, {.momentum = std::nullopt});
  Generator g(3);
  const Tensor x1 = Tensor::randn({2, 2, 3, 3}, g), x2 = Tensor::randn({2, 2, 3, 3}, g, 1.0);
  cum.forward(x1);
  cum.forward(x2);
  // Cumulative average of the two batch means (factor 1, then 1/2).
  CHECK(test::max_abs_diff(cum.running_mean(), mul(add(mean(x1, {0, 2, 3}), mean(x2, {0, 2, 3})), 0.5)) < 1e-5);
  CHECK(cum.batches_tracked() == 2);
  BatchNorm2d free(2, {.affine = false, .track_running_stats = false});
  CHECK(free.state_dict().empty());
  free.eval();  // still batch statistics
  CHECK(max_abs(mean(free.forward(x2), {0, 2, 3})) < 1e-5);
  CHECK_THROWS_WITH_AS(BatchNorm2d(2).forward(Tensor::randn({2, 3, 3, 3}, g)), doctest::Contains("expected input [N, 2, H, W]"), Error);
}

TEST_CASE("layers: Dropout is seeded, scales survivors and is the identity in eval") {
  const Tensor x = Tensor::ones({4, 100});
  Dropout a(0.3, 11), b(0.3, 11), c(0.3, 12);
  const std::vector<float> ya = a.forward(x).to_vector<float>();
  CHECK(ya == b.forward(x).to_vector<float>());
  CHECK(ya != c.forward(x).to_vector<float>());
  int zeros = 0;
  for (float v : ya) {
    CHECK((v == 0.0f || std::abs(v - 1.0f / 0.7f) < 1e-6));
    zeros += v == 0.0f;
  }
  CHECK(zeros > 60);
  CHECK(zeros < 180);
  a.eval();
  CHECK(a.forward(x).to_vector<float>() == x.to_vector<float>());
  CHECK_THROWS_AS(Dropout(1.0), Error);
}

TEST_CASE("layers: output_shape agrees with forward for every parameter-free layer") {
  Generator g(4);
  const Tensor x = Tensor::randn({2, 3, 9, 7}, g);
  std::vector<std::shared_ptr<Module>> ls{std::make_shared<ReLU>(),          std::make_shared<ReLU6>(),
                                          std::make_shared<Identity>(),      std::make_shared<MaxPool2d>(3, 2, 1),
                                          std::make_shared<MaxPool2d>(2),    std::make_shared<AvgPool2d>(3, 2, 1),
                                          std::make_shared<AvgPool2d>(2),    std::make_shared<AdaptiveAvgPool2d>(1),
                                          std::make_shared<AdaptiveAvgPool2d>(4, 3), std::make_shared<Flatten>(),
                                          std::make_shared<Flatten>(2),      std::make_shared<Dropout>(0.5, 1)};
  for (auto& l : ls) {
    CAPTURE(l->repr());
    CHECK(l->forward(x).shape() == l->output_shape(x.shape()));
    CHECK(l->macs(x.shape()) == 0);
    CHECK(l->num_parameters() == 0);
  }
  CHECK(MaxPool2d(3, 2, 1).output_shape({1, 1, 112, 112}) == Shape{1, 1, 56, 56});
  CHECK(relu6(mul(x, 10.0)).to_vector<float>() == ls[1]->forward(mul(x, 10.0)).to_vector<float>());
  Linear l(189, 5);
  CHECK(l.output_shape({2, 189}) == Shape{2, 5});
  CHECK(l.macs({2, 189}) == 2 * 189 * 5);
  CHECK(l.forward(flatten(x, 1)).shape() == Shape{2, 5});
  CHECK_THROWS_WITH_AS(l.forward(x), doctest::Contains("flatten first"), Error);
}
