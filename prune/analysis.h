// analysis.h — per-layer statistics behind PfQ (prune/): for every conv -> BN unit, the BN
// running-variance summary, the channels each criterion calls constant, and the BN-folded
// weight range with its per-layer 4- and 8-bit quantization steps; as a table and JSON
// (`pfq inspect` shows it). Reads the model only. Leaves out: activation ranges (need data).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "layers/module.h"

namespace pfq::prune {

struct LayerAnalysis {
  std::string name;  // conv path
  std::string kind;  // "conv" | "depthwise"
  std::string act;   // "none" | "relu" | "relu6"
  bool residual = false;  // output enters a residual add (never removed)
  int64_t channels = 0;
  double eps = 0;  // the BN's epsilon
  double var_min = 0, var_median = 0, var_max = 0;
  int64_t below_eps = 0, below_flt_min = 0;
  std::vector<int64_t> constant_eps;   // var-below-eps
  std::vector<int64_t> constant_zero;  // var-zero (below FLT_MIN)
  // Rule 3.2 candidates: channels whose only consumer, a depthwise channel, is below eps.
  std::vector<int64_t> dead_via_depthwise;
  double max_w = 0;  // max |gamma * w / sqrt(var + eps)|
  double step4 = 0, step8 = 0;  // max_w / (2^(b-1) - 1)
  // The same range without the var-below-eps channels: what PfQ's removal leaves (if removable).
  double max_w_without_constant = 0;
};

struct ModelAnalysis {
  std::vector<LayerAnalysis> layers;  // forward order
  const LayerAnalysis* layer(const std::string& name) const;
  std::string str() const;
  nlohmann::json to_json() const;
};

// Throws pfq::Error (naming the module) for a model the channel-dependency graph cannot analyse.
ModelAnalysis analyze(const Module& model);

}  // namespace pfq::prune
