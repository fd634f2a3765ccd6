// test_baselines.cpp — L1-norm and BN-gamma filter pruning at a target size: exactly the
// target count, exactly the smallest-score filters, only in removable positions (residual
// outputs untouched, depthwise convs follow their input), all-but-one per layer at most.
#include <doctest/doctest.h>

#include <set>

#include "prune/baselines.h"
#include "tests/prune/prune_test_util.h"

using namespace pfq;
using namespace pfq::prune;
using test::bn_at;
using test::conv_at;

namespace {
models::ModelConfig resnet_cfg() {
  models::ModelConfig c{.input_size = 8, .width = 0.5, .arch = "resnet20"};
  return c;
}
std::set<std::pair<std::string, int64_t>> removed_of(const PruneReport& r) {
  std::set<std::pair<std::string, int64_t>> s;
  for (const auto& l : r.layers)
    for (const auto& c : l.removed) s.insert({l.name, c.channel});
  return s;
}
}  // namespace

TEST_CASE("baselines: bn-gamma removes exactly the target count, the smallest |gamma| of removable units") {
  ModulePtr m = models::build_model(resnet_cfg());
  test::randomize_bn(*m, 3);  // gamma in [0.5, 1.5]
  const std::set<std::pair<std::string, int64_t>> want{
      {"layer1.0.conv1", 2}, {"layer2.1.conv1", 7}, {"layer3.2.conv1", 0}, {"layer3.0.conv1", 31}, {"layer1.2.conv1", 5}};
  float g = 0.01f;
  for (const auto& [conv, c] : want) test::set_at(bn_at(*m, conv.substr(0, conv.size() - 5) + "bn1").weight(), c, g += 0.01f);
  // even smaller gammas in residual-coupled units must not be touched
  test::set_at(bn_at(*m, "bn1").weight(), 0, 1e-4f);
  test::set_at(bn_at(*m, "layer2.0.bn2").weight(), 3, -1e-4f);
  test::set_at(bn_at(*m, "layer2.0.downsample.1").weight(), 1, 0.f);
  PruneReport r = baseline_prune(*m, resnet_cfg(), {BaselineMethod::BnGamma, 5});
  CHECK(r.removed_total == 5);
  CHECK(removed_of(r) == want);
  CHECK(r.layer("layer3.0.conv1")->channels_after == 31);
  CHECK(r.config.channels.at("layer1.0.conv1") == 7);
  // the pruned model runs and its record rebuilds it
  ModulePtr rebuilt = models::build_model(r.config);
  rebuilt->load_state_dict(m->state_dict(), true);
  m->eval();
  CHECK(m->forward(test::test_input({1, 3, 8, 8}, 1)).shape() == Shape{1, 10});
}

TEST_CASE("baselines: l1 ranks filters by mean |W| over the whole model") {
  ModulePtr m = models::build_model(resnet_cfg());
  const std::set<std::pair<std::string, int64_t>> want{{"layer1.1.conv1", 3}, {"layer3.1.conv1", 12}, {"layer2.2.conv1", 0}};
  for (const auto& [conv, c] : want) {
    Tensor w = conv_at(*m, conv).weight();
    const int64_t per = w.numel() / w.size(0);
    for (int64_t i = 0; i < per; ++i) test::set_at(w, c * per + i, test::get_at(w, c * per + i) * 1e-3f);
  }
  Tensor stem = conv_at(*m, "conv1").weight();  // residual-coupled: never a candidate
  for (int64_t i = 0; i < 27; ++i) test::set_at(stem, i, 0.f);
  PruneReport r = baseline_prune(*m, resnet_cfg(), {BaselineMethod::L1, 3});
  CHECK(r.removed_total == 3);
  CHECK(removed_of(r) == want);
  CHECK(r.method == "l1");
  CHECK(r.to_json()["target"] == 3);
}

TEST_CASE("baselines: depthwise convs go with the filter feeding them; at most all-but-one per layer") {
  ModulePtr m = test::tiny_mobilenet();
  test::set_at(bn_at(*m, "stem.1").weight(), 6, 1e-3f);   // unit of 2: stem.6 + b1.dw.6
  test::set_at(bn_at(*m, "b2.pw.1").weight(), 11, 2e-3f);  // unit of 1: feeds pool + fc
  PruneReport r = baseline_prune(*m, {}, {BaselineMethod::BnGamma, 3});
  CHECK(r.removed_total == 3);
  CHECK(removed_of(r) == std::set<std::pair<std::string, int64_t>>{{"stem.0", 6}, {"b1.dw.0", 6}, {"b2.pw.0", 11}});
  CHECK(conv_at(*m, "b1.pw.0").in_channels == 7);
  CHECK(dynamic_cast<Linear&>(m->submodule("fc")).in_features == 15);
  m->eval();
  CHECK(m->forward(test::test_input({1, 3, 8, 8}, 1)).shape() == Shape{1, 5});

  ModulePtr all = test::tiny_mobilenet();
  PruneReport ra = baseline_prune(*all, {}, {BaselineMethod::L1, 1000});
  for (const auto& l : ra.layers) CHECK(l.channels_after == 1);
  CHECK(ra.removed_total == (8 - 1) * 2 + (16 - 1) * 2 + (16 - 1));
  CHECK_THROWS_WITH_AS(parse_baseline("random"), doctest::Contains("l1 or bn-gamma"), Error);
}
