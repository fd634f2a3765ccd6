/// \file
/// summary.h — a model summary computed by shape propagation, without running the model
/// (layers/): one row per module in pre-order (name, type, depth, input/output shape, parameters
/// with children, multiply-accumulates with children) and totals. MACs count conv and linear
/// only (see Module::macs). Leaves out: memory estimates, per-row timing.
#pragma once
#include <nlohmann/json.hpp>

#include "layers/module.h"

namespace pfq {

/// One module's line of a ModelSummary.
struct SummaryRow {
  std::string name;  ///< dotted; "" for the root
  /// Type name ("Conv2d", ...).
  std::string type;
  int depth = 0;     ///< 0 for the root
  bool leaf = true;  ///< no child modules
  /// Shapes in and out, batch included.
  ///@{
  Shape input_shape, output_shape;
  ///@}
  int64_t params = 0;  ///< elements, children included
  int64_t macs = 0;    ///< children included
};

/// Per-module shapes, parameters and multiply-adds of a model for one input shape (summarize()).
struct ModelSummary {
  /// One row per module, pre-order.
  std::vector<SummaryRow> rows;
  /// The model's input and output shapes.
  ///@{
  Shape input_shape, output_shape;
  ///@}
  /// Elements of all parameters.
  int64_t total_params = 0;
  int64_t trainable_params = 0;  ///< requires_grad
  /// Multiply-adds of one forward pass.
  int64_t total_macs = 0;
  /// Text table; max_depth < 0 shows every level, 1 only the root's children.
  std::string str(int max_depth = -1) const;
  /// The rows and totals as JSON.
  nlohmann::json to_json() const;
};

/// requires: `input_shape` is the full input shape including batch (MACs scale with it).
ModelSummary summarize(const Module& model, const Shape& input_shape);

}  // namespace pfq
