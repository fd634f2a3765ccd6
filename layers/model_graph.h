/// \file
/// model_graph.h — the one walk over a model (layers/): its units (conv, batch norm, activation,
/// residual add, pooling, flatten, linear, quantizer) in forward order, each with the units it
/// reads. Every module describes its own dataflow in Module::trace (a layer emits one unit, a
/// container chains its children, a block such as BasicBlock states its branches and add), so
/// the pruner's channel graph, QAT preparation and the integer converter iterate this list and
/// never name a block type. Leaves out: concatenation, several model inputs, control flow.
#pragma once
#include <string>
#include <vector>

#include "core/ops.h"
#include "layers/module.h"

namespace pfq {

/// What a unit of the model graph computes.
enum class UnitKind { Conv, BatchNorm, Act, Add, MaxPool, AvgPool, GlobalAvgPool, Flatten, Linear, Quant };
/// "conv", "bn", "act", ... for messages and ModelGraph::str().
const char* unit_kind_name(UnitKind k);

/// The index standing for the model's input in Unit::inputs.
constexpr int kNetworkInput = -1;

/// One step of a model's forward pass in the model graph: a layer, an activation or a residual add.
struct Unit {
  /// What it computes.
  UnitKind kind = UnitKind::Conv;
  std::string path;          ///< module path ("layer1.0.conv1"); an Add: the path of its block
  Module* module = nullptr;  ///< the module that computes it; nullptr for an Add
  BnAct act = BnAct::None;   ///< Act: which activation (ReLU or ReLU6)
  std::vector<int> inputs;   ///< units read, in operand order (an Add: branch first, shortcut second)
  std::vector<int> users;    ///< units reading this one's output, in forward order
  /// [1, ...] of inputs[0] and of the output; empty when traced without a shape.
  ///@{
  Shape in_shape, out_shape;
  ///@}
};

/// A model as units in forward order with their data edges (Module::trace builds it); pruning, QAT, the integer
/// converter and ONNX export walk it.
struct ModelGraph {
  std::vector<Unit> units;    ///< forward order: every input comes earlier
  int output = kNetworkInput;  ///< the unit holding the model's output
  std::vector<int> input_users;  ///< units reading the network input
  /// Unit `i`.
  const Unit& operator[](int i) const { return units.at(static_cast<size_t>(i)); }
  /// Number of units.
  int size() const { return static_cast<int>(units.size()); }
  /// The users of unit i (kNetworkInput: of the model's input).
  const std::vector<int>& users_of(int i) const { return i == kNetworkInput ? input_users : units.at(static_cast<size_t>(i)).users; }
  std::string str() const;  ///< one line per unit: index, kind, path, inputs, out shape
};

/// What Module::trace appends to. Shapes are propagated with Module::output_shape when the walk
/// started with an input shape.
class GraphBuilder {
 public:
  /// A builder for a model fed `input_shape` ([1, C, H, W]; {} traces without shapes).
  explicit GraphBuilder(const Shape& input_shape);
  /// Appends a unit computed by `m` (nullptr for an Add) from `inputs`; returns its index.
  int add(UnitKind kind, const std::string& path, Module* m, std::vector<int> inputs, BnAct act = BnAct::None);
  /// Traces child `name` of `parent` (at `parent_path`) reading unit x; returns its output unit.
  int child(const Module& parent, const std::string& parent_path, const std::string& name, int x);
  /// The graph, with unit `output` as the model's output.
  ModelGraph finish(int output);

 private:
  const Shape& shape_of(int i) const;
  ModelGraph g_;
  Shape input_shape_;
};

/// Traces `model` from its input. With `input_shape` ([N, C, H, W]) every unit's shapes are
/// filled in (batch 1). Throws pfq::Error naming the path and type of a module that cannot
/// describe its dataflow. The graph holds raw pointers into `model`: valid while the model
/// lives and its modules are not replaced.
ModelGraph trace_model(Module& model, const Shape& input_shape = {});

}  // namespace pfq
