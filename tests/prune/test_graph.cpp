// test_graph.cpp — the channel-dependency graph of the built-in models (MobileNetV1/V2,
// ResNet-20, ResNet-18) and of hand-built block chains; clear errors for what it cannot analyse.
#include <doctest/doctest.h>

#include "prune/graph.h"
#include "tests/prune/prune_test_util.h"

using namespace pfq;
using namespace pfq::prune;

namespace {
models::ModelConfig small(const std::string& arch, double width = 0.25) {
  models::ModelConfig c{.input_size = 16, .num_classes = 10, .width = width, .arch = arch};
  return c;
}
const Producer& at(const ChannelGraph& g, const std::string& name) {
  const int i = g.find(name);
  REQUIRE_MESSAGE(i >= 0, "no unit ", name);
  return g.producers[i];
}

// A module type the pruner does not know.
class Mystery : public Module {
 public:
  std::string type_name() const override { return "Mystery"; }
  Tensor forward(const Tensor& x) override { return x; }
};
}  // namespace

TEST_CASE("graph: MobileNetV1 chains stem -> depthwise -> pointwise -> ... -> pool + fc") {
  auto m = models::build_model(small("mobilenetv1"));
  ChannelGraph g = build_graph(*m, {1, 3, 16, 16});
  REQUIRE(g.producers.size() == 27);
  CHECK(g.adds.empty());
  const Producer& stem = at(g, "features.0.0");
  CHECK(stem.act == Activation::ReLU);
  CHECK(stem.input == -1);
  REQUIRE(stem.consumers.size() == 1);
  CHECK(stem.consumers[0].kind == ConsumerKind::Depthwise);
  CHECK(stem.consumers[0].name == "features.1.dw.0");
  CHECK(stem.sole_depthwise_consumer() == g.find("features.1.dw.0"));
  const Producer& dw = at(g, "features.1.dw.0");
  CHECK(dw.depthwise());
  CHECK(dw.input == g.find("features.0.0"));
  REQUIRE(dw.consumers.size() == 1);
  CHECK(dw.consumers[0].kind == ConsumerKind::Dense);
  CHECK(dw.consumers[0].input_shape == Shape{1, 8, 16, 16});
  const Producer& last = at(g, "features.13.pw.0");
  REQUIRE(last.consumers.size() == 1);
  CHECK(last.consumers[0].kind == ConsumerKind::PoolLinear);
  CHECK(last.consumers[0].name == "fc");
  CHECK(last.consumers[0].input_shape == Shape{1, 256, 2, 2});
  for (const auto& p : g.producers) {
    CHECK(p.prunable_output());
    CHECK(p.bn_name.substr(0, p.bn_name.size() - 1) == p.name.substr(0, p.name.size() - 1));
  }
}

TEST_CASE("graph: ResNet-20 couples every block output through the residual adds") {
  auto m = models::build_model(small("resnet20", 1.0));
  ChannelGraph g = build_graph(*m, {1, 3, 16, 16});
  REQUIRE(g.producers.size() == 21);  // stem + 9 x (conv1, conv2) + 2 downsample projections
  REQUIRE(g.adds.size() == 9);
  CHECK(!at(g, "conv1").residual.empty());  // identity shortcut of layer1.0
  const Producer& c1 = at(g, "layer1.0.conv1");
  CHECK(c1.prunable_output());
  REQUIRE(c1.consumers.size() == 1);
  CHECK(c1.consumers[0].name == "layer1.0.conv2");
  CHECK(c1.consumers[0].kind == ConsumerKind::Dense);
  CHECK(at(g, "layer1.0.conv2").residual == std::vector<std::string>{"layer1.0"});
  CHECK(!at(g, "layer2.0.downsample.0").residual.empty());
  CHECK(at(g, "layer2.0.conv1").input == -1);  // reads the residual sum of layer1.2
  // layer2.0 adds its conv2 and its projection; layer1.0 adds conv2 and the stem's output
  CHECK(g.adds[3].block == "layer2.0");
  CHECK(g.adds[3].producers == std::vector<int>{g.find("layer2.0.conv2"), g.find("layer2.0.downsample.0")});
  CHECK(g.adds[1].operand.find("residual sum of 'layer1.0'") != std::string::npos);
  int prunable = 0;
  for (const auto& p : g.producers) prunable += p.prunable_output();
  CHECK(prunable == 9);  // exactly the block-internal conv1 units
}

TEST_CASE("graph: MobileNetV2 residual blocks tie input and projection; the maxpool of ResNet-18 is open") {
  auto m = models::build_model(small("mobilenetv2", 0.5));
  ChannelGraph g = build_graph(*m, {1, 3, 16, 16});
  CHECK(at(g, "features.1.conv.0.0").depthwise());  // no expansion in the first block
  CHECK(at(g, "features.1.conv.0.0").input == g.find("features.0.0"));
  const Producer& proj1 = at(g, "features.1.conv.1");
  CHECK(proj1.act == Activation::None);
  CHECK(proj1.prunable_output());
  REQUIRE(proj1.consumers.size() == 1);
  CHECK(proj1.consumers[0].name == "features.2.conv.0.0");
  CHECK(!at(g, "features.2.conv.2").residual.empty());  // skip operand of features.3
  CHECK(at(g, "features.3.conv.2").residual == std::vector<std::string>{"features.3"});
  const Producer& expand = at(g, "features.3.conv.0.0");
  CHECK(expand.act == Activation::ReLU6);
  CHECK(expand.sole_depthwise_consumer() == g.find("features.3.conv.1.0"));
  CHECK(at(g, "features.18.0").consumers.at(0).name == "classifier.1");

  models::ModelConfig r18 = small("resnet18", 0.25);
  r18.input_size = 64;
  r18.variant = "imagenet";
  auto m18 = models::build_model(r18);
  ChannelGraph g18 = build_graph(*m18, {1, 3, 64, 64});
  CHECK(at(g18, "conv1").open.find("maxpool") != std::string::npos);
  CHECK(at(g18, "layer1.0.conv1").prunable_output());
}

TEST_CASE("graph: unknown modules and unsupported layouts are clear errors naming the path and type") {
  Generator gen(1);
  auto m = std::make_shared<Sequential>();
  m->add("stem", std::make_shared<models::ConvBNAct>(3, 4, 3, 1, 1, models::Act::ReLU, gen));
  m->add("odd", std::make_shared<Mystery>());
  CHECK_THROWS_WITH_AS(build_graph(*m), doctest::Contains("'odd' of type Mystery"), Error);

  auto bare = std::make_shared<Sequential>();
  bare->add("conv", std::make_shared<Conv2d>(3, 4, 3));
  bare->add("relu", std::make_shared<ReLU>());
  CHECK_THROWS_WITH_AS(build_graph(*bare), doctest::Contains("Conv2d 'conv'"), Error);

  auto grouped = std::make_shared<Sequential>();
  grouped->add("c", std::make_shared<Conv2d>(4, 8, 3, Conv2dArgs{.padding = 1, .groups = 2}));
  grouped->add("bn", std::make_shared<BatchNorm2d>(8));
  CHECK_THROWS_WITH_AS(build_graph(*grouped), doctest::Contains("groups=2"), Error);

  auto nested = std::make_shared<Sequential>();
  auto inner = std::make_shared<Sequential>();
  inner->add("x", std::make_shared<Mystery>());
  nested->add("block", inner);
  CHECK_THROWS_WITH_AS(build_graph(*nested), doctest::Contains("'block.x' of type Mystery"), Error);
}

TEST_CASE("graph: a unit that is the network output is open (never pruned)") {
  auto m = test::two_units(3, models::Act::None, false);
  ChannelGraph g = build_graph(*m, {1, 3, 8, 8});
  REQUIRE(g.producers.size() == 2);
  CHECK(g.producers[0].prunable_output());
  CHECK(g.producers[1].open == "network output");
  CHECK(g.str().find("a.0 (conv, 6 ch, relu) -> conv:b.0") != std::string::npos);
}
