/// \file
/// sequential.h — Sequential (layers/): children applied in registration order, named "0",
/// "1", ... like PyTorch when appended with push_back, or by name with add() (model classes
/// such as ResNet derive from it, so the pruner can walk any Sequential as a plain chain:
/// each child consumes exactly the previous child's output). Leaves out: slicing, insertion.
#pragma once
#include <initializer_list>

#include "layers/module.h"

namespace pfq {

/// Children run in order, each on the previous one's output (PyTorch's nn.Sequential).
class Sequential : public Module {
 public:
  Sequential() = default;
  /// Children named "0", "1", ... in the given order.
  explicit Sequential(const std::vector<ModulePtr>& modules);
  std::string type_name() const override { return "Sequential"; }
  Tensor forward(const Tensor& x) override;
  int trace(GraphBuilder& g, const std::string& path, int x) override;
  Shape output_shape(const Shape& in) const override;
  std::vector<std::pair<std::string, Shape>> child_input_shapes(const Shape& in) const override;

  /// Appends under the name of its position ("0", "1", ...).
  Sequential& push_back(ModulePtr m);
  /// Appends under an explicit name.
  Sequential& add(const std::string& name, ModulePtr m);
  /// Number of children.
  size_t size() const { return named_children().size(); }
  /// Child `i` in order.
  ModulePtr operator[](size_t i) const;
};

}  // namespace pfq
