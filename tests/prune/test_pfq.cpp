// test_pfq.cpp — PfQ (spec section 3) on tiny models with channels forced constant: exact
// removal with --border exact, every mode exact for a_c = 0 and for 1x1 / pool+linear
// consumers, the bounded border-only error of --border bias, --border keep, dead producers
// found through their depthwise consumers (rule 3.2), the depthwise cascade, residual-fed
// channels kept, idempotence, the folded weight range, criteria.
#include <doctest/doctest.h>

#include <cmath>

#include "core/autograd.h"
#include "prune/analysis.h"
#include "prune/pfq.h"
#include "tests/gradcheck.h"
#include "tests/prune/prune_test_util.h"

using namespace pfq;
using namespace pfq::prune;
using test::bn_at;
using test::conv_at;

namespace {
PfqOptions opts(Border b, const Shape& in, const std::string& crit = "var-below-eps") {
  PfqOptions o;
  o.border = b;
  o.input_shape = in;
  o.criterion = parse_criterion(crit);
  return o;
}
const Shape kIn{2, 3, 8, 8};

// Prunes a twin of `make()` (after `edit`) and returns the report; `diff` gets the max output change.
PruneReport prune_twin(const std::function<ModulePtr()>& make, const std::function<void(Module&)>& edit, const PfqOptions& o,
                       double& diff, ModulePtr* pruned_out = nullptr, const models::ModelConfig& cfg = {}) {
  ModulePtr orig = make();
  edit(*orig);
  ModulePtr pruned = test::twin(make, *orig);
  PruneReport r = pfq_prune(*pruned, cfg, o);
  diff = max_output_change(*orig, *pruned, test::test_input(o.input_shape, 7));
  if (pruned_out) *pruned_out = pruned;
  return r;
}

// PfQ (--border exact) on a twin of the `arch` model (width, size x size inputs) after `edit`:
// the report and the max output change; checks that the report's record rebuilds the pruned
// model exactly.
PruneReport prune_model(const std::string& arch, double width, int64_t size, const std::function<void(Module&)>& edit, double& diff) {
  models::ModelConfig cfg{.input_size = size, .width = width, .arch = arch};
  auto make = [cfg] { return models::build_model(cfg); };
  ModulePtr pruned;
  const Shape in{arch == "mobilenetv2" ? 1 : 2, 3, size, size};
  PruneReport r = prune_twin(make, edit, opts(Border::Exact, in), diff, &pruned, cfg);
  ModulePtr rebuilt = models::build_model(r.config);
  rebuilt->load_state_dict(pruned->state_dict(), true);
  CHECK(max_output_change(*rebuilt, *pruned, test::test_input(in, 9)) == 0);
  return r;
}
}  // namespace

TEST_CASE("pfq: a constant channel feeding a zero-padded 3x3 conv is removed exactly with --border exact") {
  auto make = [] { return test::two_units(3, models::Act::ReLU, true); };
  auto edit = [](Module& m) { test::make_constant(conv_at(m, "a.0"), bn_at(m, "a.1"), 2, 0.7f); };
  double diff = 1;
  ModulePtr pruned;
  PruneReport r = prune_twin(make, edit, opts(Border::Exact, kIn), diff, &pruned);
  CHECK(diff < 1e-5);
  CHECK(r.removed_total == 1);
  const LayerReport* a = r.layer("a.0");
  REQUIRE(a != nullptr);
  CHECK(a->channels_after == 5);
  REQUIRE(a->removed.size() == 1);
  CHECK(a->removed[0].channel == 2);
  CHECK(a->removed[0].value == doctest::Approx(0.7));
  CHECK(r.layer("b.0")->compensation == "map");
  CHECK(r.correction_maps == 1);
  Conv2d& b = conv_at(*pruned, "b.0");
  CHECK(b.in_channels == 5);
  REQUIRE(b.has_output_correction());
  CHECK(b.output_correction().shape() == Shape{5, 8, 8});
  CHECK(r.config.output_corrections.at("b.0") == std::vector<int64_t>{5, 8, 8});
  CHECK(r.config.channels.at("a.0") == 5);
  // interior of the map is the constant a * sum(W); the border differs
  const float* cm = b.output_correction().data<float>();
  CHECK(cm[0] != doctest::Approx(cm[3 * 8 + 3]));
  CHECK(cm[3 * 8 + 3] == doctest::Approx(cm[4 * 8 + 4]));
  // a different input size is refused, not silently wrong
  CHECK_THROWS_WITH_AS(pruned->forward(test::test_input({1, 3, 10, 10}, 1)), doctest::Contains("output correction"), Error);
}

TEST_CASE("pfq: --border bias leaves a border-only difference, bounded and reported; --border keep keeps the channel") {
  auto make = [] { return test::two_units(3, models::Act::None, false); };
  auto edit = [](Module& m) { test::make_constant(conv_at(m, "a.0"), bn_at(m, "a.1"), 4, 0.9f); };
  ModulePtr orig = make();
  edit(*orig);
  ModulePtr pruned = test::twin(make, *orig);
  PruneReport r = pfq_prune(*pruned, {}, opts(Border::Bias, kIn));
  CHECK(r.removed_total == 1);
  CHECK(r.correction_maps == 0);
  CHECK(r.layer("b.0")->compensation == "running_mean");
  CHECK(r.border_error > 1e-3);
  const Tensor x = test::test_input(kIn, 3);
  orig->eval();
  pruned->eval();
  NoGradGuard ng;
  const Tensor d = abs(sub(orig->forward(x), pruned->forward(x))).contiguous();  // [2, 5, 8, 8], NCHW order
  const float* dv = d.data<float>();
  double interior = 0, border = 0;
  for (int64_t i = 0; i < d.numel(); ++i) {
    const int64_t h = (i / 8) % 8, w = i % 8;
    const bool edge = h == 0 || h == 7 || w == 0 || w == 7;
    (edge ? border : interior) = std::max(edge ? border : interior, static_cast<double>(dv[i]));
  }
  CHECK(interior < 1e-5);
  // the change is data-independent: the reported bound is attained on the border
  CHECK(border == doctest::Approx(r.border_error).epsilon(1e-3));

  ModulePtr kept = test::twin(make, *orig);
  PruneReport rk = pfq_prune(*kept, {}, opts(Border::Keep, kIn));
  CHECK(rk.removed_total == 0);
  REQUIRE(rk.layer("a.0")->kept_constant.size() == 1);
  CHECK(rk.layer("a.0")->kept_constant[0].reason.find("--border keep") != std::string::npos);
  CHECK(max_output_change(*orig, *kept, x) == 0);
}

TEST_CASE("pfq: every border mode is exact when a_c = 0, for 1x1 consumers and for pool + linear") {
  for (Border mode : {Border::Exact, Border::Bias, Border::Keep}) {
    CAPTURE(border_name(mode));
    double diff = 1;
    // a_c = relu(-0.5) = 0 into a padded 3x3 conv
    PruneReport r0 = prune_twin([] { return test::two_units(3, models::Act::ReLU, true); },
                                [](Module& m) { test::make_constant(conv_at(m, "a.0"), bn_at(m, "a.1"), 1, -0.5f); },
                                opts(mode, kIn), diff);
    CHECK(r0.removed_total == 1);
    CHECK(r0.layer("a.0")->removed.at(0).value == 0);
    CHECK(r0.border_error == 0);
    CHECK(diff < 1e-5);
    // a_c = 0.8 into a 1x1 conv: folded into its BN's running mean
    PruneReport r1 = prune_twin([] { return test::two_units(1, models::Act::ReLU, true); },
                                [](Module& m) { test::make_constant(conv_at(m, "a.0"), bn_at(m, "a.1"), 3, 0.8f); },
                                opts(mode, kIn), diff);
    CHECK(r1.removed_total == 1);
    CHECK(r1.layer("b.0")->compensation == "running_mean");
    CHECK(diff < 1e-5);
    // a_c = 0.6 into global pool + Linear: folded into the Linear bias
    PruneReport r2 = prune_twin([] { return test::two_units(3, models::Act::ReLU, true); },
                                [](Module& m) { test::make_constant(conv_at(m, "b.0"), bn_at(m, "b.1"), 0, 0.6f); },
                                opts(mode, kIn), diff);
    CHECK(r2.removed_total == 1);
    CHECK(r2.layer("b.0")->compensation == "linear bias ('fc')");
    CHECK(diff < 1e-5);
  }
}

TEST_CASE("pfq: a dead ReLU channel is found through its depthwise consumer (rule 3.2) and the range shrinks") {
  auto make = [] { return test::tiny_mobilenet(); };
  auto edit = [](Module& m) {
    test::make_dead(bn_at(m, "stem.1"), 3);  // large variance of its own: the criterion misses it
    // the depthwise channel reading it outputs 0: running stats decayed to subnormals
    test::set_at(bn_at(m, "b1.dw.1").running_mean(), 3, 1e-40f);
    test::set_at(bn_at(m, "b1.dw.1").running_var(), 3, 3e-40f);
    test::set_at(bn_at(m, "b1.dw.1").bias(), 3, 0.3f);
  };
  ModulePtr before = make();
  edit(*before);
  const ModelAnalysis an = analyze(*before);
  CHECK(an.layer("stem.0")->below_eps == 0);
  CHECK(an.layer("stem.0")->dead_via_depthwise == std::vector<int64_t>{3});
  CHECK(an.layer("b1.dw.0")->below_flt_min == 1);
  double diff = 1;
  ModulePtr pruned;
  PruneReport r = prune_twin(make, edit, opts(Border::Exact, kIn), diff, &pruned);
  CHECK(diff < 1e-5);
  CHECK(r.removed_total == 2);
  REQUIRE(r.layer("stem.0")->removed.size() == 1);
  CHECK(r.layer("stem.0")->removed[0].channel == 3);
  CHECK(r.layer("stem.0")->removed[0].reason.find("rule 3.2") != std::string::npos);
  REQUIRE(r.layer("b1.dw.0")->removed.size() == 1);
  CHECK(r.layer("b1.dw.0")->removed[0].value == doctest::Approx(0.3));
  CHECK(r.layer("b1.dw.0")->removed[0].reason.find("dead after relu") != std::string::npos);
  CHECK(conv_at(*pruned, "stem.0").out_channels == 7);
  CHECK(conv_at(*pruned, "b1.dw.0").groups == 7);
  CHECK(conv_at(*pruned, "b1.pw.0").in_channels == 7);
  CHECK(r.layer("b1.pw.0")->compensation == "running_mean");  // 1x1 consumer: exact fold
  // the depthwise filter's folded weights were blown up by 1/sqrt(eps); removal leaves exactly
  // the range of the other channels, as analysis predicted
  const LayerReport* dw = r.layer("b1.dw.0");
  CHECK(dw->max_w_before > 20 * dw->max_w_after);
  CHECK(dw->max_w_after == doctest::Approx(an.layer("b1.dw.0")->max_w_without_constant));
  CHECK(dw->step4_after == doctest::Approx(dw->max_w_after / 7));
  CHECK(analyze(*pruned).layer("b1.dw.0")->max_w == doctest::Approx(dw->max_w_after));
}

TEST_CASE("pfq: rule 3.2 falls back to z0 = running mean when the statistics contradict a dead input; analysis reports") {
  ModulePtr m = test::tiny_mobilenet();
  BatchNorm2d& dw = bn_at(*m, "b1.dw.1");
  test::set_at(dw.running_mean(), 2, 0.5f);  // far from the (zero) bias: the input is live
  test::set_at(dw.running_var(), 2, 1e-9f);
  const double beta = test::get_at(dw.bias(), 2);
  const ModelAnalysis an = analyze(*m);
  CHECK(an.layer("b1.dw.0")->constant_eps == std::vector<int64_t>{2});
  CHECK(an.layer("b1.dw.0")->constant_zero.empty());
  CHECK(an.to_json()["layers"].size() == 5);
  CHECK(an.str().find("b1.dw.0") != std::string::npos);
  PruneReport r = pfq_prune(*m, {}, opts(Border::Exact, kIn));
  REQUIRE(r.layer("b1.dw.0")->removed.size() == 1);
  CHECK(r.layer("b1.dw.0")->removed[0].value == doctest::Approx(std::max(0.0, beta)));
  CHECK(r.layer("b1.dw.0")->removed[0].reason.find("not provably dead") != std::string::npos);
  CHECK(r.layer("stem.0")->channels_after == 7);
}

TEST_CASE("pfq: the depthwise cascade removes matching channels on both sides and carries the border map") {
  auto make = [] { return test::tiny_mobilenet(); };
  auto edit = [](Module& m) { test::make_constant(conv_at(m, "b1.pw.0"), bn_at(m, "b1.pw.1"), 5, 0.4f); };
  double diff = 1;
  ModulePtr pruned;
  PruneReport r = prune_twin(make, edit, opts(Border::Exact, kIn), diff, &pruned);
  CHECK(diff < 1e-5);
  CHECK(r.layer("b1.pw.0")->removed.at(0).channel == 5);
  REQUIRE(r.layer("b2.dw.0")->removed.size() == 1);
  const RemovedChannel& dw = r.layer("b2.dw.0")->removed[0];
  CHECK(dw.channel == 5);
  CHECK(dw.border_map);
  CHECK(dw.bound == 0);
  CHECK(dw.reason.find("cascade") != std::string::npos);
  CHECK(conv_at(*pruned, "b2.dw.0").out_channels == 15);
  CHECK(conv_at(*pruned, "b2.pw.0").in_channels == 15);
  CHECK(conv_at(*pruned, "b2.pw.0").has_output_correction());  // 1x1 after a border map
  // --border bias: approximate on the border only; --border keep: not removed
  PruneReport rb = prune_twin(make, edit, opts(Border::Bias, kIn), diff);
  CHECK(rb.removed_total == 2);
  CHECK(rb.border_error > 0);
  CHECK(diff > 1e-6);
  PruneReport rk = prune_twin(make, edit, opts(Border::Keep, kIn), diff);
  CHECK(rk.removed_total == 0);
  CHECK(diff == 0);
}

TEST_CASE("pfq: residual-fed channels are kept and reported; block-internal ones go (ResNet-20)") {
  auto edit = [](Module& m) {
    test::randomize_bn(m, 5);
    test::make_constant(conv_at(m, "conv1"), bn_at(m, "bn1"), 1, 0.5f);
    test::make_constant(conv_at(m, "layer1.1.conv2"), bn_at(m, "layer1.1.bn2"), 2, 0.5f);
    test::make_constant(conv_at(m, "layer2.0.conv1"), bn_at(m, "layer2.0.bn1"), 4, 0.5f);
  };
  double diff = 1;
  PruneReport r = prune_model("resnet20", 0.5, 8, edit, diff);
  CHECK(diff < 1e-5);
  CHECK(r.removed_total == 1);
  CHECK(r.layer("layer2.0.conv1")->channels_after == 15);
  REQUIRE(r.layer("conv1")->kept_constant.size() == 1);
  CHECK(r.layer("conv1")->kept_constant[0].reason == "constant, kept (residual)");
  CHECK(r.layer("layer1.1.conv2")->kept_constant.at(0).reason == "constant, kept (residual)");
  CHECK(r.kept_constant_total == 2);
}

TEST_CASE("pfq: ResNet-50's bottlenecks through the model graph: stem and block-internal channels go, residual ones stay") {
  auto edit = [](Module& m) {
    test::randomize_bn(m, 6);
    test::make_constant(conv_at(m, "conv1"), bn_at(m, "bn1"), 1, 0.5f);                    // read by conv1 and downsample
    test::make_constant(conv_at(m, "layer1.0.conv1"), bn_at(m, "layer1.0.bn1"), 2, 0.5f);  // into a padded 3x3
    test::make_constant(conv_at(m, "layer2.1.conv2"), bn_at(m, "layer2.1.bn2"), 3, 0.5f);  // into a 1x1
    test::make_constant(conv_at(m, "layer1.0.conv3"), bn_at(m, "layer1.0.bn3"), 4, 0.5f);  // into the add
  };  double diff = 1;
  PruneReport r = prune_model("resnet50", 0.125, 8, edit, diff);
  // float32 reassociation through 50 layers (outputs of order 10); a constant 0.5 channel
  // removed without its compensation moves them by more than 0.01
  MESSAGE("resnet50 max output change ", diff);
  CHECK(diff < 1e-4);
  CHECK(r.removed_total == 3);
  CHECK(r.layer("conv1")->channels_after == 7);
  CHECK(r.layer("layer1.0.conv1")->channels_after == 7);
  CHECK(r.layer("layer2.1.conv2")->channels_after == 15);
  REQUIRE(r.layer("layer1.0.conv3")->kept_constant.size() == 1);
  CHECK(r.layer("layer1.0.conv3")->kept_constant[0].reason == "constant, kept (residual)");
}

TEST_CASE("pfq: MobileNetV2 keeps residual projections and cascades through expansion -> depthwise") {
  auto edit = [](Module& m) {
    test::randomize_bn(m, 6);
    test::make_constant(conv_at(m, "features.3.conv.0.0"), bn_at(m, "features.3.conv.0.1"), 7, 1.5f);
    test::make_constant(conv_at(m, "features.3.conv.2"), bn_at(m, "features.3.conv.3"), 1, 0.5f);
    test::make_constant(conv_at(m, "features.1.conv.1"), bn_at(m, "features.1.conv.2"), 0, -0.3f);  // linear unit
  };  double diff = 1;
  PruneReport r = prune_model("mobilenetv2", 0.5, 16, edit, diff);
  CHECK(diff < 1e-5);
  CHECK(r.layer("features.3.conv.0.0")->removed.at(0).channel == 7);
  CHECK(r.layer("features.3.conv.1.0")->removed.at(0).channel == 7);
  CHECK(r.layer("features.1.conv.1")->removed.at(0).value == doctest::Approx(-0.3));
  CHECK(r.layer("features.3.conv.2")->kept_constant.at(0).reason == "constant, kept (residual)");
  CHECK(r.removed_total == 3);
}

TEST_CASE("pfq: a second pass removes nothing and changes nothing") {
  auto make = [] { return test::tiny_mobilenet(); };
  ModulePtr m = make();
  test::make_constant(conv_at(*m, "stem.0"), bn_at(*m, "stem.1"), 0, 0.2f);
  test::make_constant(conv_at(*m, "b1.pw.0"), bn_at(*m, "b1.pw.1"), 9, -0.1f);
  test::make_constant(conv_at(*m, "b2.pw.0"), bn_at(*m, "b2.pw.1"), 4, 0.3f);
  PruneReport first = pfq_prune(*m, {}, opts(Border::Exact, kIn));
  CHECK(first.removed_total == 5);  // stem + its depthwise, b1.pw + its depthwise, b2.pw
  const Tensor x = test::test_input(kIn, 4);
  NoGradGuard ng;
  m->eval();
  const Tensor y1 = m->forward(x);
  PruneReport second = pfq_prune(*m, {}, opts(Border::Exact, kIn));
  CHECK(second.removed_total == 0);
  CHECK(second.correction_maps == first.correction_maps);
  CHECK(test::max_abs_diff(y1, m->forward(x)) == 0);
}

TEST_CASE("pfq: criteria differ in what they call constant; the channel's deviation bound is reported") {
  auto make = [] { return test::two_units(1, models::Act::ReLU, true); };
  auto edit = [](Module& m) {
    test::make_constant(conv_at(m, "a.0"), bn_at(m, "a.1"), 0, 0.5f, 1e-20f);  // below eps, above FLT_MIN
    test::make_constant(conv_at(m, "a.0"), bn_at(m, "a.1"), 1, 0.5f, 1e-39f);  // subnormal
  };
  double diff = 1;
  CHECK(prune_twin(make, edit, opts(Border::Exact, kIn, "var-below-eps"), diff).removed_total == 2);
  PruneReport rz = prune_twin(make, edit, opts(Border::Exact, kIn, "var-zero"), diff);
  CHECK(rz.removed_total == 1);
  CHECK(rz.layer("a.0")->removed.at(0).channel == 1);
  CHECK(prune_twin(make, edit, opts(Border::Exact, kIn, "var-below=1e-30"), diff).removed_total == 1);
  PruneReport rt = prune_twin(make, edit, opts(Border::Exact, kIn, "var-below=0.6"), diff);
  CHECK(rt.removed_total >= 2);  // also real channels (var U(0.5, 2)): not exact any more
  const RemovedChannel& rc = rt.layer("a.0")->removed.at(0);
  const double g = test::get_at(bn_at(*make(), "a.1").weight(), 0);
  CHECK(rc.bound == doctest::Approx(std::abs(g) * std::sqrt(1e-20 / (1e-20 + 1e-5))));
  CHECK(parse_criterion("var-below=1e-3").str() == "var-below=0.001");
  CHECK_THROWS_WITH_AS(parse_criterion("var-below=x"), doctest::Contains("not a threshold"), Error);
  CHECK_THROWS_WITH_AS(parse_criterion("variance"), doctest::Contains("var-below-eps"), Error);
  CHECK_THROWS_WITH_AS(parse_border("edges"), doctest::Contains("exact, bias or keep"), Error);
}

TEST_CASE("pfq: the last channel of a layer is kept; the report prints and serialises") {
  auto make = [] { return test::two_units(1, models::Act::ReLU, true); };
  auto edit = [](Module& m) {
    for (int64_t c = 0; c < 6; ++c) test::make_constant(conv_at(m, "a.0"), bn_at(m, "a.1"), c, 0.1f * c);
  };
  double diff = 1;
  PruneReport r = prune_twin(make, edit, opts(Border::Exact, kIn), diff);
  CHECK(diff < 1e-5);
  CHECK(r.layer("a.0")->channels_after == 1);
  CHECK(r.layer("a.0")->kept_constant.at(0).reason == "constant, kept (last channel of the layer)");
  const auto j = r.to_json();
  CHECK(j["removed_total"] == 5);
  CHECK(j["layers"][0]["removed"].size() == 5);
  CHECK(j["criterion"] == "var-below-eps");
  CHECK(r.str().find("a.0") != std::string::npos);
  CHECK(r.str().find("removed 5 channels") != std::string::npos);
}
