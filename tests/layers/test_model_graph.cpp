// test_model_graph.cpp — the model graph (layers/model_graph.h): every builder's model traces
// into units in forward order whose inputs come earlier; blocks state their adds (BasicBlock,
// Bottleneck, InvertedResidual) with the branch first and the shortcut second; shapes follow
// output_shape; a module that cannot describe its dataflow is a clear error naming it.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>

#include "layers/model_graph.h"
#include "layers/models/registry.h"

using namespace pfq;

namespace {

class Opaque : public Module {
 public:
  std::string type_name() const override { return "Opaque"; }
  Tensor forward(const Tensor& x) override { return x; }
};

int find(const ModelGraph& g, UnitKind k, const std::string& path) {
  for (int i = 0; i < g.size(); ++i)
    if (g[i].kind == k && g[i].path == path) return i;
  FAIL("no ", unit_kind_name(k), " unit '", path, "'\n", g.str());
  return -1;
}

std::map<UnitKind, int> census(const ModelGraph& g) {
  std::map<UnitKind, int> n;
  for (const Unit& u : g.units) n[u.kind]++;
  return n;
}

models::ModelConfig cfg(const std::string& arch, double width, const std::string& variant = "") {
  models::ModelConfig c{.in_channels = 3, .input_size = 32, .num_classes = 10, .width = width, .variant = variant};
  c.arch = arch;
  return c;
}

}  // namespace

TEST_CASE("model graph: every builder's model traces in forward order with consistent users and shapes") {
  for (const auto& name : models::model_names()) {
    CAPTURE(name);
    ModulePtr m = models::build_model(cfg(name, 0.25));
    const ModelGraph g = trace_model(*m, {4, 3, 32, 32});
    REQUIRE(g.size() > 0);
    CHECK(g.output == g.size() - 1);
    CHECK(g[g.output].kind == UnitKind::Linear);
    CHECK(g[g.output].out_shape == Shape{1, 10});
    CHECK(g.input_users == std::vector<int>{0});  // the stem conv alone reads the input
    int convs = 0;
    for (int i = 0; i < g.size(); ++i) {
      const Unit& u = g[i];
      for (int in : u.inputs) {
        CHECK(in < i);
        const auto& users = g.users_of(in);
        CHECK(std::count(users.begin(), users.end(), i) == std::count(u.inputs.begin(), u.inputs.end(), in));
      }
      if (u.kind == UnitKind::Add) {
        CHECK(u.module == nullptr);
        REQUIRE(u.inputs.size() == 2);
        CHECK(g[u.inputs[0]].out_shape == g[u.inputs[1]].out_shape);
        CHECK(u.out_shape == u.in_shape);
      } else {
        CHECK(u.module != nullptr);
      }
      convs += u.kind == UnitKind::Conv;
    }
    // every Conv2d of the model is one unit
    int modules = 0;
    for (auto& [n, mod] : m->named_modules()) modules += mod->type_name() == "Conv2d";
    CHECK(convs == modules);
  }
}

TEST_CASE("model graph: blocks state their adds, branch first, shortcut second") {
  ModulePtr r18 = models::build_model(cfg("resnet18", 0.25));
  const ModelGraph g = trace_model(*r18, {1, 3, 32, 32});
  auto n = census(g);
  CHECK(n[UnitKind::Add] == 8);
  CHECK(n[UnitKind::Conv] == 20);
  CHECK(n[UnitKind::Act] == 17);  // stem + two per block (the shared relu runs twice)
  const int add = find(g, UnitKind::Add, "layer2.0");
  CHECK(g[g[add].inputs[0]].path == "layer2.0.bn2");
  CHECK(g[g[add].inputs[1]].path == "layer2.0.downsample.1");
  CHECK(g[g[add].users.at(0)].path == "layer2.0.relu");
  const int identity_add = find(g, UnitKind::Add, "layer2.1");
  CHECK(g[identity_add].inputs[1] == add + 1);  // the previous block's relu(sum)
  CHECK(g[g[identity_add].inputs[1]].kind == UnitKind::Act);

  ModulePtr r50 = models::build_model(cfg("resnet50", 0.0625, "imagenet"));
  const ModelGraph g50 = trace_model(*r50, {1, 3, 64, 64});
  auto n50 = census(g50);
  CHECK(n50[UnitKind::Add] == 16);
  CHECK(n50[UnitKind::Conv] == 53);
  CHECK(n50[UnitKind::BatchNorm] == 53);
  CHECK(n50[UnitKind::MaxPool] == 1);
  const int b = find(g50, UnitKind::Add, "layer1.0");
  CHECK(g50[g50[b].inputs[0]].path == "layer1.0.bn3");
  CHECK(g50[g50[b].inputs[1]].path == "layer1.0.downsample.1");
  CHECK(g50[find(g50, UnitKind::Conv, "layer3.0.conv2")].out_shape == Shape{1, 16, 4, 4});  // stride on the 3x3

  ModulePtr v2 = models::build_model(cfg("mobilenetv2", 0.25));
  const ModelGraph gv2 = trace_model(*v2);
  const int a3 = find(gv2, UnitKind::Add, "features.3");
  CHECK(gv2[gv2[a3].inputs[0]].path == "features.3.conv.3");
  CHECK(gv2[a3].inputs[1] == gv2[find(gv2, UnitKind::Conv, "features.3.conv.0.0")].inputs[0]);  // the block input
  CHECK(gv2[a3].in_shape.empty());                             // traced without an input shape
}

TEST_CASE("model graph: a module that does not describe its dataflow is an error naming path and type") {
  auto m = std::make_shared<Sequential>();
  m->add("conv", std::make_shared<Conv2d>(3, 4, 3));
  auto inner = std::make_shared<Sequential>();
  inner->add("odd", std::make_shared<Opaque>());
  m->add("block", inner);
  CHECK_THROWS_WITH_AS(trace_model(*m), doctest::Contains("'block.odd' of type Opaque"), Error);
  CHECK_THROWS_WITH_AS(trace_model(*m, {1, 3, 8}), doctest::Contains("[N, C, H, W]"), Error);
}
