/// \file
/// pfq.h — PfQ, Pruning for Quantization (prune/), as specified in
/// docs/method.md section 3: find constant channels from BN running statistics
/// (plus dead producers through their depthwise consumers), compensate every consumer with the
/// channel's constant output, and remove the channels: a smaller model computing the same
/// function (exactly with --border exact). Needs no data and no training; a second pass is a
/// no-op. Leaves out: channels concatenated or pooled spatially (kept, reported "open").
#pragma once
#include <string>

#include "layers/models/model_config.h"
#include "layers/module.h"
#include "prune/report.h"

namespace pfq::prune {

/// When is channel c constant? var_c below its BN's eps (default), below FLT_MIN, or below t.
struct Criterion {
  /// Which channels count as constant: running_var below the BN's eps, below FLT_MIN (zero), or below `threshold`.
  /// The criterion's kinds.
  enum Kind { VarBelowEps, VarZero, VarBelow };
  Kind kind = VarBelowEps;  ///< which criterion
  double threshold = 0;  ///< VarBelow only
  std::string str() const;  ///< "var-below-eps" | "var-zero" | "var-below=<t>"
  /// The variance threshold for a BN with epsilon `bn_eps`.
  double threshold_for(double bn_eps) const;
};
/// Parses "var-below-eps", "var-zero" or "var-below=<t>" (t >= 0); throws listing the forms.
Criterion parse_criterion(const std::string& s);

/// How a constant feeding a zero-padded kxk conv is compensated (spec 3.4).
enum class Border {
  Exact,  ///< fixed correction map [OC, OH, OW] on the consumer's output: the same function
  Bias,   ///< interior constant into the consumer's bias / BN running mean: borders differ
  Keep,   ///< such channels are not removed
};
Border parse_border(const std::string& s);  ///< "exact" | "bias" | "keep"
/// "exact" | "bias" | "keep".
const char* border_name(Border b);

/// Options of pfq_prune().
struct PfqOptions {
  /// Which channels are constant.
  Criterion criterion;
  /// How removed channels that reach zero-padded borders are compensated.
  Border border = Border::Exact;
  /// [N, C, H, W] the model will see; {} = [1, cfg.in_channels, cfg.input_size, cfg.input_size].
  /// Correction maps are computed for this size (the conv then rejects other input sizes).
  Shape input_shape;
};

/// requires: `model` is built from pfq's blocks (graph.h) with BN running statistics; `cfg`
///   describes it (arch may be empty for hand-built models; then only the report's config
///   is not rebuildable).
/// ensures: the constant channels found are deleted; in eval mode the model computes the same
///   function as before (Exact and Keep: up to float rounding; Bias: except on zero-padded
///   borders, bounded by the report's border_error); report.config records the new channel
///   counts and correction maps so models::build_model(report.config) rebuilds it.
PruneReport pfq_prune(Module& model, const models::ModelConfig& cfg, const PfqOptions& opts = {});

/// max |a(x) - b(x)| with both models in eval mode, without autograd (modes are restored).
double max_output_change(Module& a, Module& b, const Tensor& x);

}  // namespace pfq::prune
