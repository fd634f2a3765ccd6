/// \file
/// baselines.h — the pruning baselines PfQ is compared with at matched size (prune/): L1-norm
/// filter pruning (Li et al. 2017: smallest sum |W| filters) and BN-gamma pruning (network
/// slimming, Liu et al. 2017: smallest |gamma|). Same graph and surgery as PfQ, no
/// compensation (they change the function). Leaves out: retraining, per-layer sensitivity.
#pragma once
#include <string>

#include "layers/models/model_config.h"
#include "layers/module.h"
#include "prune/report.h"

namespace pfq::prune {

/// The baseline filter-pruning rankings compared with PfQ: smallest L1 norm of the filter, or smallest |BN gamma|.
enum class BaselineMethod { L1, BnGamma };
BaselineMethod parse_baseline(const std::string& s);  ///< "l1" | "bn-gamma"
/// "l1" | "bn-gamma".
const char* baseline_name(BaselineMethod m);

/// Options of the baseline pruners.
struct BaselineOptions {
  /// Which ranking.
  BaselineMethod method = BaselineMethod::L1;
  /// Conv output channels to remove in total, counted as PfQ counts them: removing a filter
  /// that feeds a depthwise conv removes that depthwise channel too (2 channels).
  int64_t target = 0;
};

/// Removes the `target` lowest-ranked filters over the whole model: filters of units whose
/// output is not residual-coupled (a depthwise conv goes with the filter that feeds it), at
/// least one channel left per layer. Ranking: l1 by mean |W| over the filter (= sum |W| within
/// a layer; the mean makes layers of different fan-in comparable), bn-gamma by |gamma|, ties
/// in forward order. A candidate that would overshoot the target is skipped, so the target is
/// met exactly whenever single-filter candidates remain; report.removed_total says what was.
PruneReport baseline_prune(Module& model, const models::ModelConfig& cfg, const BaselineOptions& opts);

}  // namespace pfq::prune
