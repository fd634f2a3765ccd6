// test_summary.cpp — shape-propagated summaries: published MAC counts (ResNet-18 1.82G,
// MobileNetV1 569M, MobileNetV2 300M at 224), per-row shapes/params/MACs against a hand count,
// agreement with real forward shapes, text/JSON forms, and the error for opaque composites.
#include <doctest/doctest.h>

#include "core/ops.h"
#include "layers/models/registry.h"
#include "layers/summary.h"

using namespace pfq;
using namespace pfq::models;

namespace {
const SummaryRow& row(const ModelSummary& s, const std::string& name) {
  for (const auto& r : s.rows)
    if (r.name == name) return r;
  FAIL("no summary row ", name);
  return s.rows.front();
}
ModelConfig imagenet() { return ModelConfig{.input_size = 224, .num_classes = 1000}; }
}  // namespace

TEST_CASE("summary: MACs at 224x224 match the published numbers within 1%") {
  const ModelSummary r18 = summarize(*build_model("resnet18", imagenet()), {1, 3, 224, 224});
  CHECK(r18.total_macs == doctest::Approx(1.82e9).epsilon(0.01));
  CHECK(r18.total_params == 11'689'512);
  const ModelSummary v1 = summarize(*build_model("mobilenetv1", imagenet()), {1, 3, 224, 224});
  CHECK(v1.total_macs == doctest::Approx(569e6).epsilon(0.01));
  const ModelSummary v2 = summarize(*build_model("mobilenetv2", imagenet()), {1, 3, 224, 224});
  CHECK(v2.total_macs == doctest::Approx(300e6).epsilon(0.01));
  CHECK(v2.output_shape == Shape{1, 1000});
  // MACs scale with the batch.
  CHECK(summarize(*build_model("mobilenetv2", imagenet()), {2, 3, 224, 224}).total_macs == 2 * v2.total_macs);
}

TEST_CASE("summary: rows carry shapes, parameters and MACs of each module") {
  auto m = build_model("resnet20", ModelConfig{});
  const ModelSummary s = summarize(*m, {1, 3, 32, 32});
  CHECK(s.rows.front().name.empty());
  CHECK(s.rows.front().type == "ResNet");
  CHECK(s.rows.size() == m->named_modules().size());
  const SummaryRow& c1 = row(s, "conv1");
  CHECK(c1.output_shape == Shape{1, 16, 32, 32});
  CHECK(c1.params == 16 * 3 * 9);
  CHECK(c1.macs == 32 * 32 * 16 * 3 * 9);
  CHECK(c1.depth == 1);
  const SummaryRow& ds = row(s, "layer2.0.downsample.0");
  CHECK(ds.input_shape == Shape{1, 16, 32, 32});
  CHECK(ds.output_shape == Shape{1, 32, 16, 16});
  CHECK(ds.macs == 16 * 16 * 32 * 16);
  CHECK(ds.depth == 4);
  const SummaryRow& blk = row(s, "layer2.0");
  CHECK(blk.type == "BasicBlock");
  CHECK_FALSE(blk.leaf);
  CHECK(blk.macs == row(s, "layer2.0.conv1").macs + row(s, "layer2.0.conv2").macs + ds.macs);
  CHECK(row(s, "fc").macs == 64 * 10);
  CHECK(s.total_params == 272'474);
  CHECK(s.trainable_params == s.total_params);
  // Hand count of ResNet-20 conv + fc MACs at 32x32 (option B shortcuts): stem 442,368 +
  // layer1 6 x 2,359,296 + layer2/3 13,107,200 each (incl. 131,072 per projection) + fc 640.
  CHECK(s.total_macs == 40'813'184);
}

TEST_CASE("summary: propagated shapes agree with a real forward") {
  for (const auto& name : model_names()) {
    CAPTURE(name);
    auto m = build_model(name, ModelConfig{.in_channels = 1, .input_size = 28});
    const ModelSummary s = summarize(*m, {1, 1, 28, 28});
    m->eval();
    NoGradGuard ng;
    Generator g(1);
    Tensor x = Tensor::randn({1, 1, 28, 28}, g);
    CHECK(m->forward(x).shape() == s.output_shape);
    // Chain models: each top-level child's recorded output is the next one's input.
    Tensor y = x;
    for (const auto& [child, mod] : m->named_children()) {
      y = mod->forward(y);
      CHECK(y.shape() == row(s, child).output_shape);
    }
  }
}

TEST_CASE("summary: text and JSON forms") {
  const ModelSummary s = summarize(*build_model("mobilenetv2", ModelConfig{}), {1, 3, 32, 32});
  const std::string text = s.str();
  CHECK(text.find("Layer") == 0);
  CHECK(text.find("features.1.conv.0.0") != std::string::npos);
  CHECK(text.find("Conv2dNormActivation") != std::string::npos);
  CHECK(text.find("Total params: 2,236,682") != std::string::npos);
  CHECK(s.str(1).find("features.1") == std::string::npos);  // depth-limited
  const nlohmann::json j = s.to_json();
  CHECK(j.at("rows").size() == s.rows.size());
  CHECK(j.at("total_macs").get<int64_t>() == s.total_macs);
  CHECK(j.at("rows")[1].at("name") == "features");
  CHECK(j.at("output_shape") == nlohmann::json({1, 10}));
}

TEST_CASE("summary: a composite module without shape propagation is a clear error") {
  struct Opaque : Module {
    Opaque() { register_module("inner", std::make_shared<ReLU>()); }
    std::string type_name() const override { return "Opaque"; }
    Tensor forward(const Tensor& x) override { return x; }
  };
  Opaque o;
  CHECK_THROWS_WITH_AS(summarize(o, {1, 3, 4, 4}), doctest::Contains("Opaque has child modules but no shape propagation"), Error);
}
