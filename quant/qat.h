/// \file
/// qat.h — quantization-aware training preparation (quant/, docs/method.md 4.3): wraps a float
/// model in place with replace_module (no layer class is edited). Conv+BN pairs become QatConv2d
/// with BN folded (Krishnamoorthi 2018 3.2 / Jacob 2018), other convs and every Linear get a
/// weight quantizer, every ReLU/ReLU6 is followed by an unsigned activation quantizer, the
/// first conv quantizes the network input (signed) and the last Linear its input (the pooled
/// activations). Left out: per-use quantizers for BasicBlock's shared `relu` child.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "layers/batchnorm.h"
#include "layers/conv.h"
#include "quant/folded_bn.h"
#include "quant/quantizer.h"

namespace pfq::quant {

/// bits >= 32 means "no quantizer" (identity) for that role.
struct QatConfig {
  /// Weight bits of the inner layers.
  int wbits = 4;
  /// Activation bits.
  int abits = 4;
  int first_last_bits = 8;  ///< first conv's weights + input, last linear's weights + input
  /// Weight quantizer (make_quantizer name).
  std::string wquant = "minmax";
  /// Activation quantizer (make_quantizer name).
  std::string aquant = "ema";
  bool per_channel = false;  ///< weights only
  /// Fold each BN into the conv before it (the integer model needs it).
  bool fold_bn = true;
  /// Folded BN's batch statistics in training: "float" (a second, float conv: exact) or
  /// "quantized" (the quantized conv's output rescaled: one conv). See QatConv2d. from_json:
  /// absent = "float" (runs before the field existed).
  std::string bn_stats = "float";
  int64_t calib_batches = 50;  ///< ema observers: batches observed before quantizing
  /// MobileNetV2: a signed activation quantizer (abits) on every InvertedResidual output (after
  /// the residual add; child "output_quant"), so the linear bottlenecks are integer too (the
  /// integer model needs every conv input quantized). from_json: absent = false (older runs).
  bool block_output_quant = true;
};
/// Writes every QatConfig field.
void to_json(nlohmann::json& j, const QatConfig& c);
/// Reads the keys present; unknown keys are errors.
void from_json(const nlohmann::json& j, QatConfig& c);

/// While set, every enabled FakeQuantize with a quantizer records its output here, keyed by
/// module (pfq intcheck --trace-layers compares them with the integer model's codes). nullptr,
/// the default: nothing is recorded. One trace per process; not for concurrent forwards.
using FakeQuantTrace = std::map<const Module*, Tensor>;
/// Records every FakeQuantize output into `trace` (nullptr: stop recording); the integer check compares against it.
void set_fake_quant_trace(FakeQuantTrace* trace);

/// Whether QatConv2d::forward_into fuses the activation and its quantizer into the folded-BN op
/// (default on). Off: every module runs on its own, the reference the tests and A/B timings use.
void set_fused_qat_tails(bool on);
/// Whether the fused folded-BN tails are on (default on).
bool fused_qat_tails();

/// A Quantizer as a Module: its learnable tensors are parameters, its statistics buffers (same
/// handles/storage, so optimizers and checkpoints see them). forward(x) = q(x, is_training())
/// when enabled and a quantizer is set, else x. Type "FakeQuantize".
class FakeQuantize : public Module {
 public:
  explicit FakeQuantize(std::unique_ptr<Quantizer> q);  ///< q may be null: identity
  std::string type_name() const override { return "FakeQuantize"; }
  std::string extra_repr() const override;
  /// The quantizer applied to x (identity when disabled or without one).
  Tensor forward(const Tensor& x) override;
  int trace(GraphBuilder& g, const std::string& path, int x) override;  ///< a Quant unit
  /// The quantizer (may be null).
  Quantizer* quantizer() const { return q_.get(); }
  /// False: forward passes x through unchanged.
  bool enabled = true;

 private:
  std::unique_ptr<Quantizer> q_;
};

/// Holds a folded BatchNorm2d's tensors under the BN's own names (weight, bias, running_mean,
/// running_var, num_batches_tracked) so state dicts match the float model; forward is the
/// identity (the QatConv2d before it applies the BN). Type "FoldedBatchNorm2d".
class FoldedBatchNorm2d : public Module {
 public:
  /// Takes `bn`'s parameters, statistics and options.
  explicit FoldedBatchNorm2d(const BatchNorm2d& bn);
  std::string type_name() const override { return "FoldedBatchNorm2d"; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& x) override { return x; }
  bool is_identity() const override { return true; }
  int trace(GraphBuilder&, const std::string&, int x) override { return x; }  // part of the conv's unit
  /// sqrt(running_var + eps) [C], without gradient: the running sigma that the folded weight
  /// scale gamma / sigma divides by, in QatConv2d's forward and in the integer converter alike.
  Tensor running_sigma() const { return sqrt(add(buffer("running_var").clone(), eps)); }
  /// Channels.
  int64_t num_features;
  /// BN epsilon.
  double eps;
  /// Running-statistics factor (nullopt: cumulative average).
  std::optional<double> momentum;
  /// Whether gamma/beta exist.
  bool affine;
  /// A run property, not saved (--sync-bn of a data-parallel run): the training statistics are
  /// those of every rank's batch together (FoldedBnArgs::sync_stats).
  bool sync_stats = false;
};

/// Conv2d with a fake-quantized weight, optionally with the following BN folded in (bn != null).
/// Parameters/buffers keep the conv's names (weight, bias, output_correction); children
/// "weight_quant" and optionally "input_quant". x [N, IC, H, W] -> [N, OC, OH, OW], computing
///   eval / frozen: conv(x, q(s * w)) + beta + s * (b + corr - mu_r),  s = gamma / sqrt(var_r + eps)
///   training:      conv(x, q(s * w)) * sqrt(var_r + eps) / sqrt(var_b + eps)
///                  + gamma * (b + corr - mu_b) / sqrt(var_b + eps) + beta
/// with mu_b, var_b the batch statistics of z + b + corr (gradients flow through them) and the
/// running statistics updated like BatchNorm2d. z is chosen by BnStats:
///   Float:     z = conv(x, w), a second convolution with the float weights (exact BN statistics;
///              Krishnamoorthi 2018, fig. 8);
///   Quantized: z = conv(x, q(s * w)) / s, the quantized output rescaled (PyTorch's ConvBn QAT):
///              one convolution per step, statistics that include the weight quantization error.
enum class BnStats { Float, Quantized };
const std::vector<std::string>& bn_stats_names();  ///< "float", "quantized": BnStats's values in order
BnStats parse_bn_stats(const std::string& name);   ///< one of bn_stats_names(); throws naming the text

/// A conv with its BN folded in (or not) and its weights fake-quantized; optionally quantizes its input.
class QatConv2d : public Module {
 public:
  /// Wraps `conv`, the folded `bn` (null: no folding), weight quantizer `wq` and optional input quantizer.
  QatConv2d(std::shared_ptr<Conv2d> conv, std::shared_ptr<FoldedBatchNorm2d> bn, std::unique_ptr<Quantizer> wq,
            std::unique_ptr<Quantizer> input_q = nullptr);
  std::string type_name() const override { return "QatConv2d"; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& x) override;
  /// [input_quant: a Quant unit], then a Conv unit (folded BN included) computed by this module.
  int trace(GraphBuilder& g, const std::string& path, int x) override;
  /// In training with BN folded and batch statistics, on CPU: when `next` is the activation the
  /// model builders put after the BN (ReLU / ReLU6), alone or followed by an activation
  /// quantizer that takes a batch range (prepare_qat's Sequential(act, FakeQuantize): minmax,
  /// ema), both run inside the folded-BN op (folded_bn_train's tail): no separate activation
  /// and quantizer passes. Same values and gradients as next(forward(x)). Otherwise exactly that.
  Tensor forward_into(const Tensor& x, Module& next) override;
  Shape output_shape(const Shape& in) const override { return conv_->output_shape(in); }
  int64_t macs(const Shape& in) const override { return conv_->macs(in); }
  std::vector<std::pair<std::string, Shape>> child_input_shapes(const Shape&) const override { return {}; }
  /// Frozen: running statistics are used and no longer updated, also in training mode.
  void freeze_bn_stats(bool frozen = true) { frozen_ = frozen; }
  /// Whether the BN statistics are frozen.
  bool bn_frozen() const { return frozen_; }
  /// Whether a BN is folded in.
  bool folded() const { return bn_ != nullptr; }
  /// Chooses how the batch statistics are computed in training.
  void set_bn_stats(BnStats b) { bn_stats_ = b; }
  /// How the batch statistics are computed.
  BnStats bn_stats() const { return bn_stats_; }
  /// The wrapped convolution.
  const Conv2d& conv() const { return *conv_; }
  /// The folded BN; null when not folded.
  const FoldedBatchNorm2d* bn() const { return bn_.get(); }  // null when not folded

 private:
  Tensor run(const Tensor& x, const FoldedBnTail& tail);
  std::shared_ptr<Conv2d> conv_;
  std::shared_ptr<FoldedBatchNorm2d> bn_;
  bool frozen_ = false;
  BnStats bn_stats_ = BnStats::Float;
};

/// Linear with a fake-quantized weight and optionally quantized input; names as Linear.
class QatLinear : public Module {
 public:
  /// Wraps `lin` with weight quantizer `wq` and an optional input quantizer.
  QatLinear(std::shared_ptr<Linear> lin, std::unique_ptr<Quantizer> wq, std::unique_ptr<Quantizer> input_q = nullptr);
  std::string type_name() const override { return "QatLinear"; }
  std::string extra_repr() const override { return lin_->extra_repr(); }
  Tensor forward(const Tensor& x) override;
  int trace(GraphBuilder& g, const std::string& path, int x) override;  ///< [input_quant], Linear unit
  Shape output_shape(const Shape& in) const override { return lin_->output_shape(in); }
  int64_t macs(const Shape& in) const override { return lin_->macs(in); }
  std::vector<std::pair<std::string, Shape>> child_input_shapes(const Shape&) const override { return {}; }

 private:
  std::shared_ptr<Linear> lin_;
};

/// What prepare_qat wrapped.
struct QatReport {
  int64_t folded_convs = 0;     ///< conv+BN pairs folded
  int64_t plain_convs = 0;      ///< convs with a weight quantizer only
  /// Linear layers given weight quantizers.
  int64_t linears = 0;
  int64_t act_quantizers = 0;   ///< after ReLU/ReLU6
  int64_t block_output_quantizers = 0;  ///< MobileNetV2 block outputs (block_output_quant)
  /// Paths of the first conv and the last linear (kept at first_last_bits).
  ///@{
  std::string first_conv, last_linear;
  ///@}
};

/// Wraps `model` in place (see the file comment). State-dict names of the float model are kept;
/// quantizers add entries (e.g. "features.0.2.1.running_max"), so a float checkpoint loads with
/// strict = false and a QAT checkpoint loads strictly into a model prepared with the same config.
/// requires: float32/float64 CPU model, not prepared before.
QatReport prepare_qat(Module& model, const QatConfig& cfg);

/// Every QatConv2d of `model`: use running statistics from now on (or again batch statistics).
void freeze_bn_stats(Module& model, bool frozen = true);
/// Enables/disables every activation/input quantizer (stage "w" of --stages w,wa).
void set_activation_quant(Module& model, bool enabled);

/// The learned ranges (PACT's alpha, LSQ's step) must stay positive; an optimizer step that
/// drives one to <= 0 overshot (the run is diverging). Sets every such element to `floor`, so the
/// model stays usable, and returns the first as "<parameter>[i] = <value>" ("" when all are
/// positive).
std::string clamp_learned_ranges(Module& model, double floor = 1e-6);

/// BN re-estimation pass: resets the running mean/var of every BatchNorm2d and of every BN folded
/// into a QatConv2d, then recomputes them from `batches` batches (fewer if next_batch returns an
/// undefined tensor) as a cumulative average (PyTorch's momentum=None), with the BNs in training
/// mode and everything else in eval mode (quantizer ranges frozen, dropout off); no gradients.
/// Momenta, frozen flags and training modes are restored afterwards. Returns the batches used.
int64_t reestimate_bn_stats(Module& model, const std::function<Tensor()>& next_batch, int64_t batches);

}  // namespace pfq::quant
