/// \file
/// model_config.h — the architecture record of a model (layers/models/): name, input channels,
/// input size, classes, width multiplier, variant, init seed and per-conv output-channel
/// overrides (a pruned model rebuilt from checkpoint metadata), with JSON conversion, plus the
/// ChannelPlan that builders use to honour the overrides. Leaves out: per-layer kernel changes.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace pfq::models {

/// Everything needed to rebuild a model: architecture, input, classes, width and (after pruning) per-conv channel
/// counts; saved in checkpoints.
struct ModelConfig {
  /// Channels of the input images.
  int64_t in_channels = 3;
  int64_t input_size = 32;  ///< side of the square input; picks the variant when variant is ""
  /// Classes of the classifier.
  int64_t num_classes = 10;
  double width = 1.0;       ///< channel width multiplier
  std::string variant{};    ///< "cifar" | "imagenet" | "" = auto (input_size <= 64 -> cifar)
  uint64_t seed = 0;        ///< initialisation (and dropout-mask) seed
  /// Conv module name (dotted, as in the state dict without ".weight") -> out_channels.
  std::map<std::string, int64_t> channels{};
  /// Conv module name -> [OC, OH, OW] of its output-correction buffer (PfQ --border exact).
  std::map<std::string, std::vector<int64_t>> output_corrections{};
  std::string arch{};       ///< model name for build_model(cfg) and checkpoints ("resnet20", ...)
  /// "" = the architecture's own activation; "relu6": MobileNetV1 with ReLU6 (timm's
  /// mobilenetv1_100). Written to JSON only when set, so other checkpoints' metadata is unchanged.
  std::string activation{};

  /// "cifar" or "imagenet"; throws on any other explicit value.
  std::string resolved_variant() const;
  /// Field-wise equality.
  bool operator==(const ModelConfig&) const = default;
};

/// JSON object with keys arch, in_channels, input_size, num_classes, width, variant, seed,
/// channels, output_corrections (activation when set). from_json rejects unknown keys and wrong types (pfq::Error
/// naming the key);
/// absent keys keep their defaults.
void to_json(nlohmann::json& j, const ModelConfig& c);
/// Reads a ModelConfig from JSON (see to_json).
void from_json(const nlohmann::json& j, ModelConfig& c);

/// torchvision's _make_divisible: v rounded to a multiple of `divisor` (at least `divisor`),
/// never below 90% of v.
int64_t make_divisible(double v, int64_t divisor = 8);

/// Output channels per conv for a builder: the override when the config has one for that
/// name, else the builder's default. finish() rejects overrides that named no conv.
class ChannelPlan {
 public:
  /// A plan over the config's `overrides` (conv name -> out_channels).
  explicit ChannelPlan(const std::map<std::string, int64_t>& overrides) : overrides_(overrides) {}
  /// Out channels of `conv`: the override, else `default_channels`.
  int64_t out(const std::string& conv, int64_t default_channels);
  /// For convs whose count is fixed by their input (depthwise): an override must equal it.
  int64_t fixed(const std::string& conv, int64_t channels);
  /// Residual adds and depthwise inputs: the two channel counts must agree.
  static void require_equal(const std::string& where, int64_t a, int64_t b);
  /// Throws pfq::Error naming `model` and the overrides that matched no conv.
  void finish(const std::string& model) const;

 private:
  std::map<std::string, int64_t> overrides_;
  std::set<std::string> used_;
};

}  // namespace pfq::models
