// model_graph.cpp — GraphBuilder, trace_model, and Module::trace of the modules of layers/
// (model_graph.h): each layer one unit, Sequential a chain; the blocks' traces live with the
// blocks (models/blocks.cpp), the QAT wrappers' with them (quant/qat.cpp).
#include "layers/model_graph.h"

#include <sstream>

#include "layers/layers.h"

namespace pfq {

const char* unit_kind_name(UnitKind k) {
  switch (k) {
    case UnitKind::Conv: return "conv";
    case UnitKind::BatchNorm: return "batchnorm";
    case UnitKind::Act: return "act";
    case UnitKind::Add: return "add";
    case UnitKind::MaxPool: return "maxpool";
    case UnitKind::AvgPool: return "avgpool";
    case UnitKind::GlobalAvgPool: return "global-avgpool";
    case UnitKind::Flatten: return "flatten";
    case UnitKind::Linear: return "linear";
    case UnitKind::Quant: return "quant";
  }
  return "?";
}

std::string ModelGraph::str() const {
  std::ostringstream os;
  for (int i = 0; i < size(); ++i) {
    const Unit& u = units[static_cast<size_t>(i)];
    os << i << " " << unit_kind_name(u.kind) << " " << u.path << " <-";
    for (int in : u.inputs) os << " " << (in == kNetworkInput ? std::string("input") : std::to_string(in));
    if (!u.out_shape.empty()) os << " " << shape_str(u.out_shape);
    os << "\n";
  }
  return os.str();
}

GraphBuilder::GraphBuilder(const Shape& input_shape) : input_shape_(input_shape) {
  if (!input_shape_.empty()) input_shape_[0] = 1;
}

const Shape& GraphBuilder::shape_of(int i) const { return i == kNetworkInput ? input_shape_ : g_[i].out_shape; }

int GraphBuilder::add(UnitKind kind, const std::string& path, Module* m, std::vector<int> inputs, BnAct act) {
  PFQ_CHECK(!inputs.empty() && (m || kind == UnitKind::Add), "model graph: unit '", path, "' needs a module and an input");
  const int idx = g_.size();
  Unit u;
  u.kind = kind;
  u.path = path;
  u.module = m;
  u.act = act;
  u.inputs = std::move(inputs);
  if (!input_shape_.empty()) {
    u.in_shape = shape_of(u.inputs[0]);
    u.out_shape = m ? m->output_shape(u.in_shape) : u.in_shape;
  }
  for (int in : u.inputs) {
    PFQ_CHECK(in >= kNetworkInput && in < idx, "model graph: unit '", path, "' reads unit ", in, ", not an earlier one");
    (in == kNetworkInput ? g_.input_users : g_.units[static_cast<size_t>(in)].users).push_back(idx);
  }
  g_.units.push_back(std::move(u));
  return idx;
}

int GraphBuilder::child(const Module& parent, const std::string& parent_path, const std::string& name, int x) {
  return parent.child(name)->trace(*this, join_name(parent_path, name), x);
}

ModelGraph GraphBuilder::finish(int output) {
  g_.output = output;
  return std::move(g_);
}

ModelGraph trace_model(Module& model, const Shape& input_shape) {
  PFQ_CHECK(input_shape.empty() || input_shape.size() == 4, "model graph: input shape must be [N, C, H, W], got ",
            shape_str(input_shape));
  GraphBuilder b(input_shape);
  const int out = model.trace(b, "", kNetworkInput);
  return b.finish(out);
}

// ---- Module::trace of the layers of layers/ ----

int Module::trace(GraphBuilder&, const std::string& path, int) {
  PFQ_FAIL("model graph: cannot analyse module '", path.empty() ? "(root)" : path, "' of type ", type_name(),
           " (it does not describe its dataflow: override Module::trace; the graph knows Sequential, Conv2d, BatchNorm2d,",
           " ReLU/ReLU6, pooling, Flatten, Dropout, Identity, Linear and the blocks of layers/models)");
}

int Sequential::trace(GraphBuilder& g, const std::string& path, int x) {
  for (const auto& [name, c] : named_children()) x = c->trace(g, join_name(path, name), x);
  return x;
}

int Conv2d::trace(GraphBuilder& g, const std::string& path, int x) { return g.add(UnitKind::Conv, path, this, {x}); }
int Linear::trace(GraphBuilder& g, const std::string& path, int x) { return g.add(UnitKind::Linear, path, this, {x}); }
int BatchNorm2d::trace(GraphBuilder& g, const std::string& path, int x) { return g.add(UnitKind::BatchNorm, path, this, {x}); }
int ReLU::trace(GraphBuilder& g, const std::string& path, int x) { return g.add(UnitKind::Act, path, this, {x}, BnAct::ReLU); }
int ReLU6::trace(GraphBuilder& g, const std::string& path, int x) { return g.add(UnitKind::Act, path, this, {x}, BnAct::ReLU6); }
int Identity::trace(GraphBuilder&, const std::string&, int x) { return x; }
int Dropout::trace(GraphBuilder&, const std::string&, int x) { return x; }
int Flatten::trace(GraphBuilder& g, const std::string& path, int x) { return g.add(UnitKind::Flatten, path, this, {x}); }
int MaxPool2d::trace(GraphBuilder& g, const std::string& path, int x) { return g.add(UnitKind::MaxPool, path, this, {x}); }
int AvgPool2d::trace(GraphBuilder& g, const std::string& path, int x) { return g.add(UnitKind::AvgPool, path, this, {x}); }
int AdaptiveAvgPool2d::trace(GraphBuilder& g, const std::string& path, int x) {
  const bool global = output_size == std::array<int64_t, 2>{1, 1};
  return g.add(global ? UnitKind::GlobalAvgPool : UnitKind::AvgPool, path, this, {x});
}

}  // namespace pfq
