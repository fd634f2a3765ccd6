// test_quant_gradients.cpp — gradients of the quant/ ops and quantizers against their formulas
// (finite differences do not apply across rounding steps): the straight-through mask of the
// fused fake-quantizer for every option, 1-bit sign, PACT dx/dalpha, LSQ dx/dstep, DoReFa dx,
// and the same through the Quantizer objects' learnable leaves. float64 throughout.
#include <doctest/doctest.h>
#include <omp.h>

#include "quant/quantizer.h"
#include "tests/quant/quant_test_util.h"

using namespace pfq;
using namespace pfq::quant;
using namespace pfq::quant::test;

namespace {

Tensor rand64(const Shape& s, uint64_t seed, double lo, double hi, bool grad = true) {
  Tensor t = rand_t(s, seed, lo, hi, DType::Float64);
  return t.set_requires_grad(grad);
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol = 1e-12) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i] == doctest::Approx(want[i]).epsilon(tol));
  }
}

struct Counts {
  int inside = 0, outside = 0;
};

}  // namespace

TEST_CASE("fake_quantize gradient: straight-through inside [(qmin - z) s, (qmax - z) s], 0 outside") {
  uint64_t seed = 100;
  for (int bits : {2, 3, 4, 8})
    for (bool sym : {true, false})
      for (bool per_channel : {false, true})
        for (bool given_range : {false, true}) {
          CAPTURE(bits);
          CAPTURE(sym);
          CAPTURE(per_channel);
          CAPTURE(given_range);
          Tensor x = rand64({4, 30}, seed++, -2, 2);
          Tensor g = rand_t({4, 30}, seed++, -1, 1, DType::Float64);
          const int64_t C = per_channel ? 4 : 1;
          FakeQuantOptions opt{bits, sym, per_channel};
          // a given range narrower than the data, so elements fall outside the clip range
          FakeQuantResult r = given_range ? fake_quantize_range(x, Tensor::full({C}, -1.1, DType::Float64),
                                                                Tensor::full({C}, 0.9, DType::Float64), opt)
                                          : fake_quantize(x, opt);
          r.out.backward(g);
          const auto grid = cpu::quant_grid(bits, sym);
          std::vector<double> xv = x.to_vector<double>(), gv = g.to_vector<double>(), want(xv.size());
          std::vector<double> s = r.scale.to_vector<double>(), z = r.zero_point.to_vector<double>();
          Counts n;
          for (size_t i = 0; i < xv.size(); ++i) {
            const size_t c = per_channel ? i / 30 : 0;
            const bool in = xv[i] >= (grid.qmin - z[c]) * s[c] && xv[i] <= (grid.qmax - z[c]) * s[c];
            want[i] = in ? gv[i] : 0.0;
            (in ? n.inside : n.outside)++;
          }
          CHECK(x.grad().to_vector<double>() == want);
          CHECK(n.inside > 0);
          if (given_range) CHECK(n.outside > 0);
        }
}

TEST_CASE("fake_quantize gradient: hand mask of the 2-bit asymmetric case") {
  // s = 2/3, z = 2: clip range [-4/3, 2/3], so 0.74 and 1 get no gradient
  Tensor x = Tensor::from_vector<double>({-1, -0.5, 0.26, 0.74, 1}, {5}).set_requires_grad(true);
  fake_quantize(x, {2, false, false}).out.backward(Tensor::full({5}, 3.0, DType::Float64));
  CHECK(x.grad().to_vector<double>() == std::vector<double>{3, 3, 3, 0, 0});
}

TEST_CASE("fake_quantize gradient: 1-bit sign passes g where |x| <= 1") {
  Tensor x = Tensor::from_vector<double>({-2, -1, -0.3, 0, 0.5, 1, 1.5, 3}, {2, 4}).set_requires_grad(true);
  Tensor g = Tensor::from_vector<double>({1, 2, 3, 4, 5, 6, 7, 8}, {2, 4});
  fake_quantize(x, {1, true, true}).out.backward(g);
  CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 2, 3, 4, 5, 6, 0, 0});
}

TEST_CASE("pact gradient: dx = g on 0 <= x < alpha, dalpha = sum of g where x >= alpha") {
  for (bool per_channel : {false, true}) {
    CAPTURE(per_channel);
    Tensor x = rand64({3, 50}, 7, -1, 3);
    x.data<double>()[5] = 1.5;  // exactly at alpha (channel 0) -> alpha side
    x.data<double>()[6] = 0.0;  // exactly at 0 -> passes to x
    std::vector<double> av = per_channel ? std::vector<double>{1.5, 2.0, 0.8} : std::vector<double>{1.5};
    Tensor alpha = Tensor::from_vector<double>(av, {static_cast<int64_t>(av.size())}).set_requires_grad(true);
    Tensor g = rand_t({3, 50}, 8, -1, 1, DType::Float64);
    pact_quantize(x, alpha, 4).backward(g);
    std::vector<double> xv = x.to_vector<double>(), gv = g.to_vector<double>(), dx(xv.size()), da(av.size(), 0.0);
    for (size_t i = 0; i < xv.size(); ++i) {
      const size_t c = per_channel ? i / 50 : 0;
      dx[i] = (xv[i] >= 0 && xv[i] < av[c]) ? gv[i] : 0;
      if (xv[i] >= av[c]) da[c] += gv[i];
    }
    CHECK(x.grad().to_vector<double>() == dx);
    CHECK(dx[6] == gv[6]);
    CHECK(dx[5] == 0.0);
    check_close(alpha.grad().to_vector<double>(), da);
    for (double d : da) CHECK(d != 0.0);
  }
}

TEST_CASE("lsq gradient: dx STE inside, dstep = gs * sum g * (round(v) - v | -Qn | Qp)") {
  for (bool sgn : {true, false})
    for (bool per_channel : {false, true}) {
      CAPTURE(sgn);
      CAPTURE(per_channel);
      const int bits = 3;
      const double qn = sgn ? 4 : 0, qp = sgn ? 3 : 7;
      Tensor x = rand64({2, 64}, 11, -2, 3);
      std::vector<double> sv = per_channel ? std::vector<double>{0.3, 0.25} : std::vector<double>{0.3};
      Tensor step = Tensor::from_vector<double>(sv, {static_cast<int64_t>(sv.size())}).set_requires_grad(true);
      Tensor g = rand_t({2, 64}, 12, -1, 1, DType::Float64);
      lsq_quantize(x, step, bits, sgn).backward(g);
      const double K = per_channel ? 64 : 128, gs = 1 / std::sqrt(K * qp);
      std::vector<double> xv = x.to_vector<double>(), gv = g.to_vector<double>(), dx(xv.size()), ds(sv.size(), 0.0);
      Counts n;
      for (size_t i = 0; i < xv.size(); ++i) {
        const size_t c = per_channel ? i / 64 : 0;
        const double v = xv[i] / sv[c];
        const bool in = v >= -qn && v <= qp;
        dx[i] = in ? gv[i] : 0;
        (in ? n.inside : n.outside)++;
        ds[c] += gv[i] * (v <= -qn ? -qn : (v >= qp ? qp : naive_round(v) - v));
      }
      for (double& d : ds) d *= gs;
      CHECK(x.grad().to_vector<double>() == dx);
      check_close(step.grad().to_vector<double>(), ds);
      CHECK(n.inside > 0);
      CHECK(n.outside > 0);
    }
}

TEST_CASE("dorefa gradient: dx = g * (1 - tanh(x)^2) / max|tanh(x)| (max held constant)") {
  for (bool per_channel : {false, true}) {
    Tensor x = rand64({3, 20}, 21, -1.5, 1.5);
    Tensor g = rand_t({3, 20}, 22, -1, 1, DType::Float64);
    dorefa_quantize(x, 3, per_channel).backward(g);
    std::vector<double> xv = x.to_vector<double>(), gv = g.to_vector<double>(), want(xv.size()), m(3, 0.0);
    for (size_t i = 0; i < xv.size(); ++i) {
      const size_t c = per_channel ? i / 20 : 0;
      m[c] = std::max(m[c], std::fabs(std::tanh(xv[i])));
    }
    for (size_t i = 0; i < xv.size(); ++i) {
      const double t = std::tanh(xv[i]);
      want[i] = gv[i] * (1 - t * t) / m[per_channel ? i / 20 : 0];
    }
    check_close(x.grad().to_vector<double>(), want);
  }
}

TEST_CASE("quantizers: learnable leaves receive the formula gradients") {
  QuantSpec spec;
  spec.bits = 4;
  spec.dtype = DType::Float64;
  // pact: alpha is a leaf with requires_grad; dalpha = sum g over x >= alpha
  spec.symmetric = false;
  spec.pact_alpha = 1.0;
  auto pact = make_quantizer("pact", spec);
  Tensor alpha = pact->parameters().at(0).second;
  CHECK(pact->parameters().at(0).first == "alpha");
  CHECK(alpha.is_leaf());
  CHECK(alpha.requires_grad());
  Tensor x = rand64({5, 8}, 31, -0.5, 2);
  sum(pact->forward(x, true)).backward();
  double want = 0;
  for (double v : x.to_vector<double>()) want += v >= 1.0 ? 1.0 : 0.0;
  CHECK(want > 0);
  CHECK(alpha.grad().item() == want);
  // lsq: step initialised on the first call, then its gradient follows the formula
  spec.symmetric = true;
  auto lsq = make_quantizer("lsq", spec);
  Tensor step = lsq->parameters().at(0).second;
  CHECK(step.is_leaf());
  CHECK(step.requires_grad());
  Tensor w = rand64({5, 8}, 32, -1, 1);
  sum(lsq->forward(w, true)).backward();
  const double s = step.item();
  double ds = 0;
  for (double v : w.to_vector<double>()) {
    const double r = v / s;
    ds += r <= -8 ? -8 : (r >= 7 ? 7 : naive_round(r) - r);
  }
  CHECK(step.grad().item() == doctest::Approx(ds / std::sqrt(40.0 * 7)).epsilon(1e-12));
  // minmax / ema / dorefa have no parameters; their input gradient is the STE / formula
  CHECK(make_quantizer("minmax", spec)->parameters().empty());
  Tensor y = rand64({6}, 33, -1, 1);
  sum(make_quantizer("minmax", spec)->forward(y, true)).backward();
  CHECK(y.grad().to_vector<double>() == std::vector<double>(6, 1.0));
}

TEST_CASE("quant gradients with reductions do not depend on the thread count") {
  Tensor x = rand64({2, 40000}, 41, -1, 3, false);
  Tensor g = rand_t({2, 40000}, 42, -1, 1, DType::Float64);
  auto grads = [&](int threads) {
    const int prev = omp_get_max_threads();
    omp_set_num_threads(threads);
    Tensor a = Tensor::full({1}, 1.2, DType::Float64).set_requires_grad(true);
    Tensor s = Tensor::full({2}, 0.1, DType::Float64).set_requires_grad(true);
    pact_quantize(x, a, 4).backward(g);
    lsq_quantize(x, s, 4, false).backward(g);
    omp_set_num_threads(prev);
    return std::make_pair(a.grad().item(), s.grad().to_vector<double>());
  };
  auto one = grads(1), two = grads(2);
  CHECK(one.first == two.first);
  CHECK(one.second == two.second);
}
