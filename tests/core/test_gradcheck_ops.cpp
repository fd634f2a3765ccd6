// test_gradcheck_ops.cpp — every row of the op-case table (tests/op_cases.cpp), gradient-
// checked in float64 against central differences. Adding an op's test is one row there.
#include <doctest/doctest.h>

#include "tests/gradcheck.h"
#include "tests/op_cases.h"

using namespace pfq;
using pfq::test::gradcheck;
using pfq::test::op_cases;
using pfq::test::rand64;
using Fn = pfq::test::OpFn;

TEST_CASE("gradcheck: every op of the op-case table") {
  uint64_t seed = 100;
  for (const auto& c : op_cases()) {
    std::vector<Tensor> inputs;
    for (const auto& s : c.shapes) inputs.push_back(rand64(s, seed++, c.lo, c.hi));
    auto r = gradcheck(c.f, inputs);
    INFO("op case: ", std::string(c.name), "\n", r.report);
    CHECK(r.ok);
  }
}

TEST_CASE("gradcheck: the checker itself rejects a wrong gradient") {
  // relu with the wrong mask (gradient doubled): gradcheck must fail on it.
  Fn wrong = [](const std::vector<Tensor>& v) {
    Tensor y = relu(v[0]).detach();
    return record("bad_relu", y, {v[0]}, [](const Tensor& g) { return std::vector<Tensor>{mul(g, 2.0)}; });
  };
  auto r = gradcheck(wrong, {rand64({3, 3}, 5, 0.1, 1)});
  CHECK_FALSE(r.ok);
}

// Straight-through ops are not differentiable in the finite-difference sense (their
// gradient is a chosen surrogate), so they are checked against their formulas here.
TEST_CASE("gradcheck: STE rounding passes the gradient unchanged; plain round and sign give zero") {
  Tensor x = rand64({6}, 9);
  sum(round_ste(mul(x, 4.0))).backward();
  for (double g : x.grad().to_vector<double>()) CHECK(g == doctest::Approx(4.0));
  Tensor y = rand64({6}, 10);
  sum(add(round(y), sign(y))).backward();
  for (double g : y.grad().to_vector<double>()) CHECK(g == 0.0);
  Tensor z = Tensor::from_vector<double>({-2, -0.5, 0.5, 2}, {4}).set_requires_grad(true);
  sum(sign_ste(z)).backward();
  CHECK(z.grad().to_vector<double>() == std::vector<double>{0, 1, 1, 0});
  Tensor c = Tensor::from_vector<double>({-2, 0, 2}, {3}).set_requires_grad(true);
  sum(clamp(c, -1, 1)).backward();
  CHECK(c.grad().to_vector<double>() == std::vector<double>{0, 1, 0});
}
