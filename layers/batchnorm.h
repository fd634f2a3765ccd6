/// \file
/// batchnorm.h — BatchNorm2d (layers/), PyTorch's semantics and names: weight (gamma) = 1,
/// bias (beta) = 0, buffers running_mean = 0, running_var = 1 and num_batches_tracked (int64
/// 0-d). Training normalises with batch statistics and updates the buffers (unbiased variance);
/// eval uses the buffers; without track_running_stats batch statistics are used always.
/// sync_stats (--sync-bn of a data-parallel run): training statistics of every rank's batch
/// together (core/dist/sync_stats.h). Leaves out: BatchNorm1d/3d (batch_norm itself also accepts [N, C]).
#pragma once
#include <optional>

#include "core/ops.h"
#include "layers/module.h"

namespace pfq {

/// Options of BatchNorm2d (PyTorch's defaults).
struct BatchNorm2dArgs {
  /// Added to the variance before the square root.
  double eps = 1e-5;
  /// Running-statistics factor; nullopt = cumulative average (1 / num_batches_tracked), as PyTorch.
  std::optional<double> momentum = 0.1;
  /// Learnable per-channel scale (weight, gamma) and shift (bias, beta).
  bool affine = true;
  /// Keep running_mean / running_var buffers for evaluation.
  bool track_running_stats = true;
};

/// x [N, C, H, W] -> same shape.
class BatchNorm2d : public Module {
 public:
  /// Batch normalisation over `num_features` channels.
  explicit BatchNorm2d(int64_t num_features, const BatchNorm2dArgs& args = {});
  std::string type_name() const override { return "BatchNorm2d"; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& x) override;
  int trace(GraphBuilder& g, const std::string& path, int x) override;
  /// forward followed by the activation `act` in the same pass (the model blocks use it for
  /// BN -> ReLU/ReLU6 pairs); equal to act(forward(x)).
  Tensor forward_act(const Tensor& x, BnAct act);
  Shape output_shape(const Shape& in) const override;

  /// Undefined when !affine / !track_running_stats.
  Tensor weight() const { return affine ? parameter("weight") : Tensor(); }
  /// Beta [C]; undefined when !affine.
  Tensor bias() const { return affine ? parameter("bias") : Tensor(); }
  /// Running mean [C]; undefined without tracking.
  Tensor running_mean() const { return track_running_stats ? buffer("running_mean") : Tensor(); }
  /// Running variance [C] (unbiased); undefined without tracking.
  Tensor running_var() const { return track_running_stats ? buffer("running_var") : Tensor(); }
  int64_t batches_tracked() const;  ///< 0 without tracking
  /// gamma_c / sqrt(running_var_c + eps) in float64 (gamma = 1 without affine): the factor by
  /// which folding this BN into the conv before it scales output channel c. The one definition
  /// the pruner, PfQ's analysis and fold_bn use; needs running statistics.
  std::vector<double> fold_scale() const;
  /// Channel surgery: keeps channels `keep` (sorted, unique) of the affine parameters and statistics.
  void keep_channels(const std::vector<int64_t>& keep);

  /// Channels C.
  int64_t num_features;
  /// Added to the variance before the square root.
  double eps;
  /// Running-statistics factor (nullopt: cumulative average).
  std::optional<double> momentum;
  /// Whether the layer has gamma/beta and whether it keeps running statistics.
  ///@{
  bool affine, track_running_stats;
  ///@}
  bool sync_stats = false;  ///< a run property, not saved: the ranks' batches normalise together
};

/// Training-step bookkeeping of a BN-like module: increments its "num_batches_tracked" buffer and
/// returns this batch's running-statistics factor (momentum, or 1/count when momentum is unset).
double count_bn_batch(Module& bn, const std::optional<double>& momentum);

}  // namespace pfq
