// sequential.h — Sequential (layers/): children applied in registration order, named "0",
// "1", ... like PyTorch when appended with push_back, or by name with add() (model classes
// such as ResNet derive from it, so the pruner can walk any Sequential as a plain chain:
// each child consumes exactly the previous child's output). Leaves out: slicing, insertion.
#pragma once
#include <initializer_list>

#include "layers/module.h"

namespace pfq {

class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(const std::vector<ModulePtr>& modules);
  std::string type_name() const override { return "Sequential"; }
  Tensor forward(const Tensor& x) override;
  int trace(GraphBuilder& g, const std::string& path, int x) override;
  Shape output_shape(const Shape& in) const override;
  std::vector<std::pair<std::string, Shape>> child_input_shapes(const Shape& in) const override;

  // Appends under the name of its position ("0", "1", ...).
  Sequential& push_back(ModulePtr m);
  // Appends under an explicit name.
  Sequential& add(const std::string& name, ModulePtr m);
  size_t size() const { return named_children().size(); }
  ModulePtr operator[](size_t i) const;
};

}  // namespace pfq
