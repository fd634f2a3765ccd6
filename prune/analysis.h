/// \file
/// analysis.h — per-layer statistics behind PfQ (prune/): for every conv -> BN unit, the BN
/// running-variance summary (min / quartiles / max, per-decade histogram), the channels each
/// criterion calls constant (var-zero, var-below-eps, var-below=\<t\>), and the BN-folded weight
/// range with its per-layer b-bit quantization step; optionally what a PfQ pass did to each
/// layer (attach()); as tables and JSON (`pfq inspect` shows it). Reads the model only.
/// Leaves out: activation ranges (need data).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "layers/module.h"
#include "prune/report.h"

namespace pfq::prune {

/// PfQ's statistics of one conv -> BN unit (see the file comment).
struct LayerAnalysis {
  std::string name;  ///< conv path
  std::string kind;  ///< "conv" | "depthwise"
  std::string act;   ///< "none" | "relu" | "relu6"
  bool residual = false;  ///< output enters a residual add (never removed)
  /// Output channels.
  int64_t channels = 0;
  double eps = 0;  ///< the BN's epsilon
  /// running_var quartiles (linear interpolation between order statistics, as numpy)
  ///@{
  double var_min = 0, var_q1 = 0, var_median = 0, var_q3 = 0, var_max = 0;
  ///@}
  /// Histogram by decade: (e, n) = n channels with 10^e <= var < 10^(e+1), ascending e;
  /// var_nonpositive counts var <= 0 (no decade).
  std::vector<std::pair<int, int64_t>> var_decades;
  /// Channels with running_var <= 0.
  int64_t var_nonpositive = 0;
  /// Channels with running_var below the BN's eps, below FLT_MIN, and below AnalysisOptions::var_threshold.
  ///@{
  int64_t below_eps = 0, below_flt_min = 0, below_t = 0;
  ///@}
  std::vector<int64_t> constant_eps;   ///< var-below-eps
  std::vector<int64_t> constant_zero;  ///< var-zero (below FLT_MIN)
  std::vector<int64_t> constant_t;     ///< var-below=\<t\> (AnalysisOptions::var_threshold >= 0)
  /// Rule 3.2 candidates: channels whose only consumer, a depthwise channel, is below eps.
  std::vector<int64_t> dead_via_depthwise;
  double max_w = 0;  ///< max |gamma * w / sqrt(var + eps)|
  /// max_w / (2^(b-1) - 1) at b = 4 and b = 8.
  ///@{
  double step4 = 0, step8 = 0;
  ///@}
  double step = 0;              ///< the same at AnalysisOptions::bits
  /// The same range without the var-below-eps channels: what PfQ's removal leaves (if removable).
  double max_w_without_constant = 0;
  /// After a PfQ pass (ModelAnalysis::attach), else channels_after = -1.
  int64_t channels_after = -1;
  /// max_w and step after the attached pass.
  ///@{
  double max_w_after = 0, step_after = 0;
  ///@}
};

/// Options of analyze().
struct AnalysisOptions {
  int bits = 4;               ///< per-layer quantization step reported at this width (2..16)
  double var_threshold = -1;  ///< >= 0: also count var-below=\<var_threshold\> channels
};

/// analyze()'s result: one LayerAnalysis per conv -> BN unit, optionally with a pruning pass attached.
struct ModelAnalysis {
  /// The options it was made with.
  AnalysisOptions options;
  std::vector<LayerAnalysis> layers;  ///< forward order
  /// After attach(): the pass's method/criterion/border and totals.
  std::string pruned_by;  ///< "" = no pass attached; e.g. "pfq (var-below-eps, border exact)"
  /// Channels removed and constant channels kept by the attached pass.
  ///@{
  int64_t removed_total = 0, kept_constant_total = 0;
  ///@}

  /// The layer named `name` (conv path), or nullptr.
  const LayerAnalysis* layer(const std::string& name) const;
  /// Fills the "after" fields from a pruning report of (a twin of) the analysed model.
  /// requires: the report's layers are this analysis' layers (same names, same order).
  void attach(const PruneReport& report);
  /// Two tables: BN running variance and criteria per layer; folded weights, quantization step
  /// (and after the attached pass).
  std::string str() const;
  /// The layers and totals as JSON (`pfq inspect --json`).
  nlohmann::json to_json() const;
};

/// Throws pfq::Error (naming the module) for a model the channel-dependency graph cannot analyse,
/// and for bits outside 2..16.
ModelAnalysis analyze(const Module& model, const AnalysisOptions& options = {});

}  // namespace pfq::prune
