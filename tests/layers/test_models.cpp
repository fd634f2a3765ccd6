// test_models.cpp — model builders and registry: exact parameter counts (torchvision / paper
// numbers), torchvision state-dict names, forward shapes at CIFAR 32x32x3 and Fashion-MNIST
// 28x28x1, channel-override rebuilds of pruned architectures, ModelConfig JSON round trip.
#include <doctest/doctest.h>

#include <cmath>

#include "core/ops.h"
#include "core/autograd.h"
#include "layers/models/blocks.h"
#include "layers/models/registry.h"
#include "layers/models/state_size.h"

using namespace pfq;
using namespace pfq::models;

namespace {
ModelConfig imagenet_cfg() { return ModelConfig{.in_channels = 3, .input_size = 224, .num_classes = 1000}; }

Shape shape_of(const Module& m, const std::string& key) {
  for (const auto& [n, t] : m.state_dict())
    if (n == key) return t.shape();
  FAIL("no state-dict key ", key);
  return {};
}

bool all_finite(const Tensor& t) {
  for (float v : t.contiguous().to_vector<float>())
    if (!std::isfinite(v)) return false;
  return true;
}
}  // namespace

TEST_CASE("models: parameter counts match the published / torchvision numbers exactly") {
  CHECK(build_model("resnet18", imagenet_cfg())->num_parameters() == 11'689'512);
  CHECK(build_model("resnet50", imagenet_cfg())->num_parameters() == 25'557'032);
  CHECK(build_model("mobilenetv1", imagenet_cfg())->num_parameters() == 4'231'976);
  CHECK(build_model("mobilenetv2", imagenet_cfg())->num_parameters() == 3'504'872);
  // CIFAR ResNets with 1x1 conv + BN projection shortcuts (option B). The paper's option A
  // (zero-padding, parameter-free) counts are these minus the two projections' 2,752
  // parameters: 269,722 / 464,154 / 853,018.
  const ModelConfig cifar10{.in_channels = 3, .input_size = 32, .num_classes = 10};
  const int64_t r20 = build_model("resnet20", cifar10)->num_parameters();
  CHECK(r20 == 272'474);
  CHECK(std::round(r20 / 1e4) / 100 == doctest::Approx(0.27));
  CHECK(build_model("resnet32", cifar10)->num_parameters() == 466'906);
  CHECK(build_model("resnet56", cifar10)->num_parameters() == 855'770);
  // Width multiplier: torchvision's channel rule gives MobileNetV2 0.5 at 1000 classes 1,968,680.
  ModelConfig half = imagenet_cfg();
  half.width = 0.5;
  CHECK(build_model("mobilenetv2", half)->num_parameters() == 1'968'680);
}

TEST_CASE("models: resnet18 state-dict names and shapes follow torchvision") {
  auto m = build_model("resnet18", imagenet_cfg());
  const NamedTensors sd = m->state_dict();
  REQUIRE(sd.size() == 122);  // 62 parameters + 20 BN x 3 buffers
  CHECK(m->named_parameters().size() == 62);
  CHECK(sd[0].first == "conv1.weight");
  CHECK(sd[1].first == "bn1.weight");
  CHECK(sd[3].first == "bn1.running_mean");
  CHECK(sd[5].first == "bn1.num_batches_tracked");
  CHECK(sd[6].first == "layer1.0.conv1.weight");
  CHECK(sd[120].first == "fc.weight");
  CHECK(sd[121].first == "fc.bias");
  CHECK(shape_of(*m, "conv1.weight") == Shape{64, 3, 7, 7});
  CHECK(shape_of(*m, "layer1.1.bn2.running_var") == Shape{64});
  CHECK(shape_of(*m, "layer2.0.conv1.weight") == Shape{128, 64, 3, 3});
  CHECK(shape_of(*m, "layer2.0.downsample.0.weight") == Shape{128, 64, 1, 1});
  CHECK(shape_of(*m, "layer2.0.downsample.1.num_batches_tracked") == Shape{});
  CHECK(shape_of(*m, "layer4.1.conv2.weight") == Shape{512, 512, 3, 3});
  CHECK(shape_of(*m, "fc.weight") == Shape{1000, 512});
  auto block = m->child_as<Sequential>("layer3")->child_as<BasicBlock>("0");
  CHECK(block->has_downsample());
  CHECK(block->conv1()->stride[0] == 2);
  CHECK_FALSE(m->child_as<Sequential>("layer3")->child_as<BasicBlock>("1")->has_downsample());
}

TEST_CASE("models: resnet50 state-dict names and shapes follow torchvision") {
  auto m = build_model("resnet50", imagenet_cfg());
  const NamedTensors sd = m->state_dict();
  REQUIRE(sd.size() == 320);  // 161 parameters + 53 BN x 3 buffers
  CHECK(m->named_parameters().size() == 161);
  CHECK(sd[6].first == "layer1.0.conv1.weight");
  CHECK(sd[12].first == "layer1.0.conv2.weight");
  CHECK(sd[18].first == "layer1.0.conv3.weight");
  CHECK(sd[24].first == "layer1.0.downsample.0.weight");
  CHECK(sd[319].first == "fc.bias");
  CHECK(shape_of(*m, "layer1.0.conv1.weight") == Shape{64, 64, 1, 1});
  CHECK(shape_of(*m, "layer1.0.conv3.weight") == Shape{256, 64, 1, 1});
  CHECK(shape_of(*m, "layer2.0.conv2.weight") == Shape{128, 128, 3, 3});
  CHECK(shape_of(*m, "layer3.5.bn3.running_var") == Shape{1024});
  CHECK(shape_of(*m, "layer4.0.downsample.0.weight") == Shape{2048, 1024, 1, 1});
  CHECK(shape_of(*m, "fc.weight") == Shape{1000, 2048});
  auto block = m->child_as<Sequential>("layer2")->child_as<Bottleneck>("0");
  CHECK(block->has_downsample());
  CHECK(block->child_as<Conv2d>("conv2")->stride[0] == 2);  // v1.5: the stride on the 3x3
  CHECK(block->child_as<Conv2d>("conv1")->stride[0] == 1);
  CHECK_FALSE(m->child_as<Sequential>("layer2")->child_as<Bottleneck>("1")->has_downsample());
}

TEST_CASE("models: mobilenetv2 state-dict names and shapes follow torchvision") {
  auto m = build_model("mobilenetv2", imagenet_cfg());
  CHECK(m->named_parameters().size() == 158);
  CHECK(m->state_dict().size() == 314);
  CHECK(m->state_dict()[0].first == "features.0.0.weight");
  CHECK(shape_of(*m, "features.0.0.weight") == Shape{32, 3, 3, 3});
  CHECK(shape_of(*m, "features.0.1.running_mean") == Shape{32});
  CHECK(shape_of(*m, "features.1.conv.0.0.weight") == Shape{32, 1, 3, 3});
  CHECK(shape_of(*m, "features.1.conv.0.1.weight") == Shape{32});
  CHECK(shape_of(*m, "features.1.conv.1.weight") == Shape{16, 32, 1, 1});
  CHECK(shape_of(*m, "features.1.conv.2.running_var") == Shape{16});
  CHECK(shape_of(*m, "features.2.conv.0.0.weight") == Shape{96, 16, 1, 1});
  CHECK(shape_of(*m, "features.2.conv.1.0.weight") == Shape{96, 1, 3, 3});
  CHECK(shape_of(*m, "features.2.conv.2.weight") == Shape{24, 96, 1, 1});
  CHECK(shape_of(*m, "features.2.conv.3.bias") == Shape{24});
  CHECK(shape_of(*m, "features.17.conv.2.weight") == Shape{320, 960, 1, 1});
  CHECK(shape_of(*m, "features.18.0.weight") == Shape{1280, 320, 1, 1});
  CHECK(shape_of(*m, "classifier.1.weight") == Shape{1000, 1280});
  auto features = m->child_as<Sequential>("features");
  auto b2 = features->child_as<InvertedResidual>("2"), b3 = features->child_as<InvertedResidual>("3");
  CHECK_FALSE(b2->has_residual());  // stride 2
  CHECK(b3->has_residual());        // stride 1, 24 -> 24
  CHECK(b3->expand()->conv()->out_channels == 144);
  CHECK(b3->depthwise()->conv()->is_depthwise());
  CHECK(b3->project()->out_channels == 24);
  CHECK(features->child_as<InvertedResidual>("1")->expand() == nullptr);
  CHECK(m->child_as<Sequential>("classifier")->child("0")->type_name() == "Dropout");
}

TEST_CASE("models: forward shapes at CIFAR 32x32x3 and Fashion-MNIST 28x28x1") {
  Generator g(5);
  for (const auto& name : model_names()) {
    for (int64_t c : {3, 1}) {
      const int64_t hw = c == 3 ? 32 : 28;
      CAPTURE(name);
      CAPTURE(hw);
      auto m = build_model(name, ModelConfig{.in_channels = c, .input_size = hw, .num_classes = 10, .seed = 1});
      m->eval();
      const Tensor x = Tensor::randn({2, c, hw, hw}, g);
      Tensor y;
      {
        NoGradGuard ng;
        y = m->forward(x);
      }
      CHECK(y.shape() == Shape{2, 10});
      CHECK(m->output_shape({2, c, hw, hw}) == Shape{2, 10});
      CHECK(all_finite(y));
    }
  }
}

TEST_CASE("models: variants move the strides as documented") {
  // CIFAR variants end at 4x4 (MobileNets) / 8x8 (CIFAR ResNets) / 4x4 (ResNet-18) for 32x32.
  auto v1 = build_model("mobilenetv1", ModelConfig{.input_size = 32});
  CHECK(v1->child("features")->output_shape({1, 3, 32, 32}) == Shape{1, 1024, 4, 4});
  auto v2 = build_model("mobilenetv2", ModelConfig{.input_size = 32});
  CHECK(v2->child("features")->output_shape({1, 3, 32, 32}) == Shape{1, 1280, 4, 4});
  auto r18 = build_model("resnet18", ModelConfig{.input_size = 32});
  CHECK(shape_of(*r18, "conv1.weight") == Shape{64, 3, 3, 3});
  CHECK_FALSE(r18->has_child("maxpool"));
  CHECK(r18->child("layer4")->output_shape({1, 256, 8, 8}) == Shape{1, 512, 4, 4});
  CHECK(build_model("mobilenetv2", imagenet_cfg())->child("features")->output_shape({1, 3, 224, 224}) == Shape{1, 1280, 7, 7});
  // An explicit variant overrides the input-size default; CIFAR ResNets have no ImageNet form.
  CHECK(build_model("resnet18", ModelConfig{.input_size = 32, .variant = "imagenet"})->has_child("maxpool"));
  CHECK_THROWS_WITH_AS(build_model("resnet20", imagenet_cfg()), doctest::Contains("only as a CIFAR-style"), Error);
  CHECK_THROWS_WITH_AS(build_model("resnet20", ModelConfig{.variant = "tiny"}), doctest::Contains("variant"), Error);
  CHECK_THROWS_WITH_AS(build_model("vgg16", ModelConfig{}), doctest::Contains("known: resnet20"), Error);
}

TEST_CASE("models: construction is seeded") {
  auto a = build_model("resnet20", ModelConfig{.seed = 3}), b = build_model("resnet20", ModelConfig{.seed = 3});
  auto c = build_model("resnet20", ModelConfig{.seed = 4});
  const Tensor wa = a->child("conv1")->parameter("weight"), wb = b->child("conv1")->parameter("weight");
  CHECK(wa.to_vector<float>() == wb.to_vector<float>());
  CHECK(wa.to_vector<float>() != c->child("conv1")->parameter("weight").to_vector<float>());
  // torchvision init: kaiming_normal_(fan_out): std sqrt(2 / (16 * 9)) for conv1.
  double ss = 0;
  for (float v : wa.to_vector<float>()) ss += double(v) * v;
  CHECK(std::sqrt(ss / wa.numel()) == doctest::Approx(std::sqrt(2.0 / 144)).epsilon(0.15));
}

TEST_CASE("models: channel overrides rebuild pruned shapes consistently") {
  ModelConfig cfg{.seed = 1};
  cfg.channels = {{"layer1.0.conv1", 7}, {"layer3.2.conv1", 20}};
  auto r = build_model("resnet20", cfg);
  CHECK(shape_of(*r, "layer1.0.conv1.weight") == Shape{7, 16, 3, 3});
  CHECK(shape_of(*r, "layer1.0.bn1.running_mean") == Shape{7});
  CHECK(shape_of(*r, "layer1.0.conv2.weight") == Shape{16, 7, 3, 3});
  CHECK(shape_of(*r, "layer3.2.conv2.weight") == Shape{64, 20, 3, 3});
  CHECK(r->output_shape({2, 3, 32, 32}) == Shape{2, 10});

  ModelConfig v2cfg{.seed = 1};
  v2cfg.channels = {{"features.2.conv.0.0", 50}, {"features.18.0", 640}};
  auto v2 = build_model("mobilenetv2", v2cfg);
  CHECK(shape_of(*v2, "features.2.conv.1.0.weight") == Shape{50, 1, 3, 3});
  CHECK(v2->child_as<Sequential>("features")->child_as<InvertedResidual>("2")->depthwise()->conv()->groups == 50);
  CHECK(shape_of(*v2, "features.2.conv.2.weight") == Shape{24, 50, 1, 1});
  CHECK(shape_of(*v2, "classifier.1.weight") == Shape{10, 640});

  ModelConfig v1cfg;
  v1cfg.channels = {{"features.3.pw.0", 100}};
  auto v1 = build_model("mobilenetv1", v1cfg);
  CHECK(shape_of(*v1, "features.4.dw.0.weight") == Shape{100, 1, 3, 3});
  CHECK(shape_of(*v1, "features.4.pw.0.weight") == Shape{256, 100, 1, 1});

  // Record -> JSON -> rebuild gives identical shapes and accepts the weights.
  const ModelConfig rec = describe("resnet20", cfg, *r);
  CHECK(rec.channels.at("layer1.0.conv1") == 7);
  CHECK(rec.channels.at("layer2.0.downsample.0") == 32);
  const ModelConfig back = nlohmann::json(rec).get<ModelConfig>();
  CHECK(back == rec);
  auto rebuilt = build_model(back);
  REQUIRE(rebuilt->state_dict().size() == r->state_dict().size());
  CHECK_NOTHROW(rebuilt->load_state_dict(r->state_dict()));
}

TEST_CASE("models: inconsistent channel overrides are clear errors") {
  auto with = [](std::map<std::string, int64_t> ch) {
    ModelConfig c;
    c.channels = std::move(ch);
    return c;
  };
  // A residual stream channel pruned in one place only.
  CHECK_THROWS_WITH_AS(build_model("resnet20", with({{"layer1.1.conv2", 12}})), doctest::Contains("layer1.1 (conv2 vs block input)"), Error);
  CHECK_THROWS_WITH_AS(build_model("resnet20", with({{"layer2.0.conv2", 30}})), doctest::Contains("downsample.0"), Error);
  CHECK_THROWS_WITH_AS(build_model("mobilenetv2", with({{"features.3.conv.2", 20}})), doctest::Contains("features.3"), Error);
  // A depthwise conv cannot change its count on its own; unknown names are rejected.
  CHECK_THROWS_WITH_AS(build_model("mobilenetv1", with({{"features.2.dw.0", 10}})), doctest::Contains("depthwise"), Error);
  CHECK_THROWS_WITH_AS(build_model("resnet20", with({{"layer9.0.conv1", 4}})), doctest::Contains("layer9.0.conv1"), Error);
  CHECK_THROWS_WITH_AS(build_model("resnet20", with({{"conv1", 0}})), doctest::Contains("positive"), Error);
}

TEST_CASE("models: ModelConfig JSON round trip and validation") {
  ModelConfig c{.in_channels = 1, .input_size = 28, .num_classes = 7, .width = 0.5, .variant = "cifar", .seed = 99};
  c.arch = "mobilenetv2";
  c.channels = {{"features.0.0", 8}};
  const nlohmann::json j = c;
  CHECK(j.at("width").get<double>() == 0.5);
  CHECK(j.at("channels").at("features.0.0").get<int>() == 8);
  CHECK(nlohmann::json::parse(j.dump()).get<ModelConfig>() == c);
  CHECK(ModelConfig{.input_size = 64}.resolved_variant() == "cifar");
  CHECK(ModelConfig{.input_size = 65}.resolved_variant() == "imagenet");
  CHECK_THROWS_WITH_AS(nlohmann::json({{"widht", 1.0}}).get<ModelConfig>(), doctest::Contains("unknown key \"widht\""), Error);
  CHECK_THROWS_WITH_AS(nlohmann::json({{"num_classes", "ten"}}).get<ModelConfig>(), doctest::Contains("num_classes"), Error);
  CHECK_THROWS_WITH_AS(build_model(ModelConfig{}), doctest::Contains("arch is empty"), Error);
}

TEST_CASE("models: state_numel counts the state dict build_model creates, without building") {
  auto built = [](const ModelConfig& c) {
    int64_t n = 0;
    for (const auto& [key, t] : build_model(c)->state_dict()) n += t.numel();
    return static_cast<double>(n);
  };
  for (const auto& name : model_names())
    for (double width : {0.25, 0.5})
      for (const char* variant : {"cifar", "imagenet"}) {
        if (name != "resnet18" && name != "resnet50" && std::string(variant) == "imagenet") continue;  // only their stems differ
        ModelConfig c{.in_channels = 1, .input_size = 28, .num_classes = 7, .width = width, .variant = variant};
        c.arch = name;
        CAPTURE(name);
        CAPTURE(width);
        CAPTURE(variant);
        CHECK(state_numel(c) == built(c));
      }
  // pruned channel counts (the overrides above) and PfQ output corrections
  ModelConfig r{.arch = "resnet20"};
  r.channels = {{"layer1.0.conv1", 7}, {"layer3.2.conv1", 20}, {"conv1", 12}, {"layer1.0.conv2", 12}, {"layer1.1.conv2", 12},
                {"layer1.2.conv2", 12}, {"layer2.0.conv1", 5}};
  r.output_corrections = {{"layer2.0.conv1", {5, 16, 16}}};
  ModelConfig r50{.width = 0.25, .arch = "resnet50"};
  r50.channels = {{"layer1.0.conv1", 9}, {"layer2.3.conv2", 5}, {"layer4.2.conv1", 60}};
  ModelConfig v1{.width = 0.5, .arch = "mobilenetv1"};
  v1.channels = {{"features.3.pw.0", 100}, {"features.13.pw.0", 40}};
  ModelConfig v2{.arch = "mobilenetv2"};
  v2.channels = {{"features.2.conv.0.0", 50}, {"features.18.0", 640}};
  for (const ModelConfig& c : {r, r50, v1, v2}) {
    CAPTURE(c.arch);
    CHECK(state_numel(c) == built(c));
  }
  // what a hand-edited config can claim, counted without allocating it
  ModelConfig wide{.width = 1e6, .arch = "mobilenetv1"};
  CHECK(state_numel(wide) > 1e17);
  CHECK_THROWS_WITH_AS(state_numel(ModelConfig{.width = 1e300, .arch = "resnet20"}), doctest::Contains("width must be a number in (0, 1e9]"),
                       Error);
  CHECK_THROWS_WITH_AS(state_numel(ModelConfig{.arch = "vgg16"}), doctest::Contains("unknown model 'vgg16'"), Error);
}

TEST_CASE("models: BN -> ReLU/ReLU6 pairs of the blocks run as one fused op, and as two once a child is replaced") {
  Generator gen(3);
  for (Act a : {Act::ReLU, Act::ReLU6}) {
    ConvBNAct block(3, 4, 3, 1, 1, a, gen);
    block.train();
    Tensor x = Tensor::randn({2, 3, 6, 6}, gen).set_requires_grad(true);
    Tensor fused = block.forward(x);
    REQUIRE(fused.impl().grad_fn);
    CHECK(fused.impl().grad_fn->name == "batch_norm+act");
    // The same block with its activation child replaced by an equal module: the unfused path,
    // same values (the fused op is tested against the composition in test_ops_forward).
    block.replace_module("2", a == Act::ReLU ? ModulePtr(std::make_shared<ReLU>()) : ModulePtr(std::make_shared<ReLU6>()));
    block.eval();
    Tensor e1 = block.forward(x);
    CHECK(e1.impl().grad_fn->name == "batch_norm+act");
    block.replace_module("2", std::make_shared<Identity>());
    Tensor e2 = block.forward(x);
    CHECK(e2.impl().grad_fn->name == "batch_norm");
    Tensor e3 = a == Act::ReLU ? relu(e2) : relu6(e2);
    CHECK(e1.to_vector<float>() == e3.to_vector<float>());
  }
  // any Sequential (a ResNet's stem: conv1, bn1, relu) fuses a plain BN -> ReLU pair the same way
  Sequential stem;
  stem.add("conv1", std::make_shared<Conv2d>(3, 4, 3, Conv2dArgs{.padding = 1, .bias = false}, gen));
  stem.add("bn1", std::make_shared<BatchNorm2d>(4));
  stem.add("relu", std::make_shared<ReLU>());
  stem.train();
  Tensor xs = Tensor::randn({2, 3, 6, 6}, gen).set_requires_grad(true);
  Tensor ys = stem.forward(xs);
  CHECK(ys.impl().grad_fn->name == "batch_norm+act");
  CHECK(ys.to_vector<float>() == relu(stem[1]->forward(stem[0]->forward(xs))).to_vector<float>());
  BasicBlock bb(4, 4, 4, 1, false, gen);
  bb.train();
  Tensor x = Tensor::randn({2, 4, 5, 5}, gen).set_requires_grad(true);
  Tensor y = bb.forward(x);
  // relu(bn2(...) + shortcut): BN not fusable with the add; the add and the ReLU run as one op
  CHECK(y.impl().grad_fn->name == "add_relu");
}
