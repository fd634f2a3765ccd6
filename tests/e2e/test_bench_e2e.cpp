// test_bench_e2e.cpp — end to end: `pfq bench`'s timed modes (apps/bench_modes.h) on tiny
// models and inputs: every mode gives a complete result row, qat runs with the requested bits
// and the calibration pass (bench_model_mode throws if an EMA observer would still be observing),
// and rows report the float model's parameter count. No timing assertions (conventions: speed
// targets live in benchmarks).
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "apps/bench_modes.h"

using namespace pfq;

namespace {

app::BenchOptions tiny_options() {
  app::BenchOptions o;
  o.batch = 2;
  o.size = 8;
  o.classes = 10;
  o.width = 0.25;
  o.warmup = 1;
  o.steps = 1;
  return o;
}

}  // namespace

TEST_CASE("e2e: pfq bench train, infer and qat rows for every CIFAR model") {
  const app::BenchOptions o = tiny_options();
  for (const std::string model : {"resnet20", "mobilenetv1", "mobilenetv2"}) {
    CAPTURE(model);
    const auto train = app::bench_model_mode(o, model, "train", 100.0);
    const auto infer = app::bench_model_mode(o, model, "infer", 100.0);
    const auto qat = app::bench_model_mode(o, model, "qat", 100.0);
    for (const auto* r : {&train, &infer, &qat}) {
      CHECK((*r)["model"] == model);
      CHECK((*r)["median_ms"].get<double>() > 0);
      CHECK((*r)["min_ms"].get<double>() <= (*r)["max_ms"].get<double>());
      CHECK((*r)["peak_rss_mib"].get<double>() >= (*r)["rss_before_model_mib"].get<double>());
      CHECK((*r)["allocator_peak_in_use_mib"].get<double>() > 0);  // the model's weights at least
      CHECK((*r)["allocator_peak_held_mib"].get<double>() >= (*r)["allocator_peak_in_use_mib"].get<double>());
      CHECK((*r)["params"] == train["params"]);  // qat reports the float model's count
    }
    CHECK(train["mode"] == "train");
    CHECK(infer["mode"] == "infer");
    REQUIRE(qat.contains("qat"));
    CHECK(qat["qat"]["config"]["wbits"] == 4);
    CHECK(qat["qat"]["config"]["abits"] == 4);
    CHECK(qat["qat"]["config"]["fold_bn"] == true);
    CHECK(qat["qat"]["config"]["aquant"] == "ema");
    CHECK(qat["qat"]["folded_convs"].get<int64_t>() > 0);
    CHECK(qat["qat"]["act_quantizers"].get<int64_t>() > 0);
  }
}

TEST_CASE("e2e: pfq bench pairs the qat and train steps: alternating steps of both models, ratios of each pair") {
  app::BenchOptions o = tiny_options();
  o.steps = 3;
  const auto p = app::bench_paired_ratio(o, "mobilenetv2", "qat", "train");
  CHECK(p["model"] == "mobilenetv2");
  CHECK(p["pairs"] == 3);
  const double lo = p["min_ratio"].get<double>(), med = p["median_ratio"].get<double>(), hi = p["max_ratio"].get<double>();
  CHECK(lo > 0);
  CHECK(lo <= med);
  CHECK(med <= hi);
  CHECK(p["median_ms"][0].get<double>() > 0);
  CHECK(p["median_ms"][1].get<double>() > 0);
  CHECK_THROWS_WITH(app::bench_paired_ratio(o, "resnet20", "qat", "fast"), doctest::Contains("expected train, infer or qat"));
}

TEST_CASE("e2e: pfq bench qat takes the bits and quantizer preset, and rejects unknown modes") {
  app::BenchOptions o = tiny_options();
  o.wbits = 2;
  o.abits = 8;
  o.quantizer = "lsq";
  const auto r = app::bench_model_mode(o, "resnet20", "qat", 100.0);
  CHECK(r["qat"]["config"]["wbits"] == 2);
  CHECK(r["qat"]["config"]["abits"] == 8);
  CHECK(r["qat"]["config"]["wquant"] == "lsq");
  CHECK(r["qat"]["config"]["aquant"] == "lsq");
  CHECK_THROWS_WITH(app::bench_model_mode(o, "resnet20", "fast", 100.0), doctest::Contains("expected train, infer or qat"));
}

TEST_CASE("e2e: pfq bench --profile with shape rows splits convolutions by pass and layer; without, it does not") {
  app::BenchOptions o = tiny_options();
  o.profile_steps = 1;
  auto conv_rows = [](const nlohmann::ordered_json& r) {
    std::vector<std::string> names;
    for (const auto& op : r["profile"]["ops"]) {
      const std::string n = op["name"].get<std::string>();
      for (const char* pass : {"conv fwd ", "conv dX", "conv dW"})  // not "conv layout reorder" (oneDNN)
        if (n.rfind(pass, 0) == 0) names.push_back(n);
    }
    return names;
  };
  const auto plain = app::bench_model_mode(o, "mobilenetv1", "train", 100.0);
  REQUIRE(plain.contains("profile"));
  CHECK(conv_rows(plain).empty());
  CHECK(plain["profile"]["device_synchronised_scopes"] == false);
  CHECK_FALSE(plain.contains("device_busy_ms"));  // a GPU-only figure
  o.profile_shapes = true;
  const auto shaped = app::bench_model_mode(o, "mobilenetv1", "train", 100.0);
  const std::vector<std::string> rows = conv_rows(shaped);
  auto has = [&](const std::string& name) { return std::find(rows.begin(), rows.end(), name) != rows.end(); };
  // MobileNetV1 x0.25 on 8x8 inputs: the 3->8 stem, a depthwise 8-channel layer and its 8->16
  // pointwise partner; on the CPU one backward call computes both gradients.
  CHECK(has("conv fwd 3x3 3->8 8x8"));
  CHECK(has("conv fwd dw 3x3 8->8 8x8"));
  CHECK(has("conv dX+dW dw 3x3 8->8 8x8"));
  CHECK(has("conv fwd 1x1 8->16 8x8"));
  CHECK(has("conv dX+dW 1x1 8->16 8x8"));
  INFO("rows: ", rows.size());
  CHECK(rows.size() > 10);
}
