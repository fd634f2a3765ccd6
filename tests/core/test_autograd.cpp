// test_autograd.cpp — the tape: accumulation into leaves, shared subgraphs, NoGradGuard,
// graph freeing, seed-gradient rules, determinism of backward.
#include <doctest/doctest.h>

#include "core/allocator.h"
#include "core/ops.h"

using namespace pfq;

TEST_CASE("autograd: gradients accumulate into leaves across backward calls") {
  Tensor x = Tensor::from_vector<double>({1, 2, 3}, {3}).set_requires_grad(true);
  sum(mul(x, x)).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{2, 4, 6});
  sum(mul(x, 3.0)).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{5, 7, 9});
}

TEST_CASE("autograd: a tensor used twice gets both contributions (diamond graph)") {
  Tensor x = Tensor::from_vector<double>({2}, {1}).set_requires_grad(true);
  Tensor a = mul(x, 3.0), b = exp(x);
  Tensor y = sum(add(mul(a, b), a));  // d/dx [3x e^x + 3x] = 3e^x + 3x e^x + 3
  y.backward();
  CHECK(x.grad().item() == doctest::Approx(3 * std::exp(2.0) + 6 * std::exp(2.0) + 3));
}

TEST_CASE("autograd: NoGradGuard records nothing") {
  Tensor x = Tensor::ones({2}).set_requires_grad(true);
  Tensor y;
  {
    NoGradGuard ng;
    y = mul(x, 2.0);
  }
  CHECK_FALSE(y.requires_grad());
  CHECK(y.is_leaf());
  CHECK(grad_enabled());
}

TEST_CASE("autograd: backward of a non-scalar needs a seed; the graph is freed afterwards") {
  Tensor x = Tensor::ones({2, 2}).set_requires_grad(true);
  Tensor y = mul(x, 2.0);
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("pass a seed of the same shape"), Error);
  CHECK_THROWS_WITH_AS(y.backward(Tensor::ones({3})), doctest::Contains("seed gradient has shape [3]"), Error);
  y.backward(Tensor::full({2, 2}, 0.5));
  CHECK(x.grad().to_vector<float>() == std::vector<float>{1, 1, 1, 1});
  CHECK_THROWS_WITH_AS(y.backward(Tensor::ones({2, 2})), doctest::Contains("graph was freed"), Error);
  Tensor z = Tensor::ones({1});
  CHECK_THROWS_WITH_AS(z.backward(), doctest::Contains("does not require grad"), Error);
}

TEST_CASE("autograd: long chains backpropagate iteratively (no recursion depth limit)") {
  Tensor x = Tensor::from_vector<double>({1}, {1}).set_requires_grad(true);
  Tensor y = x;
  for (int i = 0; i < 20000; ++i) y = add(y, 0.0);
  sum(y).backward();
  CHECK(x.grad().item() == 1.0);
}

TEST_CASE("autograd: integer tensors cannot require grad; detach cuts history") {
  Tensor i = Tensor::zeros({2}, DType::Int64);
  CHECK_THROWS_AS(i.set_requires_grad(true), Error);
  Tensor x = Tensor::ones({2}).set_requires_grad(true);
  Tensor d = mul(x, 2.0).detach();
  CHECK_FALSE(d.requires_grad());
}

TEST_CASE("autograd: same inputs and threads give bit-identical gradients") {
  auto run = [] {
    Generator g(3);
    Tensor x = Tensor::randn({4, 3, 8, 8}, g).set_requires_grad(true);
    Tensor w = Tensor::randn({5, 3, 3, 3}, g).set_requires_grad(true);
    Conv2dOptions o;
    o.padding = {1, 1};
    Tensor y = relu(conv2d(x, w, Tensor(), o));
    Tensor gm = Tensor::ones({5}), bt = Tensor::zeros({5});
    sum(square(batch_norm(y, gm, bt, Tensor(), Tensor(), true, 0.1, 1e-5))).backward();
    auto a = x.grad().to_vector<float>();
    auto b = w.grad().to_vector<float>();
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  CHECK(run() == run());
}

TEST_CASE("autograd: the graph keeps only what backward saves, not every intermediate") {
  // relu(x * 2): relu saves its output; the product is an input of relu's node but no closure
  // needs it, so it is freed when the forward drops it. Gradients are unchanged.
  const int64_t n = 1 << 18;  // 1 MiB per float32 tensor
  Tensor x = Tensor::full({n}, 1.5, DType::Float32).set_requires_grad(true);
  const size_t base = cpu_allocator_stats().bytes_in_use;
  Tensor y = relu(mul(x, 2.0));
  const size_t held = cpu_allocator_stats().bytes_in_use - base;
  CHECK(held == static_cast<size_t>(n) * sizeof(float));  // y alone
  sum(y).backward();
  CHECK(x.grad().to_vector<float>() == std::vector<float>(n, 2.0f));
}
