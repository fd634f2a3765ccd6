/// \file
/// report.h — what a pruning pass did (prune/): per layer, channels before -> after, the
/// BN-folded weight range and per-layer quantization steps before -> after, every removed
/// channel (constant a_c, deviation bound, why) and every constant channel that was kept (why),
/// plus the rebuilt architecture record. Shared by PfQ and the baselines. Leaves out: accuracy
/// and output measurements (the `pfq prune` command adds those to the JSON).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "layers/models/model_config.h"

namespace pfq::prune {

/// A double as JSON (null for NaN/Inf), and printf-formatted: the report's and analysis's tables.
nlohmann::json num(double v);
/// printf-style formatting of one number.
std::string fmt(const char* f, double v);

/// One channel a pruning pass removed, with why.
struct RemovedChannel {
  int64_t channel = 0;  ///< index before pruning
  /// PfQ: the channel's constant output a_c (the interior value when `border_map`); NaN for the
  /// baselines and for channels removed only because their sole consumer went (rule 3.2).
  double value = 0;
  /// PfQ: |gamma| * sqrt(var / (var + eps)), the bound on the BN output's standard deviation
  /// (0 when the value is exact: cascade from a known constant). Baselines: the ranking score.
  double bound = 0;
  bool border_map = false;  ///< the output is a fixed map whose zero-padded border differs
  /// Why it was removed.
  std::string reason;
};

/// A constant channel that could not be removed, with why.
struct KeptChannel {
  /// Index of the channel.
  int64_t channel = 0;
  std::string reason;  ///< "constant, kept (residual)", ...
};

/// What a pruning pass did to one conv -> BN unit.
struct LayerReport {
  std::string name;  ///< conv path
  std::string kind;  ///< "conv" | "depthwise"
  /// Output channels before and after.
  ///@{
  int64_t channels_before = 0, channels_after = 0;
  ///@}
  /// max |gamma * w / sqrt(var + eps)| before and after.
  ///@{
  double max_w_before = 0, max_w_after = 0;
  ///@}
  /// max|w'| / (2^(b-1) - 1) at b = 4, before and after.
  ///@{
  double step4_before = 0, step4_after = 0;
  ///@}
  /// The same at b = 8.
  ///@{
  double step8_before = 0, step8_after = 0;
  ///@}
  /// Channels removed.
  std::vector<RemovedChannel> removed;
  /// Constant channels kept.
  std::vector<KeptChannel> kept_constant;
  /// As a consumer: "map" (exact border-correction map added), "bias" (constant folded into the
  /// conv bias), "running_mean" (folded into its BN's running mean), "" (nothing to compensate).
  std::string compensation;
  // --border bias: max over output channels and positions of |s_k| * |exact - folded|, i.e. the
  /// largest change of this layer's BN output the fold leaves on zero-padded borders.
  double border_error = 0;
};

/// What a pruning pass did, per layer and in total.
struct PruneReport {
  std::string method;     ///< "pfq" | "l1" | "bn-gamma"
  std::string criterion;  ///< PfQ
  std::string border;     ///< PfQ
  int64_t target = 0;     ///< baselines
  std::vector<LayerReport> layers;  ///< every conv -> BN unit, in forward order
  int64_t removed_total = 0;        ///< conv output channels removed, all layers
  /// Constant channels kept, all layers.
  int64_t kept_constant_total = 0;
  int64_t correction_maps = 0;      ///< convs carrying an exact border-correction map afterwards
  double border_error = 0;          ///< max over layers
  models::ModelConfig config;       ///< the pruned architecture (channels, corrections)

  /// The layer named `name` (conv path), or nullptr.
  const LayerReport* layer(const std::string& name) const;
  std::string str() const;  ///< the per-layer table
  /// The report as JSON (the workflow's pfq/report.json).
  nlohmann::json to_json() const;
};

}  // namespace pfq::prune
