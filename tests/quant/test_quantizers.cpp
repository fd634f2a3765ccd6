// test_quantizers.cpp — the named quantizers: factory and its errors, minmax = fake_quantize,
// ema calibration (x returned unchanged for N batches, then quantized), running-range
// arithmetic, eval freezing, buffers as named in-place tensors, lsq first-call step, dorefa.
#include <doctest/doctest.h>

#include <algorithm>

#include "quant/quantizer.h"
#include "tests/quant/quant_test_util.h"

using namespace pfq;
using namespace pfq::quant;
using namespace pfq::quant::test;

namespace {

QuantSpec spec_of(int bits, bool sym, int64_t calib = 50) {
  QuantSpec s;
  s.bits = bits;
  s.symmetric = sym;
  s.calib_batches = calib;
  return s;
}

Tensor named(const NamedTensorList& l, const std::string& name) {
  for (const auto& [n, t] : l)
    if (n == name) return t;
  FAIL("no tensor named ", name);
  return Tensor();
}

}  // namespace

TEST_CASE("make_quantizer: every name builds its quantizer; bad names and specs are clear errors") {
  QuantSpec sym = spec_of(4, true), asym = spec_of(4, false);
  for (const auto& n : quantizer_names()) {
    auto q = make_quantizer(n, n == "pact" ? asym : sym);
    CHECK(q->name() == n);
  }
  // the built-ins first (registered quantizers, see below, follow them)
  const std::vector<std::string> names = quantizer_names();
  CHECK(std::vector<std::string>(names.begin(), names.begin() + 5) ==
        std::vector<std::string>{"minmax", "ema", "pact", "lsq", "dorefa"});
  CHECK_THROWS_WITH_AS(make_quantizer("foo", sym), doctest::Contains("unknown quantizer \"foo\" (known: minmax, ema, pact, lsq, dorefa"), Error);
  CHECK_THROWS_WITH_AS(make_quantizer("minmax", spec_of(9, true)), doctest::Contains("bits must be in 1..8, got 9"), Error);
  CHECK_THROWS_WITH_AS(make_quantizer("minmax", spec_of(1, false)), doctest::Contains("needs symmetric = true"), Error);
  CHECK_THROWS_WITH_AS(make_quantizer("ema", spec_of(1, true)), doctest::Contains("bits must be in 2..8, got 1"), Error);
  CHECK_THROWS_WITH_AS(make_quantizer("lsq", spec_of(0, true)), doctest::Contains("bits must be in 2..8, got 0"), Error);
  CHECK_THROWS_WITH_AS(make_quantizer("pact", sym), doctest::Contains("set symmetric = false"), Error);
  CHECK_THROWS_WITH_AS(make_quantizer("dorefa", asym), doctest::Contains("set symmetric = true"), Error);
  QuantSpec pc = sym;
  pc.per_channel = true;
  CHECK_THROWS_WITH_AS(make_quantizer("ema", pc), doctest::Contains("needs QuantSpec::channels"), Error);
  CHECK_THROWS_WITH_AS(make_quantizer("lsq", pc), doctest::Contains("needs QuantSpec::channels"), Error);
  QuantSpec bad = sym;
  bad.ema_decay = 1.0;
  CHECK_THROWS_WITH_AS(make_quantizer("ema", bad), doctest::Contains("ema_decay must be in [0, 1)"), Error);
  // inputs must match the spec's dtype and channel count
  auto q = make_quantizer("minmax", sym);
  CHECK_THROWS_WITH_AS(q->forward(Tensor::ones({3}, DType::Float64), true), doctest::Contains("set QuantSpec::dtype"), Error);
  pc.channels = 3;
  auto qc = make_quantizer("lsq", pc);
  CHECK_THROWS_WITH_AS(qc->forward(Tensor::ones({4, 2}), true), doctest::Contains("per-channel over 3 channels"), Error);
}

namespace {
// A quantizer written outside the library: rounds to multiples of 1/2^bits, no state.
class GridQuantizer : public Quantizer {
 public:
  using Quantizer::Quantizer;
  Tensor forward(const Tensor& x, bool) override {
    check_input(x);
    const double n = double(1 << spec_.bits);
    return mul(round_ste(mul(x, n)), 1.0 / n);
  }
  std::string name() const override { return "test-grid"; }
};
}  // namespace

TEST_CASE("register_quantizer: a quantizer written outside pfq is built by name; taken names are errors") {
  QuantSpec sym = spec_of(2, true);
  CHECK_THROWS_WITH_AS(make_quantizer("test-grid", sym), doctest::Contains("unknown quantizer \"test-grid\""), Error);
  register_quantizer("test-grid", [](const QuantSpec& s) { return std::make_unique<GridQuantizer>(s); });
  const std::vector<std::string> names = quantizer_names();
  CHECK(std::find(names.begin(), names.end(), "test-grid") != names.end());
  auto q = make_quantizer("test-grid", sym);
  REQUIRE(q != nullptr);
  CHECK(q->name() == "test-grid");
  CHECK(q->forward(Tensor::from_vector(std::vector<float>{0.3f, -0.6f}, {2}), true).to_vector<float>() ==
        std::vector<float>{0.25f, -0.5f});
  // the checks every quantizer gets still run before the factory
  QuantSpec int_dtype = sym;
  int_dtype.dtype = DType::Int64;
  CHECK_THROWS_WITH_AS(make_quantizer("test-grid", int_dtype), doctest::Contains("must be float32 or float64"), Error);
  CHECK_THROWS_WITH_AS(register_quantizer("test-grid", [](const QuantSpec& s) { return std::make_unique<GridQuantizer>(s); }),
                       doctest::Contains("\"test-grid\" exists already"), Error);
  CHECK_THROWS_WITH_AS(register_quantizer("lsq", [](const QuantSpec& s) { return std::make_unique<GridQuantizer>(s); }),
                       doctest::Contains("\"lsq\" exists already"), Error);
  register_quantizer("test-null", [](const QuantSpec&) { return std::unique_ptr<Quantizer>(); });
  CHECK_THROWS_WITH_AS(make_quantizer("test-null", sym), doctest::Contains("returned no quantizer"), Error);
}

TEST_CASE("minmax: equals fake_quantize of the current tensor on every call") {
  for (bool sym : {true, false}) {
    auto q = make_quantizer("minmax", spec_of(3, sym));
    for (uint64_t seed : {1, 2}) {
      Tensor x = rand_t({6, 7}, seed, -1, 2, DType::Float32);
      FakeQuantResult r = fake_quantize(x, {3, sym, false});
      CHECK(q->forward(x, true).to_vector<float>() == r.out.to_vector<float>());
      CHECK(q->last_scale().to_vector<float>() == r.scale.to_vector<float>());
      CHECK(q->last_zero_point().to_vector<float>() == r.zero_point.to_vector<float>());
    }
    CHECK(q->buffers().empty());
  }
}

TEST_CASE("ema: calibration returns x for N batches, then quantizes with the running range") {
  auto q = make_quantizer("ema", spec_of(4, false, 3));
  auto* ema = dynamic_cast<EmaQuantizer*>(q.get());
  REQUIRE(ema != nullptr);
  Tensor rmin = named(q->buffers(), "running_min"), rmax = named(q->buffers(), "running_max");
  // batch ranges [0, 4], [-1, 2], [0.5, 6], [0, 3]
  std::vector<Tensor> xs = {Tensor::from_vector<float>({0, 1, 2, 4}, {4}), Tensor::from_vector<float>({-1, 2, 0, 1}, {4}),
                            Tensor::from_vector<float>({0.5, 6, 1, 2}, {4}), Tensor::from_vector<float>({0, 0.7, 3, 1.3}, {4})};
  double lo = 0, hi = 4;
  for (int b = 0; b < 3; ++b) {
    Tensor y = q->forward(xs[b], true);
    CHECK(y.to_vector<float>() == xs[b].to_vector<float>());
    CHECK(ema->num_batches() == b + 1);
    CHECK(ema->calibrated() == (b == 2));  // on once 3 batches were observed (eval quantizes)
    if (b > 0) {
      const double blo[] = {0, -1, 0.5}, bhi[] = {4, 2, 6};
      lo = 0.9 * lo + 0.1 * blo[b];
      hi = 0.9 * hi + 0.1 * bhi[b];
    }
    CHECK(rmin.item() == doctest::Approx(lo).epsilon(1e-6));
    CHECK(rmax.item() == doctest::Approx(hi).epsilon(1e-6));
  }
  // the 4th training batch quantizes with the range updated by itself
  lo = 0.9 * lo + 0.1 * 0;
  hi = 0.9 * hi + 0.1 * 3;
  Tensor y4 = q->forward(xs[3], true);
  CHECK(ema->calibrated());
  CHECK(rmax.item() == doctest::Approx(hi).epsilon(1e-6));
  FakeQuantResult want = fake_quantize_range(xs[3], rmin, rmax, {4, false, false});
  CHECK(y4.to_vector<float>() == want.out.to_vector<float>());
  CHECK(y4.to_vector<float>() != xs[3].to_vector<float>());
  CHECK(q->last_scale().item() == doctest::Approx((hi - lo) / 15).epsilon(1e-6));
  // eval: frozen buffers, quantized with them
  const float frozen_min = rmin.data<float>()[0], frozen_max = rmax.data<float>()[0];
  Tensor big = Tensor::from_vector<float>({-10, 0.33f, 20, 1}, {4});
  Tensor ye = q->forward(big, false);
  CHECK(rmin.data<float>()[0] == frozen_min);
  CHECK(rmax.data<float>()[0] == frozen_max);
  CHECK(ema->num_batches() == 4);
  CHECK(ye.to_vector<float>() == fake_quantize_range(big, rmin, rmax, {4, false, false}).out.to_vector<float>());
  CHECK(ye.data<float>()[2] < 5.0f);  // 20 clipped to the frozen range (~[-0.04, 3.92])
}

TEST_CASE("ema: eval before calibration returns x; calib 0 quantizes from the first batch; symmetric range") {
  auto q = make_quantizer("ema", spec_of(2, true, 2));
  Tensor x = Tensor::from_vector<float>({-1, 0.3f, 0.6f, 1}, {4});
  CHECK(q->forward(x, false).to_vector<float>() == x.to_vector<float>());  // nothing observed
  q->forward(x, true);
  CHECK(q->forward(x, false).to_vector<float>() == x.to_vector<float>());  // 1 of 2 batches
  CHECK(named(q->buffers(), "running_min").item() == -1.0);
  CHECK(named(q->buffers(), "running_max").item() == 1.0);
  auto q0 = make_quantizer("ema", spec_of(2, true, 0));
  CHECK(q0->forward(x, true).to_vector<float>() == std::vector<float>{-1, 0, 1, 1});
  // buffers are the live state: writing them (as a checkpoint load does) changes the quantizer
  auto q1 = make_quantizer("ema", spec_of(2, true, 1));
  named(q1->buffers(), "running_min").fill_(-2);
  named(q1->buffers(), "running_max").fill_(2);
  named(q1->buffers(), "num_batches").fill_(1);
  Tensor x2 = Tensor::from_vector<float>({-3, 0.3f, 0.9f, 1.5f}, {4});  // /2: -1.5, 0.15, 0.45, 0.75
  CHECK(q1->forward(x2, false).to_vector<float>() == std::vector<float>{-2, 0, 0, 2});
}

TEST_CASE("ema: per-channel buffers track each channel") {
  QuantSpec s = spec_of(8, false, 0);
  s.per_channel = true;
  s.channels = 2;
  auto q = make_quantizer("ema", s);
  q->forward(Tensor::from_vector<float>({-1, 2, 0, 5}, {2, 2}), true);
  CHECK(named(q->buffers(), "running_min").to_vector<float>() == std::vector<float>{-1, 0});
  CHECK(named(q->buffers(), "running_max").to_vector<float>() == std::vector<float>{2, 5});
}

TEST_CASE("lsq: step = 2 mean|x| / sqrt(Qp) on the first call only; per-channel steps") {
  QuantSpec s = spec_of(4, true);
  auto q = make_quantizer("lsq", s);
  Tensor x = Tensor::from_vector<float>({-1, 2, -3, 4}, {4});
  q->forward(x, true);
  Tensor step = named(q->parameters(), "step");
  CHECK(step.item() == doctest::Approx(2 * 2.5 / std::sqrt(7.0)));
  CHECK(named(q->buffers(), "initialized").item() == 1.0);
  q->forward(mul(x, 10.0), true);
  CHECK(step.item() == doctest::Approx(2 * 2.5 / std::sqrt(7.0)));
  s.per_channel = true;
  s.channels = 2;
  s.symmetric = false;
  auto qc = make_quantizer("lsq", s);
  Tensor y = qc->forward(Tensor::from_vector<float>({1, 3, 0, 0}, {2, 2}), true);
  CHECK(named(qc->parameters(), "step").to_vector<float>()[0] == doctest::Approx(2 * 2.0 / std::sqrt(15.0)));
  CHECK(named(qc->parameters(), "step").to_vector<float>()[1] == 1.0f);  // all-zero channel
  CHECK(y.to_vector<float>()[2] == 0.0f);
}

TEST_CASE("pact and dorefa quantizers: output grids") {
  QuantSpec s = spec_of(2, false);
  s.pact_alpha = 3.0;
  auto p = make_quantizer("pact", s);
  CHECK(named(p->parameters(), "alpha").item() == 3.0);
  Tensor x = Tensor::from_vector<float>({-1, 0.4f, 1.6f, 2.4f, 7}, {5});
  CHECK(p->forward(x, true).to_vector<float>() == std::vector<float>{0, 0, 2, 2, 3});
  CHECK(p->last_scale().item() == 1.0);
  auto d = make_quantizer("dorefa", spec_of(3, true));
  Tensor w = rand_t({4, 50}, 9, -1, 1, DType::Float32);
  std::vector<float> o = d->forward(w, true).to_vector<float>();
  CHECK(distinct_values(o, 0, 200) <= 8);
  for (float v : o) {
    CHECK(v >= -1.0f);
    CHECK(v <= 1.0f);
  }
}
