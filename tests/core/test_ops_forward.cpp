// test_ops_forward.cpp — forward values of ops against hand-computed or naive references:
// broadcasting edge cases, reductions, matmul, batch norm (both modes, running statistics),
// pooling, softmax and cross-entropy.
#include <doctest/doctest.h>

#include <algorithm>

#include <cmath>

#include "core/cpu/gemm.h"
#include "core/layout.h"
#include "core/ops.h"
#include "tests/gradcheck.h"

using namespace pfq;
using V = std::vector<float>;

TEST_CASE("broadcasting: edge cases") {
  Tensor a = reshape(Tensor::arange(6), {2, 3});
  CHECK(add(a, Tensor::from_vector<float>({10, 20}, {2, 1})).to_vector<float>() == V{10, 11, 12, 23, 24, 25});
  CHECK(add(a, Tensor::scalar(1)).to_vector<float>() == V{1, 2, 3, 4, 5, 6});
  CHECK(mul(Tensor::from_vector<float>({1, 2, 3}, {3}), a).to_vector<float>() == V{0, 2, 6, 3, 8, 15});
  CHECK(add(Tensor::zeros({3, 1}), Tensor::ones({1, 4})).shape() == Shape{3, 4});
  CHECK(add(Tensor::zeros({0, 3}), Tensor::ones({3})).shape() == Shape{0, 3});
  CHECK(sub(transpose(a, 0, 1), Tensor::ones({3, 1})).to_vector<float>() == V{-1, 2, 0, 3, 1, 4});
  CHECK_THROWS_WITH_AS(add(Tensor::zeros({2, 3}), Tensor::zeros({2})), doctest::Contains("cannot be broadcast"), Error);
}

TEST_CASE("reductions") {
  Tensor a = reshape(Tensor::arange(24), {2, 3, 4});
  CHECK(sum(a).item() == 276);
  CHECK(sum(a, {0, 2}).to_vector<float>() == V{60, 92, 124});
  CHECK(sum(a, {1}, true).shape() == Shape{2, 1, 4});
  CHECK(mean(a, {2}).to_vector<float>()[1] == 5.5f);
  CHECK(max(a, {1}).to_vector<float>() == V{8, 9, 10, 11, 20, 21, 22, 23});
  CHECK(min(a, {0, 1, 2}).item() == 0);
  CHECK(var(Tensor::from_vector<float>({1, 2, 3, 4}, {4})).item() == doctest::Approx(5.0 / 3));
  CHECK(var(Tensor::from_vector<float>({1, 2, 3, 4}, {4}), {}, false).item() == doctest::Approx(1.25));
  CHECK(argmax(Tensor::from_vector<float>({1, 5, 2, 7, 0, 3}, {2, 3}), 1).to_vector<int64_t>() == std::vector<int64_t>{1, 0});
  CHECK(argmax(Tensor::from_vector<float>({3, 7, 7}, {3}), 0).item() == 1);  // the first of equal maxima, on every device
  CHECK_THROWS_WITH_AS(argmax(Tensor::zeros({2, 0}), 1), doctest::Contains("argmax: reduction over an empty axis"), Error);
  CHECK(sum_to(Tensor::ones({2, 3, 4}), {3, 1}).to_vector<float>() == V{8, 8, 8});
  // long sums are exact for integers in float (double accumulation)
  CHECK(sum(Tensor::ones({300000})).item() == 300000);
}

TEST_CASE("matmul and gemm against a naive triple loop") {
  Generator g(1);
  for (auto [M, K, N] : std::vector<std::array<int64_t, 3>>{{1, 1, 1}, {3, 5, 2}, {17, 33, 9}, {64, 70, 65}}) {
    Tensor a = Tensor::randn({M, K}, g, 0, 1, DType::Float64), b = Tensor::randn({K, N}, g, 0, 1, DType::Float64);
    Tensor c = matmul(a, b);
    auto pa = a.to_vector<double>(), pb = b.to_vector<double>(), pc = c.to_vector<double>();
    double err = 0;
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k) s += pa[i * K + k] * pb[k * N + j];
        err = std::max(err, std::abs(s - pc[i * N + j]));
      }
    CHECK(err < 1e-10);
  }
  // transposed variants and beta accumulation
  std::vector<float> A{1, 2, 3, 4, 5, 6}, B{1, 0, 2, 1, 0, 1}, C{1, 1, 1, 1};
  // A^T [3,2]^T -> A stored [3,2] read as [2,3]^T... C[2,2] = A^T(2x3) * B(3x2) + C
  cpu::gemm<float>(true, false, 2, 2, 3, 1.0f, A.data(), 2, B.data(), 2, 1.0f, C.data(), 2);
  // A^T = [[1,3,5],[2,4,6]]; B = [[1,0],[2,1],[0,1]] -> [[7,8],[10,10]] + 1
  CHECK(C == std::vector<float>{8, 9, 11, 11});
}

TEST_CASE("linear: x W^T + b") {
  Tensor x = Tensor::from_vector<float>({1, 2}, {1, 2});
  Tensor w = Tensor::from_vector<float>({1, 1, 0, 2}, {2, 2});
  Tensor b = Tensor::from_vector<float>({0.5, -1}, {2});
  CHECK(linear(x, w, b).to_vector<float>() == V{3.5, 3});
}

TEST_CASE("batch_norm: train normalises with batch statistics and updates running stats") {
  Tensor x = Tensor::from_vector<float>({1, 3, 5, 7, 2, 2, 2, 2}, {2, 2, 2, 1});  // channel 0: 1,3,2,2 ; channel 1: 5,7,2,2
  Tensor rm = Tensor::zeros({2}), rv = Tensor::ones({2});
  Tensor y = batch_norm(x, Tensor::ones({2}), Tensor::zeros({2}), rm, rv, true, 0.1, 1e-5);
  // channel 0 mean 2, biased var 0.5, unbiased 2/3
  auto yv = y.to_vector<float>();
  CHECK(yv[0] == doctest::Approx(-1 / std::sqrt(0.5 + 1e-5)));
  CHECK(rm.to_vector<float>()[0] == doctest::Approx(0.2));
  CHECK(rv.to_vector<float>()[0] == doctest::Approx(0.9 + 0.1 * (2.0 / 3)));
  // channel 1 mean 4, var biased 4.5 -> unbiased 6
  CHECK(rm.to_vector<float>()[1] == doctest::Approx(0.4));
  CHECK(rv.to_vector<float>()[1] == doctest::Approx(0.9 + 0.6));
  // eval uses running stats and leaves them alone
  Tensor ye = batch_norm(x, Tensor::full({2}, 2), Tensor::full({2}, 1), rm, rv, false, 0.1, 1e-5);
  CHECK(ye.to_vector<float>()[0] == doctest::Approx(2 * (1 - 0.2) / std::sqrt(0.9 + 0.2 / 3 + 1e-5) + 1));
  CHECK(rm.to_vector<float>()[0] == doctest::Approx(0.2));
}

TEST_CASE("batch_norm: a constant channel (variance 0) stays finite") {
  Tensor x = Tensor::full({4, 1, 3, 3}, 2.5);
  Tensor y = batch_norm(x, Tensor::ones({1}), Tensor::full({1}, 0.75), Tensor(), Tensor(), true, 0.1, 1e-5);
  for (float v : y.to_vector<float>()) CHECK(v == doctest::Approx(0.75));
}

TEST_CASE("batch_norm: batch variance of a channel with a large mean and a tiny spread (float64)") {
  // PfQ looks for channels of tiny variance; a naive E[x^2] - E[x]^2 loses it to cancellation.
  Generator gen(11);
  Tensor x = add(mul(Tensor::randn({8, 2, 4, 4}, gen, 0, 1, DType::Float64), 1e-4), 3000.0);
  Tensor rm = Tensor::zeros({2}, DType::Float64), rv = Tensor::zeros({2}, DType::Float64);
  batch_norm(x, Tensor(), Tensor(), rm, rv, true, 1.0, 1e-5);  // momentum 1: running = batch statistics
  const auto v = x.to_vector<double>();
  for (int c = 0; c < 2; ++c) {
    long double s = 0, q = 0;
    int64_t m = 0;
    for (int n = 0; n < 8; ++n)
      for (int i = 0; i < 16; ++i, ++m) s += v[(n * 2 + c) * 16 + i];
    const long double mean = s / m;
    for (int n = 0; n < 8; ++n)
      for (int i = 0; i < 16; ++i) q += (v[(n * 2 + c) * 16 + i] - mean) * (v[(n * 2 + c) * 16 + i] - mean);
    const double unbiased = static_cast<double>(q / (m - 1));
    CHECK(std::abs(rv.to_vector<double>()[c] - unbiased) < 1e-9 * unbiased);
    CHECK(std::abs(rm.to_vector<double>()[c] - static_cast<double>(mean)) < 1e-12);
  }
}

TEST_CASE("batch_norm with a fused activation equals the activation op after it, values and gradients") {
  Generator gen(7);
  for (BnAct act : {BnAct::ReLU, BnAct::ReLU6})
    for (bool training : {true, false}) {
      INFO("act ", static_cast<int>(act), " training ", training);
      Tensor x = Tensor::randn({4, 3, 5, 5}, gen);
      Tensor g = mul(Tensor::randn({3}, gen), 6.0), b = Tensor::randn({3}, gen);  // some outputs above 6
      Tensor dy = Tensor::randn({4, 3, 5, 5}, gen);
      Tensor rm1 = Tensor::randn({3}, gen), rv1 = add(Tensor::rand({3}, gen), 0.5);
      Tensor rm2 = rm1.clone(), rv2 = rv1.clone();
      Tensor x1 = x.clone().set_requires_grad(true), g1 = g.clone().set_requires_grad(true), b1 = b.clone().set_requires_grad(true);
      Tensor x2 = x.clone().set_requires_grad(true), g2 = g.clone().set_requires_grad(true), b2 = b.clone().set_requires_grad(true);
      Tensor fused = batch_norm(x1, g1, b1, rm1, rv1, training, 0.1, 1e-5, act);
      Tensor plain = batch_norm(x2, g2, b2, rm2, rv2, training, 0.1, 1e-5);
      plain = act == BnAct::ReLU ? relu(plain) : relu6(plain);
      fused.backward(dy);
      plain.backward(dy);
      CHECK(fused.to_vector<float>() == plain.to_vector<float>());
      CHECK(x1.grad().to_vector<float>() == x2.grad().to_vector<float>());
      CHECK(g1.grad().to_vector<float>() == g2.grad().to_vector<float>());
      CHECK(b1.grad().to_vector<float>() == b2.grad().to_vector<float>());
      CHECK(rm1.to_vector<float>() == rm2.to_vector<float>());
      CHECK(rv1.to_vector<float>() == rv2.to_vector<float>());
      const auto v = fused.to_vector<float>();
      CHECK(*std::min_element(v.begin(), v.end()) == 0.0f);
      if (act == BnAct::ReLU6) CHECK(*std::max_element(v.begin(), v.end()) == 6.0f);
    }
}

TEST_CASE("pooling against hand-computed values") {
  Tensor x = reshape(Tensor::arange(16), {1, 1, 4, 4});
  CHECK(max_pool2d(x, {2, 2}, {2, 2}).to_vector<float>() == V{5, 7, 13, 15});
  CHECK(avg_pool2d(x, {2, 2}, {2, 2}).to_vector<float>() == V{2.5, 4.5, 10.5, 12.5});
  // padding 1, kernel 3, stride 2: corner window covers 4 real + 5 padded cells
  CHECK(avg_pool2d(x, {3, 3}, {2, 2}, {1, 1}, true).to_vector<float>()[0] == doctest::Approx((0 + 1 + 4 + 5) / 9.0));
  CHECK(avg_pool2d(x, {3, 3}, {2, 2}, {1, 1}, false).to_vector<float>()[0] == doctest::Approx((0 + 1 + 4 + 5) / 4.0));
  CHECK(adaptive_avg_pool2d(x, {1, 1}).item() == 7.5);
  // PyTorch's bins for 4 -> 3: [0,2), [1,3), [2,4)
  Tensor r = reshape(Tensor::arange(4), {1, 1, 1, 4});
  CHECK(adaptive_avg_pool2d(r, {1, 3}).to_vector<float>() == V{0.5, 1.5, 2.5});
}

TEST_CASE("softmax and cross-entropy") {
  Tensor z = Tensor::from_vector<float>({1, 2, 3, 1, 1, 1}, {2, 3});
  auto p = softmax(z).to_vector<float>();
  double e = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  CHECK(p[2] == doctest::Approx(std::exp(3.0) / e));
  CHECK(p[4] == doctest::Approx(1.0 / 3));
  Tensor t = Tensor::from_vector<int64_t>({2, 0}, {2});
  double expected = (-(3 - std::log(e)) + std::log(3.0)) / 2;
  CHECK(cross_entropy(z, t).item() == doctest::Approx(expected));
  // label smoothing 0.3 with K = 3: -(0.7 log p_t + 0.1 sum log p)
  double lp0[3] = {1 - std::log(e), 2 - std::log(e), 3 - std::log(e)};
  double s0 = -(0.7 * lp0[2] + 0.1 * (lp0[0] + lp0[1] + lp0[2]));
  double s1 = -(0.7 * std::log(1.0 / 3) + 0.3 * std::log(1.0 / 3));
  CHECK(cross_entropy(z, t, 0.3).item() == doctest::Approx((s0 + s1) / 2));
  // huge logits do not overflow
  Tensor big = Tensor::from_vector<float>({1000, 0}, {1, 2});
  CHECK(std::isfinite(cross_entropy(big, Tensor::from_vector<int64_t>({1}, {1})).item()));
  CHECK_THROWS_WITH_AS(cross_entropy(z, Tensor::from_vector<int64_t>({3, 0}, {2})), doctest::Contains("target 3 at batch index 0"), Error);
  // A host copy of the targets (what the trainer passes for GPU targets): the same loss; a
  // copy of another shape or dtype is refused.
  CHECK(cross_entropy(z, t, 0, t.clone()).item() == doctest::Approx(expected));
  CHECK_THROWS_WITH_AS(cross_entropy(z, t, 0, Tensor::from_vector<int64_t>({2}, {1})), doctest::Contains("targets_host"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(z, t, 0, t.to(DType::Float32)), doctest::Contains("targets_host"), Error);
}

TEST_CASE("dropout: scaling, seeding, eval identity") {
  Generator g1(11), g2(11);
  Tensor x = Tensor::ones({1000});
  Tensor a = dropout(x, 0.5, true, g1), b = dropout(x, 0.5, true, g2);
  CHECK(a.to_vector<float>() == b.to_vector<float>());
  for (float v : a.to_vector<float>()) CHECK((v == 0.0f || v == 2.0f));
  CHECK(mean(a).item() == doctest::Approx(1).epsilon(0.15));
  CHECK(dropout(x, 0.5, false, g1).is_same(x));
}

TEST_CASE("add_relu gives relu(add(a, b))'s values and gradients bit for bit, in both layouts") {
  Generator gen(5);
  Tensor a0 = Tensor::randn({2, 4, 3, 5}, gen), b0 = Tensor::randn({2, 4, 3, 5}, gen), dy = Tensor::randn({2, 4, 3, 5}, gen);
  for (bool cl : {false, true}) {
    CAPTURE(cl);
    Tensor a = a0.clone().set_requires_grad(true), b = b0.clone().set_requires_grad(true);
    Tensor a2 = a0.clone().set_requires_grad(true), b2 = b0.clone().set_requires_grad(true);
    Tensor fused = cl ? add_relu(to_channels_last(a), to_channels_last(b)) : add_relu(a, b);
    Tensor plain = cl ? relu(add(to_channels_last(a2), to_channels_last(b2))) : relu(add(a2, b2));
    CHECK(fused.to_vector<float>() == plain.to_vector<float>());
    CHECK(fused.strides() == plain.strides());
    fused.backward(dy);
    plain.backward(dy);
    CHECK(a.grad().to_vector<float>() == a2.grad().to_vector<float>());
    CHECK(b.grad().to_vector<float>() == b2.grad().to_vector<float>());
  }
  CHECK_THROWS_WITH_AS(add_relu(a0, Tensor::zeros({4, 3, 5})), doctest::Contains("add_relu: operands"), Error);
}

TEST_CASE("element-wise unary values") {
  Tensor x = Tensor::from_vector<float>({-7, -0.5, 0.5, 2.5, 7}, {5});
  CHECK(relu(x).to_vector<float>() == V{0, 0, 0.5, 2.5, 7});
  CHECK(relu6(x).to_vector<float>() == V{0, 0, 0.5, 2.5, 6});
  CHECK(round(x).to_vector<float>() == V{-7, -0, 0, 2, 7});  // half to even
  CHECK(round(Tensor::from_vector<float>({1.5, 2.5, -1.5}, {3})).to_vector<float>() == V{2, 2, -2});
  CHECK(sign(Tensor::from_vector<float>({-3, 0, 2}, {3})).to_vector<float>() == V{-1, 0, 1});
  CHECK(sign_ste(Tensor::from_vector<float>({-3, 0, 2}, {3})).to_vector<float>() == V{-1, 1, 1});
  CHECK(clamp(x, -1, 1).to_vector<float>() == V{-1, -0.5, 0.5, 1, 1});
  CHECK(abs(x).to_vector<float>()[0] == 7);
  CHECK(sigmoid(Tensor::zeros({1})).item() == 0.5);
  CHECK(pow(Tensor::full({1}, 4), 0.5).item() == 2);
}
