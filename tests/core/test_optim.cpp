// test_optim.cpp — SGD (plain, momentum, dampening, Nesterov, weight decay and its BN/bias
// exclusion), Adam and AdamW against updates written out by hand; state export/import
// round-trips; argument and gradient errors. Schedules are in test_lr_schedule.cpp.
#include <doctest/doctest.h>

#include <cmath>

#include "core/ops.h"
#include "core/optim/adam.h"
#include "core/optim/sgd.h"

using namespace pfq;
using namespace pfq::optim;

namespace {
Tensor param(const std::vector<double>& v, Shape shape = {}) {
  if (shape.empty()) shape = {static_cast<int64_t>(v.size())};
  return Tensor::from_vector(v, shape).set_requires_grad(true);
}
void set_grad(Tensor& p, const std::vector<double>& g) { p.set_grad(Tensor::from_vector(g, p.shape())); }
std::vector<double> vals(const Tensor& t) { return t.to_vector<double>(); }
// Runs one step of `opt` on a one-parameter list with gradient g and returns the value.
double step_with(Optimizer& opt, Tensor& p, double g) {
  set_grad(p, {g});
  opt.step();
  return p.item();
}
}  // namespace

TEST_CASE("sgd: plain steps are p -= lr * g, in place") {
  Tensor w = param({1.0, -2.0});
  const void* storage = w.raw_data();
  Sgd opt({{"w", w}}, {.lr = 0.1});
  set_grad(w, {0.5, 1.0});
  opt.step();  // [1 - 0.05, -2 - 0.1]
  CHECK(vals(w)[0] == doctest::Approx(0.95).epsilon(1e-14));
  CHECK(vals(w)[1] == doctest::Approx(-2.1).epsilon(1e-14));
  opt.step();  // same gradient again
  CHECK(vals(w)[0] == doctest::Approx(0.90).epsilon(1e-14));
  CHECK(vals(w)[1] == doctest::Approx(-2.2).epsilon(1e-14));
  CHECK(w.raw_data() == storage);
  CHECK(opt.step_count() == 2);
}

TEST_CASE("sgd: momentum, dampening and nesterov follow PyTorch's rule") {
  Tensor a = param({1.0});
  Sgd mom({{"a", a}}, {.lr = 0.1, .momentum = 0.9});
  CHECK(step_with(mom, a, 1.0) == doctest::Approx(0.9));     // buf = 1
  CHECK(step_with(mom, a, 0.5) == doctest::Approx(0.76));    // buf = 0.9 + 0.5 = 1.4
  CHECK(step_with(mom, a, -1.0) == doctest::Approx(0.734));  // buf = 1.26 - 1 = 0.26

  Tensor b = param({1.0});
  Sgd damp({{"b", b}}, {.lr = 0.1, .momentum = 0.9, .dampening = 0.5});
  CHECK(step_with(damp, b, 1.0) == doctest::Approx(0.9));    // first buf = g, undamped
  CHECK(step_with(damp, b, 0.5) == doctest::Approx(0.785));  // buf = 0.9 + 0.5 * 0.5 = 1.15

  Tensor c = param({1.0});
  Sgd nest({{"c", c}}, {.lr = 0.1, .momentum = 0.9, .nesterov = true});
  CHECK(step_with(nest, c, 1.0) == doctest::Approx(0.81));     // buf 1, d = 1 + 0.9 = 1.9
  CHECK(step_with(nest, c, 0.5) == doctest::Approx(0.634));    // buf 1.4, d = 0.5 + 1.26 = 1.76
  CHECK(step_with(nest, c, -1.0) == doctest::Approx(0.7106));  // buf 0.26, d = -1 + 0.234 = -0.766
}

TEST_CASE("sgd: weight decay and its BN/bias exclusion") {
  Tensor w = param({1.0, 2.0}, {1, 2});
  Sgd opt({{"fc.weight", w}}, {.lr = 0.1, .weight_decay = 0.1});
  set_grad(w, {0.0, 1.0});
  opt.step();  // d = [0.1, 1.2]
  CHECK(vals(w)[0] == doctest::Approx(0.99));
  CHECK(vals(w)[1] == doctest::Approx(1.88));
  opt.step();  // d = [0.099, 1.188]
  CHECK(vals(w)[0] == doctest::Approx(0.9801));
  CHECK(vals(w)[1] == doctest::Approx(1.7612));

  CHECK_FALSE(no_decay("conv.weight", Tensor::zeros({4, 3, 3, 3})));
  CHECK(no_decay("bn1.weight", Tensor::zeros({4})));
  CHECK(no_decay("fc.bias", Tensor::zeros({10})));
  CHECK(no_decay("odd.bias", Tensor::zeros({2, 2})));
  CHECK(no_decay("scale", Tensor::zeros({})));

  for (bool exclude : {true, false}) {
    Tensor cw = param({1.0, 2.0}, {1, 2}), gamma = param({1.0, 1.0}), bias = param({0.5, 0.5});
    Sgd ex({{"conv.weight", cw}, {"bn.weight", gamma}, {"fc.bias", bias}},
           {.lr = 0.1, .weight_decay = 0.1, .exclude_bn_bias = exclude});
    set_grad(cw, {0, 0});
    set_grad(gamma, {0, 0});
    set_grad(bias, {0, 0});
    ex.step();  // with zero gradients only the decay moves: p *= 1 - 0.01
    CHECK(vals(cw)[1] == doctest::Approx(1.98));
    CHECK(vals(gamma)[0] == doctest::Approx(exclude ? 1.0 : 0.99));
    CHECK(vals(bias)[0] == doctest::Approx(exclude ? 0.5 : 0.495));
  }
}

TEST_CASE("sgd: undefined gradients are skipped; zero_grad") {
  Tensor a = param({1.0}), b = param({2.0});
  Sgd opt({{"a", a}, {"b", b}}, {.lr = 0.1, .momentum = 0.9});
  set_grad(a, {1.0});
  opt.step();
  CHECK(a.item() == doctest::Approx(0.9));
  CHECK(b.item() == 2.0);
  auto st = opt.state_tensors();
  REQUIRE(st.size() == 2);  // "step" and a's buffer only
  CHECK(st[1].first == "momentum_buffer.a");
  opt.zero_grad(false);
  REQUIRE(a.grad().defined());
  CHECK(a.grad().item() == 0.0);
  opt.zero_grad();
  CHECK_FALSE(a.grad().defined());
}

TEST_CASE("adam: three steps by hand (lr 0.1, betas 0.9/0.999, eps 1e-8)") {
  Tensor p = param({1.0});
  Adam opt({{"p", p}}, {.lr = 0.1});
  // t=1, g=0.5: m = 0.05, v = 0.00025, bc1 = 0.1, sqrt(bc2) = sqrt(0.001)
  const double p1 = 1.0 - (0.1 / 0.1) * (0.05 / (std::sqrt(0.00025) / std::sqrt(0.001) + 1e-8));
  CHECK(p1 == doctest::Approx(0.900000002).epsilon(1e-12));
  CHECK(step_with(opt, p, 0.5) == doctest::Approx(p1).epsilon(1e-12));
  // t=2, g=-1: m = 0.045 - 0.1 = -0.055, v = 0.00024975 + 0.001 = 0.00124975, bc1 = 0.19, bc2 = 0.001999
  const double p2 = p1 - (0.1 / 0.19) * (-0.055 / (std::sqrt(0.00124975) / std::sqrt(0.001999) + 1e-8));
  CHECK(p2 == doctest::Approx(0.93661035424).epsilon(1e-10));
  CHECK(step_with(opt, p, -1.0) == doctest::Approx(p2).epsilon(1e-12));
  // t=3, g=0.25: m = -0.0495 + 0.025 = -0.0245, v = 0.00124850025 + 0.0000625, bc1 = 0.271, bc2 = 1 - 0.999^3
  const double bc2 = 1 - 0.999 * 0.999 * 0.999;
  const double p3 = p2 - (0.1 / 0.271) * (-0.0245 / (std::sqrt(0.00131100025) / std::sqrt(bc2) + 1e-8));
  CHECK(p3 == doctest::Approx(0.95027942034).epsilon(1e-10));
  CHECK(step_with(opt, p, 0.25) == doctest::Approx(p3).epsilon(1e-12));
  auto st = opt.state_tensors();
  REQUIRE(st.size() == 4);
  CHECK(st[1].first == "exp_avg.p");
  CHECK(st[1].second.item() == doctest::Approx(-0.0245).epsilon(1e-12));
  CHECK(st[2].first == "exp_avg_sq.p");
  CHECK(st[2].second.item() == doctest::Approx(0.00131100025).epsilon(1e-12));
  CHECK(st[3].first == "step.p");
  CHECK(st[3].second.item() == 3);
}

TEST_CASE("adam: L2 weight decay joins the gradient; AdamW decays the weight first") {
  Tensor p = param({2.0}, {1, 1});
  Adam l2({{"w", p}}, {.lr = 0.1, .weight_decay = 0.1});
  // g' = 0.5 + 0.1 * 2 = 0.7: the first Adam step moves by lr * 0.7/|0.7| (up to eps)
  CHECK(step_with(l2, p, 0.5) == doctest::Approx(1.9000000014285714).epsilon(1e-12));

  Tensor q = param({1.0});
  AdamW adamw({{"q", q}}, {.lr = 0.1, .weight_decay = 0.1});
  // t=1: q = 1 * (1 - 0.01) = 0.99, then the plain Adam step of the hand test above (-0.099999998)
  const double q1 = 0.99 - 0.1 * (0.05 / 0.1) / (std::sqrt(0.00025) / std::sqrt(0.001) + 1e-8);
  CHECK(q1 == doctest::Approx(0.890000002).epsilon(1e-12));
  CHECK(step_with(adamw, q, 0.5) == doctest::Approx(q1).epsilon(1e-12));
  const double q2 = q1 * 0.99 - (0.1 / 0.19) * (-0.055 / (std::sqrt(0.00124975) / std::sqrt(0.001999) + 1e-8));
  CHECK(q2 == doctest::Approx(0.91771035422).epsilon(1e-10));
  CHECK(step_with(adamw, q, -1.0) == doctest::Approx(q2).epsilon(1e-12));

  Tensor d = param({1.0});  // AdamW's default decay is PyTorch's 1e-2
  AdamW def({{"d", d}});
  CHECK(def.options().weight_decay == 0.01);
  CHECK(def.decoupled());
}

TEST_CASE("adam: a parameter without a gradient keeps its own step count; float32 path") {
  Tensor a = param({1.0}), b = param({1.0});
  Adam opt({{"a", a}, {"b", b}}, {.lr = 0.1});
  set_grad(a, {0.5});
  opt.step();
  set_grad(b, {0.5});
  opt.step();
  CHECK(b.item() == doctest::Approx(0.900000002).epsilon(1e-12));  // b's first step uses t = 1
  for (auto& [name, t] : opt.state_tensors()) {
    if (name == "step") CHECK(t.item() == 2);
    if (name == "step.a") CHECK(t.item() == 2);
    if (name == "step.b") CHECK(t.item() == 1);
  }

  Tensor f = Tensor::from_vector(std::vector<float>{1.0f, -3.0f}, {2}).set_requires_grad(true);
  Adam opt32({{"f", f}}, {.lr = 0.1});
  f.set_grad(Tensor::from_vector(std::vector<float>{0.5f, -0.5f}, {2}));
  opt32.step();
  auto v = f.to_vector<float>();
  CHECK(v[0] == doctest::Approx(0.9).epsilon(1e-6));
  CHECK(v[1] == doctest::Approx(-2.9).epsilon(1e-6));
}

// Steps `opt` through gradients g1.. on params (a: [2], b: [2, 2]).
namespace {
void run(Optimizer& opt, Tensor& a, Tensor& b, double scale) {
  set_grad(a, {0.3 * scale, -0.2});
  set_grad(b, {0.1, -0.4 * scale, 0.25, 0.05});
  opt.step();
}
template <typename Opt, typename Options>
void check_round_trip(const Options& options) {
  Tensor a = param({1.0, -1.0}), b = param({0.5, 0.2, -0.3, 0.8}, {2, 2});
  Opt opt({{"a", a}, {"layer.b", b}}, options);
  run(opt, a, b, 1.0);
  run(opt, a, b, -2.0);
  NamedTensors saved = opt.state_tensors();
  Tensor a2 = param(vals(a)), b2 = param(vals(b), {2, 2});
  Tensor a3 = param(vals(a)), b3 = param(vals(b), {2, 2});
  Opt resumed({{"a", a2}, {"layer.b", b2}}, options);
  resumed.load_state_tensors(saved);
  Opt fresh({{"a", a3}, {"layer.b", b3}}, options);
  for (double s : {0.7, 1.5}) {
    run(opt, a, b, s);
    run(resumed, a2, b2, s);
    run(fresh, a3, b3, s);
  }
  CHECK(vals(a2) == vals(a));  // bit-identical continuation
  CHECK(vals(b2) == vals(b));
  CHECK(vals(b3) != vals(b));  // without the state the run differs (the check can fail)
  CHECK(resumed.step_count() == 4);
  // the export is a copy: stepping on did not change it
  NamedTensors again = resumed.state_tensors();
  REQUIRE(again.size() == saved.size());
  CHECK(vals(again[1].second) != vals(saved[1].second));
}
}  // namespace

TEST_CASE("optimizer state: export/import resumes identically") {
  check_round_trip<Sgd>(SgdOptions{.lr = 0.1, .momentum = 0.9, .nesterov = true, .weight_decay = 1e-2});
  check_round_trip<Adam>(AdamOptions{.lr = 0.05, .weight_decay = 1e-2});
  check_round_trip<AdamW>(AdamOptions{.lr = 0.05, .weight_decay = 0.1});
}

TEST_CASE("optimizer state: import errors leave the state unchanged") {
  Tensor a = param({1.0, 2.0});
  Adam opt({{"a", a}}, {.lr = 0.1});
  set_grad(a, {0.5, 0.5});
  opt.step();
  NamedTensors good = opt.state_tensors();
  CHECK_THROWS_WITH_AS(opt.load_state_tensors({{"exp_avg.nope", Tensor::zeros({2})}}), doctest::Contains("'exp_avg.nope' names no parameter"), Error);
  CHECK_THROWS_WITH_AS(opt.load_state_tensors({{"momentum_buffer.a", Tensor::zeros({2})}}), doctest::Contains("unknown kind 'momentum_buffer'"), Error);
  CHECK_THROWS_WITH_AS(opt.load_state_tensors({{"exp_avg.a", Tensor::zeros({3})}}), doctest::Contains("has shape [3] but parameter 'a' has shape [2]"), Error);
  CHECK_THROWS_WITH_AS(opt.load_state_tensors({{"exp_avg.a", Tensor::zeros({2})}, {"step.a", Tensor::scalar(1, DType::Int64)}}),
                       doctest::Contains("has 1 of its 2 state tensors"), Error);
  CHECK_THROWS_WITH_AS(opt.load_state_tensors({{"step", Tensor::scalar(1.5, DType::Float64)}}), doctest::Contains("not a step count"), Error);
  NamedTensors after = opt.state_tensors();
  REQUIRE(after.size() == good.size());
  for (size_t i = 0; i < good.size(); ++i) {
    CHECK(after[i].first == good[i].first);
    CHECK(vals(after[i].second.to(DType::Float64)) == vals(good[i].second.to(DType::Float64)));
  }
}

TEST_CASE("optimizer errors: hyper-parameters, parameters, gradients") {
  Tensor w = param({1.0, 2.0});
  auto one = [&] { return std::vector<ParamRef>{{"w", w}}; };
  CHECK_THROWS_WITH_AS(Sgd(one(), {.lr = -0.1}), doctest::Contains("Sgd: invalid learning rate -0.1"), Error);
  CHECK_THROWS_WITH_AS(Sgd(one(), {.lr = 0.1, .momentum = 1.0}), doctest::Contains("invalid momentum 1"), Error);
  CHECK_THROWS_WITH_AS(Sgd(one(), {.lr = 0.1, .momentum = -0.1}), doctest::Contains("invalid momentum -0.1"), Error);
  CHECK_THROWS_WITH_AS(Sgd(one(), {.lr = 0.1, .nesterov = true}), doctest::Contains("nesterov needs momentum > 0"), Error);
  CHECK_THROWS_WITH_AS(Sgd(one(), {.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .nesterov = true}), doctest::Contains("nesterov needs dampening 0"), Error);
  CHECK_THROWS_WITH_AS(Sgd(one(), {.lr = 0.1, .weight_decay = -1}), doctest::Contains("invalid weight_decay -1"), Error);
  CHECK_THROWS_WITH_AS(Adam(one(), {.beta1 = 1.0}), doctest::Contains("Adam: invalid beta1 1"), Error);
  CHECK_THROWS_WITH_AS(AdamW(one(), {.beta2 = -0.5}), doctest::Contains("AdamW: invalid beta2 -0.5"), Error);
  CHECK_THROWS_WITH_AS(Adam(one(), {.eps = -1e-8}), doctest::Contains("invalid eps"), Error);
  Sgd ok(one(), {.lr = 0.1});
  CHECK_THROWS_WITH_AS(ok.set_lr(-1), doctest::Contains("invalid learning rate -1"), Error);
  CHECK_THROWS_WITH_AS(ok.set_lr(NAN), doctest::Contains("invalid learning rate"), Error);
  ok.set_lr(0.5);
  CHECK(ok.lr() == 0.5);

  CHECK_THROWS_WITH_AS(Sgd({}, {}), doctest::Contains("empty parameter list"), Error);
  CHECK_THROWS_WITH_AS(Sgd({{"w", w}, {"w", param({1.0})}}, {}), doctest::Contains("'w' appears twice"), Error);
  CHECK_THROWS_WITH_AS(Sgd({{"x", Tensor::zeros({2})}}, {}), doctest::Contains("'x' does not require grad"), Error);
  CHECK_THROWS_WITH_AS(Sgd({{"y", w * 2.0}}, {}), doctest::Contains("'y' is not a leaf"), Error);
  CHECK_THROWS_WITH_AS(Sgd({{"i", Tensor::zeros({2}, DType::Int64)}}, {}), doctest::Contains("only float32/float64"), Error);

  w.set_grad(Tensor::zeros({3}, DType::Float64));
  CHECK_THROWS_WITH_AS(ok.step(), doctest::Contains("gradient of 'w' has shape [3], the parameter [2]"), Error);
  w.set_grad(Tensor::zeros({2}, DType::Float32));
  CHECK_THROWS_WITH_AS(ok.step(), doctest::Contains("gradient of 'w' is float32, the parameter float64"), Error);
  CHECK(vals(w) == std::vector<double>{1.0, 2.0});  // failed steps did not touch the parameter
  CHECK(ok.step_count() == 0);
}
