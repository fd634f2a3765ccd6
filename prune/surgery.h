/// \file
/// surgery.h — physical channel removal on a channel-dependency graph (prune/): shrinks conv,
/// BN and Linear tensors, updates the layer fields, folds constant compensations into a conv
/// bias / BN running mean or an exact output-correction map, and records the new architecture.
/// Shared by PfQ and the baselines. Leaves out: deciding what to remove (pfq.h, baselines.h).
#pragma once
#include <vector>

#include "layers/models/model_config.h"
#include "prune/graph.h"
#include "prune/report.h"

namespace pfq::prune {

/// Per producer (same order as ChannelGraph::producers): output channels to remove.
using ChannelSets = std::vector<std::vector<int64_t>>;

/// Checks `removed` against the graph (indices valid, residual-coupled and open outputs
/// untouched, a depthwise conv loses exactly the channels its input producer loses, at least
/// one channel left per layer), then deletes the channels: conv weight rows / bias / output
/// correction rows, BN gamma, beta, running_mean, running_var, and the matching input slice of
/// every consumer (dense conv weight columns, Linear columns). Nothing is modified when it throws.
void remove_channels(ChannelGraph& g, const ChannelSets& removed);

/// Adds `delta` [OC] (per output channel, constant over positions) to the output of unit u's
/// conv: into its bias when it has one, else subtracted from its BN's running mean (exact in
/// eval mode). Returns "bias" or "running_mean".
std::string fold_constant(Producer& u, const std::vector<double>& delta);
/// Adds `map` (float64 [1, OC, OH, OW]) to the conv's output-correction buffer (created on
/// first use).
void add_output_correction(Conv2d& conv, const Tensor& map);

/// t's values (any dtype, any layout) as doubles in row-major order.
std::vector<double> to_double(const Tensor& t);
/// max over the layer of |s_c * w_c| (the BN-folded weights); 0 for an empty layer.
double max_folded_weight(const Conv2d& conv, const BatchNorm2d& bn);
/// Per-layer symmetric quantization step at b bits: max|w'| / (2^(b-1) - 1).
double quant_step(double max_abs, int bits);

/// One LayerReport per producer with the "before" fields (and "after" = "before") filled.
std::vector<LayerReport> begin_report(const ChannelGraph& g);
/// After surgery: channels/weight range "after", totals, and `cfg` with the model's channel
/// counts and correction maps recorded (ModelConfig::channels, ModelConfig::output_corrections).
void finish_report(PruneReport& r, const ChannelGraph& g, const Module& model, const models::ModelConfig& cfg);

}  // namespace pfq::prune
