// test_gradcheck_modules.cpp — module gradient checks in float64 (tests/gradcheck.h): the input
// and every parameter of Conv2d (plain, strided/dilated, grouped, depthwise), BatchNorm2d
// (train and eval), Linear, a BasicBlock with projection and an InvertedResidual with residual.
// Tiny sizes (batch 2, 4-8 channels, 5x5) keep each check well under a second.
#include <doctest/doctest.h>

#include "layers/layers.h"
#include "layers/models/blocks.h"
#include "tests/gradcheck.h"

using namespace pfq;

namespace {
// Converts `m` to float64, randomises nothing else, and checks d/d(input, parameters).
void check_module(Module& m, const Shape& in_shape, uint64_t seed) {
  m.to(DType::Float64);
  std::vector<Tensor> inputs{test::rand64(in_shape, seed)};
  for (const Tensor& p : m.parameters()) inputs.push_back(p);
  REQUIRE(inputs.size() > 1);
  const auto res = test::gradcheck([&](const std::vector<Tensor>& v) { return m.forward(v[0]); }, inputs);
  INFO(res.report);
  CHECK(res.ok);
  CHECK(res.max_abs_err < 1e-5);
}
}  // namespace

TEST_CASE("gradcheck modules: Conv2d variants") {
  Generator g(1);
  Conv2d plain(3, 4, 3, {.padding = 1}, g);
  check_module(plain, {2, 3, 5, 5}, 11);
  Conv2d strided(4, 4, 3, {.stride = 2, .padding = 2, .dilation = 2, .bias = false}, g);
  check_module(strided, {2, 4, 5, 5}, 12);
  Conv2d grouped(4, 6, 3, {.padding = 1, .groups = 2}, g);
  check_module(grouped, {2, 4, 5, 5}, 13);
  Conv2d depthwise(6, 6, 3, {.stride = 2, .padding = 1, .groups = 6}, g);
  REQUIRE(depthwise.is_depthwise());
  check_module(depthwise, {2, 6, 5, 5}, 14);
}

TEST_CASE("gradcheck modules: BatchNorm2d in training and eval") {
  BatchNorm2d train_bn(4);
  Generator g(2);
  train_bn.to(DType::Float64);
  train_bn.weight().copy_(Tensor::rand({4}, g, 0.5, 1.5, DType::Float64));
  train_bn.bias().copy_(Tensor::rand({4}, g, -0.5, 0.5, DType::Float64));
  check_module(train_bn, {2, 4, 5, 5}, 21);
  BatchNorm2d eval_bn(4);
  eval_bn.to(DType::Float64);
  eval_bn.running_mean().copy_(Tensor::rand({4}, g, -0.5, 0.5, DType::Float64));
  eval_bn.running_var().copy_(Tensor::rand({4}, g, 0.5, 2.0, DType::Float64));
  eval_bn.weight().copy_(Tensor::rand({4}, g, 0.5, 1.5, DType::Float64));
  eval_bn.eval();
  check_module(eval_bn, {2, 4, 5, 5}, 22);
}

TEST_CASE("gradcheck modules: Linear") {
  Generator g(3);
  Linear l(6, 4, true, g);
  check_module(l, {2, 6}, 31);
}

TEST_CASE("gradcheck modules: BasicBlock with projection shortcut") {
  Generator g(4);
  models::BasicBlock block(4, 6, 8, 2, true, g);
  check_module(block, {2, 4, 5, 5}, 41);
  models::BasicBlock identity(6, 4, 6, 1, false, g);
  check_module(identity, {2, 6, 5, 5}, 42);
}

TEST_CASE("gradcheck modules: InvertedResidual with residual add") {
  Generator g(5);
  models::InvertedResidual block(4, 8, 4, 1, true, true, g);
  REQUIRE(block.has_residual());
  check_module(block, {2, 4, 5, 5}, 51);
}
