// test_qat.cpp — quant/qat.h: the folded QAT conv equals fold_bn in eval and Conv + BN (batch
// statistics, running-stat update) in training when unquantized (bits 32), gradients reach w,
// gamma and beta, prepare_qat wraps ResNet-20 and MobileNetV1/V2 as expected (state-dict names
// kept) and runs forward/backward, 8-bit QAT stays within 2% of the float outputs, and the fused
// activation tail (QatConv2d::forward_into) trains like the unfused modules.
#include <doctest/doctest.h>

#include <cmath>
#include <set>

#include "core/ops.h"
#include "core/optim/sgd.h"
#include "core/profiler.h"
#include "layers/basic.h"
#include "layers/models/blocks.h"
#include "layers/models/registry.h"
#include "quant/bn_fold.h"
#include "quant/qat.h"
#include "tests/quant/quant_test_util.h"

using namespace pfq;
using namespace pfq::quant;
using pfq::quant::test::max_rel_diff;

namespace {

struct Pair {
  std::shared_ptr<Conv2d> conv;
  std::shared_ptr<BatchNorm2d> bn;
};
Pair make_pair_(uint64_t seed, bool bias) {
  Generator g(seed);
  Pair p{std::make_shared<Conv2d>(3, 4, 3, Conv2dArgs{.padding = 1, .bias = bias}, g), std::make_shared<BatchNorm2d>(4)};
  p.bn->weight().copy_(Tensor::randn({4}, g, 1.0, 0.5));
  p.bn->bias().copy_(Tensor::randn({4}, g, 0.0, 0.5));
  p.bn->running_mean().copy_(Tensor::randn({4}, g, 0.0, 0.3));
  p.bn->running_var().copy_(Tensor::rand({4}, g, 0.2, 2.0));
  p.bn->running_var().data<float>()[0] = 1e-30f;
  return p;
}

std::unique_ptr<Quantizer> wquant(int bits) {
  QuantSpec s;
  s.bits = bits;
  return make_quantizer("minmax", s);
}

std::map<std::string, int64_t> count_types(Module& m) {
  std::map<std::string, int64_t> c;
  for (auto& [n, mod] : m.named_modules()) c[mod->type_name()]++;
  return c;
}

}  // namespace

TEST_CASE("QatConv2d (unquantized) in eval equals fold_bn") {
  for (bool bias : {false, true}) {
    Pair p = make_pair_(3, bias);
    p.conv->set_output_correction(Tensor::randn({4, 6, 6}, default_generator()));
    auto ref_conv = fold_bn(*p.conv, *p.bn);
    QatConv2d q(p.conv, std::make_shared<FoldedBatchNorm2d>(*p.bn), nullptr);
    q.eval();
    Generator g(5);
    Tensor x = Tensor::randn({2, 3, 6, 6}, g);
    NoGradGuard ng;
    CHECK(max_rel_diff(q.forward(x), ref_conv->forward(x)) < 1e-5);
  }
}

TEST_CASE("QatConv2d (unquantized) in training equals Conv + BN with batch statistics and updates running stats") {
  for (BnStats stats : {BnStats::Float, BnStats::Quantized}) {
  CAPTURE(static_cast<int>(stats));
  Pair a = make_pair_(4, true), b = make_pair_(4, true);
  QatConv2d q(a.conv, std::make_shared<FoldedBatchNorm2d>(*a.bn), nullptr);
  q.set_bn_stats(stats);
  q.train();
  b.conv->train();
  b.bn->train();
  Generator g(6);
  Tensor x = Tensor::randn({4, 3, 5, 5}, g);
  Tensor ref = b.bn->forward(b.conv->forward(x));
  Tensor y = q.forward(x);
  CHECK(max_rel_diff(y, ref) < 1e-5);
  CHECK(max_rel_diff(a.bn->running_mean(), b.bn->running_mean()) < 1e-6);
  CHECK(max_rel_diff(a.bn->running_var(), b.bn->running_var()) < 1e-6);
  CHECK(a.bn->batches_tracked() == 1);
  // frozen: running statistics, no update
  q.freeze_bn_stats();
  Tensor rv = a.bn->running_var().clone();
  q.forward(x);
  CHECK(max_rel_diff(a.bn->running_var(), rv) == 0);
  }
}

TEST_CASE("QatConv2d bn_stats quantized: statistics of the quantized conv; a gamma == 0 channel outputs beta") {
  Pair a = make_pair_(4, false), b = make_pair_(4, false);
  a.bn->weight().data<float>()[2] = 0.0f;
  b.bn->weight().data<float>()[2] = 0.0f;
  QatConv2d q(a.conv, std::make_shared<FoldedBatchNorm2d>(*a.bn), wquant(4));
  q.set_bn_stats(BnStats::Quantized);
  q.train();
  Generator g(6);
  Tensor x = Tensor::randn({4, 3, 5, 5}, g);
  Tensor y = q.forward(x);
  auto v = y.to_vector<float>();
  for (float e : v) REQUIRE(std::isfinite(e));
  const float beta2 = a.bn->bias().to_vector<float>()[2];
  for (int64_t n = 0; n < 4; ++n)
    for (int64_t i = 0; i < 25; ++i) CHECK(v[(n * 4 + 2) * 25 + i] == doctest::Approx(beta2).epsilon(1e-6));
  // the batch statistics are those of conv(x, q(s w)) / s: BN in training on that input gives y
  const Tensor s = div(b.bn->weight(), sqrt(add(b.bn->running_var(), b.bn->eps)));
  Tensor wq = q.child("weight_quant")->forward(mul(b.conv->weight(), reshape(s, {4, 1, 1, 1})));
  Tensor s_safe = add(s, Tensor::from_vector<float>({0, 0, 1, 0}, {4}));
  Tensor z = div(conv2d(x, wq, Tensor(), b.conv->options()), reshape(s_safe, {4, 1, 1}));
  b.bn->train();
  Tensor ref = b.bn->forward(z);
  CHECK(max_rel_diff(y, ref) < 1e-5);
  CHECK(max_rel_diff(a.bn->running_mean(), b.bn->running_mean()) < 1e-6);
  CHECK(max_rel_diff(a.bn->running_var(), b.bn->running_var()) < 1e-6);
  CHECK_THROWS_WITH_AS(parse_bn_stats("exact"), doctest::Contains("not one of: float, quantized"), Error);
  REQUIRE(bn_stats_names().size() == 2);
  CHECK(parse_bn_stats(bn_stats_names()[0]) == BnStats::Float);
  CHECK(parse_bn_stats(bn_stats_names()[1]) == BnStats::Quantized);
}

TEST_CASE("QatConv2d (4-bit) gradients reach w, gamma and beta, in training and frozen") {
  for (bool frozen : {false, true}) {
    Pair p = make_pair_(8, false);
    auto fbn = std::make_shared<FoldedBatchNorm2d>(*p.bn);
    QatConv2d q(p.conv, fbn, wquant(4));
    q.train();
    q.freeze_bn_stats(frozen);
    Generator g(9);
    Tensor y = q.forward(Tensor::randn({2, 3, 5, 5}, g));
    sum(mul(y, y)).backward();
    for (const char* n : {"weight"}) {
      REQUIRE(q.parameter(n).grad().defined());
      CHECK(max(abs(q.parameter(n).grad())).item() > 0);
    }
    for (const char* n : {"weight", "bias"}) {
      REQUIRE(fbn->parameter(n).grad().defined());
      CHECK(max(abs(fbn->parameter(n).grad())).item() > 0);
    }
  }
}

namespace {
void check_prepare(const std::string& arch, double width) {
  models::ModelConfig cfg{.in_channels = 1, .input_size = 16, .width = width};
  auto model = models::build_model(arch, cfg);
  auto before = count_types(*model);
  std::set<std::string> float_names;
  for (auto& [n, t] : model->state_dict()) float_names.insert(n);
  QatConfig qc;
  qc.wbits = 4;
  qc.abits = 4;
  QatReport r = prepare_qat(*model, qc);
  const int64_t bns = before["BatchNorm2d"], convs = before["Conv2d"];
  CHECK(r.folded_convs == bns);  // every BN follows a conv in these models
  CHECK(r.plain_convs == convs - bns);
  CHECK(r.linears == before["Linear"]);
  CHECK(r.act_quantizers == before["ReLU"] + before["ReLU6"]);
  auto after = count_types(*model);
  CHECK(after["QatConv2d"] == convs);
  CHECK(after["FoldedBatchNorm2d"] == bns);
  CHECK(after["Conv2d"] == 0);
  CHECK(after["BatchNorm2d"] == 0);
  std::set<std::string> qat_names;
  for (auto& [n, t] : model->state_dict()) qat_names.insert(n);
  for (auto& n : float_names) CHECK_MESSAGE(qat_names.count(n) == 1, "state-dict name lost: ", n);
  CHECK_THROWS_WITH_AS(prepare_qat(*model, qc), doctest::Contains("already"), Error);

  model->train();
  Generator g(2);
  Tensor x = Tensor::randn({2, 1, 16, 16}, g);
  Tensor y = model->forward(x);
  CHECK(y.shape() == Shape{2, 10});
  cross_entropy(y, Tensor::from_vector<int64_t>({1, 3}, {2})).backward();
  int64_t with_grad = 0;
  for (auto& t : model->parameters()) with_grad += t.grad().defined();
  CHECK(with_grad > 0);
  model->eval();
  NoGradGuard ng;
  CHECK(std::isfinite(sum(model->forward(x)).item()));
}
}  // namespace

TEST_CASE("prepare_qat wraps resnet20") { check_prepare("resnet20", 1.0); }
TEST_CASE("prepare_qat wraps mobilenetv1 (width 0.25)") { check_prepare("mobilenetv1", 0.25); }
TEST_CASE("prepare_qat wraps mobilenetv2 (width 0.25)") { check_prepare("mobilenetv2", 0.25); }

TEST_CASE("prepare_qat without folding keeps BN and quantizes conv weights only") {
  models::ModelConfig cfg{.in_channels = 1, .input_size = 16};
  auto model = models::build_model("resnet20", cfg);
  const int64_t bns = count_types(*model)["BatchNorm2d"], convs = count_types(*model)["Conv2d"];
  QatConfig qc;
  qc.fold_bn = false;
  qc.wbits = 4;
  qc.abits = 32;  // activations left in float: only the weights are quantized
  QatReport r = prepare_qat(*model, qc);
  CHECK(r.folded_convs == 0);
  CHECK(r.plain_convs == convs);
  CHECK(count_types(*model)["BatchNorm2d"] == bns);
  CHECK(count_types(*model)["FoldedBatchNorm2d"] == 0);
  // every conv's weight goes through its quantizer: at most 2^4 - 1 levels (the first conv: 8 bits)
  int64_t quantized = 0;
  for (auto& [path, m] : model->named_modules()) {
    auto* q = dynamic_cast<QatConv2d*>(m);
    if (!q) continue;
    const std::string where = path;  // a copy: clang 14 cannot capture a structured binding in INFO's lambda
    INFO(where);
    CHECK_FALSE(q->folded());
    auto* wq = dynamic_cast<FakeQuantize*>(q->child("weight_quant").get());
    REQUIRE(wq);
    REQUIRE(wq->quantizer());
    const int bits = path == r.first_conv ? qc.first_last_bits : qc.wbits;
    CHECK(wq->quantizer()->spec().bits == bits);
    const Tensor w = q->conv().own_parameters().front().second;
    const std::vector<float> fq = wq->forward(w).to_vector<float>();
    CHECK(std::set<float>(fq.begin(), fq.end()).size() <= (size_t{1} << bits) - 1);
    CHECK(fq != w.to_vector<float>());
    ++quantized;
  }
  CHECK(quantized == convs);
  // activations are not: every quantizer after a ReLU is the identity
  model->eval();
  Generator g(4);
  const Tensor x = Tensor::randn({2, 4, 8, 8}, g);
  int64_t acts = 0;
  for (auto& [path, m] : model->named_modules()) {
    auto* fq = dynamic_cast<FakeQuantize*>(m);
    const std::string suffix = ".weight_quant";
    if (!fq || (path.size() >= suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0)) continue;
    if (path == r.first_conv + ".input_quant" || path == r.last_linear + ".input_quant") continue;  // 8 bits by design
    const std::string where = path;  // a copy: clang 14 cannot capture a structured binding in INFO's lambda
    INFO(where);
    CHECK(fq->quantizer() == nullptr);
    CHECK(fq->forward(x).to_vector<float>() == x.to_vector<float>());
    ++acts;
  }
  CHECK(acts == r.act_quantizers);
  CHECK(acts > 0);
}

TEST_CASE("8-bit QAT of a tiny model stays within 2% of the float outputs") {
  auto build = [] {
    Generator g(11);
    auto m = std::make_shared<Sequential>();
    m->push_back(std::make_shared<models::ConvBNAct>(1, 8, 3, 1, 1, models::Act::ReLU, g));
    m->push_back(std::make_shared<models::ConvBNAct>(8, 8, 3, 1, 8, models::Act::ReLU6, g));
    m->push_back(std::make_shared<AdaptiveAvgPool2d>(1));
    m->push_back(std::make_shared<Flatten>(1));
    m->push_back(std::make_shared<Linear>(8, 5, true, g));
    for (auto& [n, mod] : m->named_modules())
      if (auto* bn = dynamic_cast<BatchNorm2d*>(mod)) {
        bn->running_mean().copy_(Tensor::randn({8}, g, 0.0, 0.1));
        bn->running_var().copy_(Tensor::rand({8}, g, 0.5, 1.5));
      }
    return m;
  };
  auto fm = build(), qm = build();
  QatConfig qc;
  qc.wbits = qc.abits = qc.first_last_bits = 8;
  qc.calib_batches = 1;
  prepare_qat(*qm, qc);
  Generator g(12);
  Tensor x = Tensor::randn({8, 1, 8, 8}, g);
  qm->train();
  freeze_bn_stats(*qm);
  {
    NoGradGuard ng;
    qm->forward(x);  // calibrates the activation observers
  }
  fm->eval();
  qm->eval();
  NoGradGuard ng;
  Tensor yf = fm->forward(x), yq = qm->forward(x);
  const double rel = std::sqrt(sum(square(sub(yq, yf))).item() / sum(square(yf)).item());
  MESSAGE("8-bit relative output error ", rel);
  CHECK(rel < 0.02);
  CHECK(rel > 0);  // quantization did something
  // disabling activation quantization changes the output too (weights only)
  set_activation_quant(*qm, false);
  CHECK(max_rel_diff(qm->forward(x), yq) > 0);
}

TEST_CASE("qat: Module::to moves a quantizer's own buffers (registered as the same handles)") {
  // Regression (found on a GPU): register_buffer stored a detached copy, so Module::to(cuda)
  // moved the module's copy while the ema quantizer kept updating its own CPU running range.
  // The same path is visible on the CPU through to(DType).
  for (const char* name : {"ema", "lsq"}) {
    CAPTURE(std::string(name));
    QuantSpec spec;
    spec.bits = 8;
    spec.symmetric = std::string(name) == "lsq";
    spec.calib_batches = 1;
    FakeQuantize fq(make_quantizer(name, spec));
    fq.to(DType::Float64);
    for (const auto& [n, t] : fq.quantizer()->buffers()) {
      const std::string buffer_name = n;  // clang 14 cannot capture a structured binding
      CAPTURE(buffer_name);
      if (is_floating(t.dtype())) CHECK(t.dtype() == DType::Float64);
    }
    for (const auto& [n, t] : fq.quantizer()->parameters()) CHECK(t.dtype() == DType::Float64);
  }
}

TEST_CASE("qat: the BN re-estimation pass recomputes plain and folded running statistics from data") {
  // Expected: the cumulative average over the batches of each batch's channel mean and unbiased
  // variance of the conv output (the BN input), for a plain BN and for one folded into QatConv2d.
  Generator g(7);
  std::vector<Tensor> xs;
  for (int i = 0; i < 3; ++i) xs.push_back(Tensor::rand({4, 2, 5, 5}, g, -1, 2, DType::Float64));
  for (bool fold : {false, true}) {
    CAPTURE(fold);
    Generator wg(11);
    auto block = std::make_shared<models::ConvBNAct>(2, 3, 3, 1, 1, models::Act::ReLU, wg);
    block->to(DType::Float64);
    auto conv = block->conv();
    Tensor mean_sum = Tensor::zeros({3}, DType::Float64), var_sum = Tensor::zeros({3}, DType::Float64);
    for (const Tensor& x : xs) {
      Tensor z = conv->forward(x);
      mean_sum = add(mean_sum, mean(z, {0, 2, 3}));
      var_sum = add(var_sum, var(z, {0, 2, 3}, true));
    }
    Sequential model;
    model.add("block", block);
    if (fold) {
      QatConfig cfg;
      cfg.wbits = cfg.abits = 8;
      cfg.first_last_bits = 8;
      prepare_qat(model, cfg);
      freeze_bn_stats(model, true);
    }
    Module* bn = nullptr;
    for (auto& [n, m] : model.named_modules())
      if (m->type_name() == "BatchNorm2d" || m->type_name() == "FoldedBatchNorm2d") bn = m;
    REQUIRE(bn);
    bn->buffer("running_mean").fill_(5);
    bn->buffer("running_var").fill_(100);
    model.train();
    size_t next = 0;
    const int64_t used = reestimate_bn_stats(model, [&] { return next < xs.size() ? xs[next++] : Tensor(); }, 10);
    CHECK(used == 3);
    CHECK(model.is_training());
    Tensor want_mean = mul(mean_sum, 1.0 / 3), want_var = mul(var_sum, 1.0 / 3);
    for (int64_t c = 0; c < 3; ++c) {
      CHECK(bn->buffer("running_mean").to_vector<double>()[c] == doctest::Approx(want_mean.to_vector<double>()[c]).epsilon(1e-10));
      CHECK(bn->buffer("running_var").to_vector<double>()[c] == doctest::Approx(want_var.to_vector<double>()[c]).epsilon(1e-10));
    }
    CHECK(bn->buffer("num_batches_tracked").item() == 3);
    if (fold) {
      for (auto& [n, m] : model.named_modules())
        if (auto* q = dynamic_cast<QatConv2d*>(m)) CHECK(q->bn_frozen());  // restored
    }
  }
  Sequential empty_model;
  CHECK_THROWS_WITH_AS(reestimate_bn_stats(empty_model, [] { return Tensor(); }, 4),
                       doctest::Contains("the data gave no batch"), Error);
}

TEST_CASE("clamp_learned_ranges: a PACT alpha or LSQ step driven <= 0 is reported and clamped") {
  QuantSpec act;
  act.symmetric = false;
  act.bits = 4;
  act.per_channel = true;
  act.channels = 3;
  Sequential m;
  m.add("pact", std::make_shared<FakeQuantize>(make_quantizer("pact", act)));
  m.add("lsq", std::make_shared<FakeQuantize>(make_quantizer("lsq", act)));
  m.add("ema", std::make_shared<FakeQuantize>(make_quantizer("ema", act)));  // no learned range
  auto pact = std::dynamic_pointer_cast<FakeQuantize>(m.child("pact"));
  auto lsq = std::dynamic_pointer_cast<FakeQuantize>(m.child("lsq"));
  Tensor alpha = pact->quantizer()->parameters().at(0).second;
  Tensor step = lsq->quantizer()->parameters().at(0).second;
  step.copy_(Tensor::from_vector<float>({0.5f, 0.25f, 0.125f}, {3}));
  CHECK(clamp_learned_ranges(m).empty());
  CHECK(alpha.to_vector<float>() == std::vector<float>{6, 6, 6});

  alpha.copy_(Tensor::from_vector<float>({6, -3.5f, 0}, {3}));
  step.copy_(Tensor::from_vector<float>({0.5f, 0.25f, -1}, {3}));
  const std::string first = clamp_learned_ranges(m, 1e-3);
  CHECK(first.find("pact.alpha[1] = -3.5") == 0);
  CHECK(alpha.to_vector<float>() == std::vector<float>{6, 1e-3f, 1e-3f});
  CHECK(step.to_vector<float>() == std::vector<float>{0.5f, 0.25f, 1e-3f});
  CHECK(alpha.requires_grad());  // still the trained parameter
  CHECK(clamp_learned_ranges(m).empty());
  CHECK_THROWS_WITH_AS(clamp_learned_ranges(m, 0), doctest::Contains("floor must be > 0"), Error);
}

TEST_CASE("QAT with the activation + quantizer fused into the folded BN trains like the unfused modules") {
  // Three SGD steps of a QAT ResNet-20 / MobileNetV2 (4/4 bits, ema activations quantizing from the
  // second batch), fused (QatConv2d::forward_into) against every module on its own.
  for (std::string arch : {"resnet20", "mobilenetv2"})
    for (std::string stats : {"float", "quantized"}) {
      CAPTURE(arch);
      CAPTURE(stats);
      auto run = [&](bool fused, std::vector<double>& losses, std::set<std::string>& ops) {
        models::ModelConfig cfg{.in_channels = 1, .input_size = 16, .width = arch == "resnet20" ? 1.0 : 0.25};
        auto model = models::build_model(arch, cfg);
        QatConfig qc;
        qc.calib_batches = 1;
        qc.bn_stats = stats;
        prepare_qat(*model, qc);
        model->train();
        set_fused_qat_tails(fused);
        std::vector<optim::ParamRef> params;
        for (auto& [n, p] : model->named_parameters()) params.push_back({n, p});
        optim::Sgd sgd(params, {.lr = 0.05, .momentum = 0.9});
        Generator g(5);
        for (int step = 0; step < 3; ++step) {
          Tensor x = Tensor::randn({4, 1, 16, 16}, g);
          Tensor t = Tensor::from_vector<int64_t>({1, 3, 5, 7}, {4});
          sgd.zero_grad();
          profiler::reset();
          profiler::set_enabled(true);
          Tensor loss = cross_entropy(model->forward(x), t);
          loss.backward();
          profiler::set_enabled(false);
          for (const auto& r : profiler::rows()) ops.insert(r.name);
          losses.push_back(loss.item());
          sgd.step();
        }
        set_fused_qat_tails(true);
        return model;
      };
      std::vector<double> lf, lu;
      std::set<std::string> of, ou;
      auto mf = run(true, lf, of), mu = run(false, lu, ou);
      for (size_t i = 0; i < lf.size(); ++i) CHECK(lf[i] == doctest::Approx(lu[i]).epsilon(1e-5));
      auto sf = mf->state_dict(), su = mu->state_dict();
      REQUIRE(sf.size() == su.size());
      for (size_t i = 0; i < sf.size(); ++i) {
        CAPTURE(sf[i].first);
        if (is_floating(sf[i].second.dtype())) CHECK(max_rel_diff(sf[i].second, su[i].second) < 1e-4);
      }
      // the fused run has no separate activation ops after the folded convolutions
      const char* act = arch == "resnet20" ? "relu" : "relu6";
      CHECK(ou.count(act) == 1);
      CHECK(of.count(act) == (arch == "resnet20" ? 1 : 0));  // ResNet: the relu after the residual add stays
      CHECK(ou.count("observe_range") == 1);
    }
}
