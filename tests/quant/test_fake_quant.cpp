// test_fake_quant.cpp — forward of the quant/ ops: the fused fake-quantizer against a naive
// scalar reference for every option combination, hand-computed values, round-half-to-even,
// level counts, exact zero, 1-bit sign, degenerate ranges, thread-count independence, and
// PACT / LSQ / DoReFa forwards against their formulas, channels-last inputs. Gradients:
// test_quant_gradients.cpp.
#include <doctest/doctest.h>
#include <omp.h>
#include <functional>
#include <string>
#include <vector>

#include "core/layout.h"
#include "quant/fake_quant.h"
#include "quant/learned_quant.h"
#include "tests/gradcheck.h"
#include "tests/quant/quant_test_util.h"

using namespace pfq;
using namespace pfq::quant;
using namespace pfq::quant::test;

namespace {

template <typename T>
void check_against_naive(DType dt) {
  const double ranges[][2] = {{-1, 1}, {-0.5, 2}, {0.2, 1.5}, {-3, -1}};
  uint64_t seed = 1;
  for (int bits : {2, 3, 4, 8})
    for (bool sym : {true, false})
      for (bool per_channel : {false, true})
        for (const auto& rg : ranges) {
          CAPTURE(bits);
          CAPTURE(sym);
          CAPTURE(per_channel);
          CAPTURE(rg[0]);
          Tensor x = rand_t({4, 3, 2, 2}, seed++, rg[0], rg[1], dt);
          FakeQuantResult r = fake_quantize(x, {bits, sym, per_channel});
          NaiveFq<T> ref = naive_fake_quant(x.to_vector<T>(), per_channel ? 4 : 1, bits, sym);
          CHECK(r.out.shape() == x.shape());
          CHECK(r.out.to_vector<T>() == ref.out);
          CHECK(r.scale.to_vector<T>() == ref.scale);
          CHECK(r.zero_point.to_vector<T>() == ref.zero_point);
          // the output is never the input itself at these bit widths on random data
          CHECK(pfq::test::max_abs_diff(r.out, x) > 0);
        }
}

}  // namespace

TEST_CASE("fake_quantize: matches the naive reference (bits 2,3,4,8 x sym/asym x tensor/channel, f32/f64)") {
  check_against_naive<float>(DType::Float32);
  check_against_naive<double>(DType::Float64);
}

TEST_CASE("fake_quantize: hand-computed values of x = [-1, -0.5, 0.26, 0.74, 1] (float64)") {
  Tensor x = Tensor::from_vector<double>({-1, -0.5, 0.26, 0.74, 1}, {5});
  auto near = [](const Tensor& t, std::vector<double> want) {
    std::vector<double> got = t.to_vector<double>();
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-12));
  };
  // 2-bit symmetric: q in [-1, 1], s = 1; -0.5 ties to even (0)
  FakeQuantResult a = fake_quantize(x, {2, true, false});
  near(a.out, {-1, 0, 0, 1, 1});
  CHECK(a.scale.item() == 1.0);
  // 4-bit symmetric: q in [-7, 7], s = 1/7; -3.5 ties to -4, 1.82 -> 2, 5.18 -> 5
  FakeQuantResult b = fake_quantize(x, {4, true, false});
  near(b.out, {-1, -4.0 / 7, 2.0 / 7, 5.0 / 7, 1});
  CHECK(b.scale.item() == doctest::Approx(1.0 / 7));
  // 2-bit asymmetric: s = 2/3, z = round(1.5) = 2, grid [-4/3, 2/3]: 0.74 and 1 clip to 2/3
  FakeQuantResult c = fake_quantize(x, {2, false, false});
  near(c.out, {-4.0 / 3, -2.0 / 3, 0, 2.0 / 3, 2.0 / 3});
  CHECK(c.zero_point.item() == 2.0);
  // 4-bit asymmetric: s = 2/15, z = round(7.5) = 8, grid [-16/15, 14/15]
  FakeQuantResult d = fake_quantize(x, {4, false, false});
  near(d.out, {-16.0 / 15, -8.0 / 15, 4.0 / 15, 12.0 / 15, 14.0 / 15});
  CHECK(d.zero_point.item() == 8.0);
  CHECK(d.scale.item() == doctest::Approx(2.0 / 15));
}

TEST_CASE("fake_quantize: exact .5 cases round half to even") {
  for (DType dt : {DType::Float32, DType::Float64}) {
    // symmetric 8-bit with max|x| = 127: s = 1 exactly
    Tensor x = Tensor::from_vector<double>({0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, 127}, {8}).to(dt);
    FakeQuantResult r = fake_quantize(x, {8, true, false});
    CHECK(r.scale.item() == 1.0);
    CHECK(r.out.to(DType::Float64).to_vector<double>() == std::vector<double>{0, 2, 2, 0, -2, -2, 4, 127});
    // asymmetric 8-bit over [0, 255]: s = 1, z = 0
    Tensor y = Tensor::from_vector<double>({0, 0.5, 1.5, 2.5, 254.5, 255}, {6}).to(dt);
    FakeQuantResult u = fake_quantize(y, {8, false, false});
    CHECK(u.scale.item() == 1.0);
    CHECK(u.zero_point.item() == 0.0);
    CHECK(u.out.to(DType::Float64).to_vector<double>() == std::vector<double>{0, 0, 2, 2, 254, 255});
  }
}

TEST_CASE("fake_quantize: at most 2^b distinct levels per range (2^b - 1 symmetric)") {
  for (int bits : {2, 3, 4}) {
    for (bool sym : {true, false}) {
      Tensor x = rand_t({3, 4000}, 11 + bits, -2, 2, DType::Float32);
      FakeQuantResult r = fake_quantize(x, {bits, sym, true});
      std::vector<float> o = r.out.to_vector<float>();
      const size_t cap = sym ? (size_t{1} << bits) - 1 : size_t{1} << bits;
      for (int64_t c = 0; c < 3; ++c) {
        size_t n = distinct_values(o, c * 4000, (c + 1) * 4000);
        CHECK(n <= cap);
        CHECK(n >= cap - 1);  // 4000 uniform samples reach (almost) every level
      }
    }
  }
}

TEST_CASE("fake_quantize: zero is exactly representable in asymmetric mode") {
  Generator g(5);
  for (int trial = 0; trial < 50; ++trial) {
    const double lo = -3 * g.uniform() - 1e-3, hi = 5 * g.uniform() + 1e-3;
    Tensor x = Tensor::rand({64}, g, lo, hi, DType::Float32);
    x.data<float>()[17] = 0.0f;
    for (int bits : {2, 3, 4, 8}) {
      FakeQuantResult r = fake_quantize(x, {bits, false, false});
      CHECK(r.out.data<float>()[17] == 0.0f);
      const float z = r.zero_point.data<float>()[0];
      CHECK(z == std::nearbyint(z));
      CHECK(z >= 0);
      CHECK(z <= float((1 << bits) - 1));
    }
  }
  // an all-positive tensor gets z = 0, an all-negative one z = qmax
  CHECK(fake_quantize(rand_t({10}, 3, 1, 2, DType::Float32), {4, false, false}).zero_point.item() == 0.0);
  CHECK(fake_quantize(rand_t({10}, 3, -2, -1, DType::Float32), {4, false, false}).zero_point.item() == 15.0);
}

TEST_CASE("fake_quantize: 1-bit sign with s = mean|x| and sign(0) = +1") {
  Tensor x = Tensor::from_vector<double>({-0.5, 0, 1.5, -2, 0, 0, 0, 0}, {2, 4});
  FakeQuantResult pc = fake_quantize(x, {1, true, true});
  CHECK(pc.scale.to_vector<double>() == std::vector<double>{1.0, 0.0});
  CHECK(pc.out.to_vector<double>() == std::vector<double>{-1, 1, 1, -1, 0, 0, 0, 0});
  FakeQuantResult pt = fake_quantize(x, {1, true, false});
  CHECK(pt.scale.item() == 0.5);
  CHECK(pt.out.to_vector<double>() == std::vector<double>{-0.5, 0.5, 0.5, -0.5, 0.5, 0.5, 0.5, 0.5});
  CHECK_THROWS_WITH_AS(fake_quantize(x, {1, false, false}), doctest::Contains("needs symmetric = true"), Error);
}

TEST_CASE("fake_quantize: degenerate ranges give scale 1 and no NaN") {
  for (bool sym : {true, false}) {
    Tensor z = Tensor::zeros({3, 5});
    FakeQuantResult r = fake_quantize(z, {4, sym, true});
    CHECK(r.scale.to_vector<float>() == std::vector<float>{1, 1, 1});
    CHECK(r.zero_point.to_vector<float>() == std::vector<float>{0, 0, 0});
    CHECK(r.out.to_vector<float>() == std::vector<float>(15, 0.0f));
    // a subnormal range: the step would underflow, so it falls back to 1 as well
    Tensor t = Tensor::from_vector<float>({1e-44f, -2e-45f}, {2});
    FakeQuantResult u = fake_quantize(t, {8, sym, false});
    CHECK(u.scale.item() == 1.0);
    for (float v : u.out.to_vector<float>()) CHECK(v == 0.0f);
  }
}

TEST_CASE("fake_quantize: large tensors (OpenMP path) match the reference and do not depend on threads") {
  Tensor x = rand_t({3, 50000}, 21, -1.5, 2.5, DType::Float32);
  for (bool per_channel : {false, true})
    for (int bits : {1, 4}) {
      CAPTURE(per_channel);
      CAPTURE(bits);
      const int prev = omp_get_max_threads();
      omp_set_num_threads(1);
      FakeQuantResult one = fake_quantize(x, {bits, true, per_channel});
      omp_set_num_threads(std::max(prev, 2));
      FakeQuantResult many = fake_quantize(x, {bits, true, per_channel});
      omp_set_num_threads(prev);
      CHECK(one.out.to_vector<float>() == many.out.to_vector<float>());
      CHECK(one.scale.to_vector<float>() == many.scale.to_vector<float>());
      if (bits > 1) CHECK(many.out.to_vector<float>() == naive_fake_quant(x.to_vector<float>(), per_channel ? 3 : 1, bits, true).out);
    }
}

TEST_CASE("fake_quantize_range and observe_range agree with fake_quantize") {
  for (bool sym : {true, false}) {
    Tensor x = rand_t({4, 10}, 8, -1, 2, DType::Float64);
    FakeQuantOptions opt{4, sym, true};
    auto [lo, hi] = observe_range(x, opt);
    FakeQuantResult a = fake_quantize(x, opt), b = fake_quantize_range(x, lo, hi, opt);
    CHECK(a.out.to_vector<double>() == b.out.to_vector<double>());
    CHECK(a.scale.to_vector<double>() == b.scale.to_vector<double>());
    if (sym) CHECK(lo.to_vector<double>() == neg(hi).to_vector<double>());
  }
  Tensor x = Tensor::from_vector<float>({-2, -1, 0, 1, 2}, {5});
  FakeQuantResult r = fake_quantize_range(x, Tensor::full({1}, -1), Tensor::full({1}, 1), {2, true, false});
  CHECK(r.out.to_vector<float>() == std::vector<float>{-1, -1, 0, 1, 1});
  CHECK_THROWS_WITH_AS(fake_quantize_range(x, Tensor::full({2}, -1), Tensor::full({2}, 1), {2, true, false}),
                       doctest::Contains("expected 1"), Error);
  CHECK_THROWS_WITH_AS(fake_quantize_range(x, Tensor::full({1}, -1, DType::Float64), Tensor::full({1}, 1), {2, true, false}),
                       doctest::Contains("dtypes and devices must match"), Error);
}

TEST_CASE("fake_quantize: argument errors are clear") {
  Tensor x = Tensor::ones({4});
  CHECK_THROWS_WITH_AS(fake_quantize(x, {9, true, false}), doctest::Contains("(1 = binary sign), got 9"), Error);
  CHECK_THROWS_WITH_AS(fake_quantize(x, {0, true, false}), doctest::Contains("(1 = binary sign), got 0"), Error);
  CHECK_THROWS_WITH_AS(fake_quantize(Tensor::zeros({4}, DType::Int64), {8, true, false}), doctest::Contains("float32 or float64"), Error);
  CHECK_THROWS_WITH_AS(fake_quantize(Tensor::scalar(1), {8, true, true}), doctest::Contains("axis 0"), Error);
}

TEST_CASE("pact / lsq / dorefa forwards match their formulas") {
  Tensor x = rand_t({3, 40}, 31, -2, 4, DType::Float64);
  std::vector<double> xv = x.to_vector<double>();
  // PACT 3 bits, alpha per channel
  std::vector<double> alpha{1.0, 2.5, 0.7};
  std::vector<double> p = pact_quantize(x, Tensor::from_vector<double>(alpha, {3}), 3).to_vector<double>();
  for (size_t i = 0; i < xv.size(); ++i) {
    const double a = alpha[i / 40], s = a / 7, y = std::min(std::max(xv[i], 0.0), a);
    CHECK(p[i] == doctest::Approx(naive_round(y / s) * s).epsilon(1e-12));
  }
  CHECK(distinct_values(p, 0, 40) <= 8);
  // LSQ 4 bits signed (-8..7) and unsigned (0..15), step per tensor
  for (bool sgn : {true, false}) {
    const double s = 0.3, qn = sgn ? 8 : 0, qp = sgn ? 7 : 15;
    std::vector<double> l = lsq_quantize(x, Tensor::full({1}, s, DType::Float64), 4, sgn).to_vector<double>();
    for (size_t i = 0; i < xv.size(); ++i)
      CHECK(l[i] == doctest::Approx(naive_round(std::min(std::max(xv[i] / s, -qn), qp)) * s).epsilon(1e-12));
  }
  // DoReFa 2 bits: levels {-1, -1/3, 1/3, 1}
  std::vector<double> d = dorefa_quantize(x, 2, false).to_vector<double>();
  double m = 0;
  for (double v : xv) m = std::max(m, std::fabs(std::tanh(v)));
  std::set<double> levels;
  for (size_t i = 0; i < xv.size(); ++i) {
    const double want = 2 * naive_round(3 * (std::tanh(xv[i]) / (2 * m) + 0.5)) / 3 - 1;
    CHECK(d[i] == doctest::Approx(want).epsilon(1e-12));
    levels.insert(d[i]);
  }
  CHECK(levels.size() == 4);
  CHECK(*levels.begin() == doctest::Approx(-1));
  CHECK(*levels.rbegin() == doctest::Approx(1));
  // errors
  CHECK_THROWS_WITH_AS(pact_quantize(x, Tensor::full({1}, 0.0, DType::Float64), 4), doctest::Contains("must be > 0"), Error);
  CHECK_THROWS_WITH_AS(lsq_quantize(x, Tensor::full({2}, 0.1, DType::Float64), 4, true), doctest::Contains("expected 3"), Error);
  CHECK_THROWS_WITH_AS(lsq_bounds(1, true), doctest::Contains("bits must be in 2..8"), Error);
}

TEST_CASE("per-tensor quantizers keep a channels-last input's layout, with the same values and gradients") {
  Tensor x = rand_t({3, 6, 4, 5}, 31, -1.5, 2.5, DType::Float32), w = rand_t({3, 6, 4, 5}, 32, -1, 1, DType::Float32);
  Tensor alpha = Tensor::full({1}, 1.7), step = Tensor::full({1}, 0.3);
  using Q = std::function<Tensor(const Tensor&)>;
  const std::vector<std::pair<const char*, Q>> quantizers = {
      {"minmax", [](const Tensor& t) { return fake_quantize(t, {4, false, false}).out; }},
      {"pact", [&](const Tensor& t) { return pact_quantize(relu(t), alpha, 4); }},
      {"lsq", [&](const Tensor& t) { return lsq_quantize(t, step, 4, true); }},
      {"dorefa", [](const Tensor& t) { return dorefa_quantize(t, 4, false); }},
  };
  for (const auto& entry : quantizers) {
    const std::string name = entry.first;  // clang 14: a structured binding cannot be captured (CAPTURE is a lambda)
    const Q& q = entry.second;
    CAPTURE(name);
    Tensor a = x.clone().set_requires_grad(true), b = x.clone().set_requires_grad(true);
    Tensor ya = q(a), yb = q(to_channels_last(b));
    CHECK(is_strictly_channels_last(yb));
    CHECK(ya.to_vector<float>() == yb.contiguous().to_vector<float>());
    sum(mul(ya, w)).backward();
    sum(mul(yb, w)).backward();
    CHECK(a.grad().to_vector<float>() == b.grad().contiguous().to_vector<float>());
  }
}
