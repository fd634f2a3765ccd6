// model_config.cpp — ModelConfig JSON conversion and ChannelPlan (model_config.h).
#include "layers/models/model_config.h"

#include <algorithm>

#include "core/error.h"

namespace pfq::models {

std::string ModelConfig::resolved_variant() const {
  if (variant.empty()) return input_size <= 64 ? "cifar" : "imagenet";
  PFQ_CHECK(variant == "cifar" || variant == "imagenet", "model config: variant must be \"cifar\" or \"imagenet\", got \"",
            variant, "\"");
  return variant;
}

void to_json(nlohmann::json& j, const ModelConfig& c) {
  j = nlohmann::json{{"arch", c.arch},         {"in_channels", c.in_channels}, {"input_size", c.input_size},
                     {"num_classes", c.num_classes}, {"width", c.width},       {"variant", c.variant},
                     {"seed", c.seed},         {"channels", c.channels}};
  if (!c.output_corrections.empty()) j["output_corrections"] = c.output_corrections;
  if (!c.activation.empty()) j["activation"] = c.activation;
}

void from_json(const nlohmann::json& j, ModelConfig& c) {
  PFQ_CHECK(j.is_object(), "model config: expected a JSON object, got ", j.type_name());
  for (const auto& [key, value] : j.items()) {
    try {
      if (key == "arch") c.arch = value.get<std::string>();
      else if (key == "in_channels") c.in_channels = value.get<int64_t>();
      else if (key == "input_size") c.input_size = value.get<int64_t>();
      else if (key == "num_classes") c.num_classes = value.get<int64_t>();
      else if (key == "width") c.width = value.get<double>();
      else if (key == "variant") c.variant = value.get<std::string>();
      else if (key == "seed") c.seed = value.get<uint64_t>();
      else if (key == "channels") c.channels = value.get<std::map<std::string, int64_t>>();
      else if (key == "output_corrections") c.output_corrections = value.get<std::map<std::string, std::vector<int64_t>>>();
      else if (key == "activation") c.activation = value.get<std::string>();
      else PFQ_FAIL("model config: unknown key \"", key, "\" (known: arch, in_channels, input_size, num_classes, width, variant, seed, channels, output_corrections, activation)");
    } catch (const nlohmann::json::exception& e) {
      PFQ_FAIL("model config: key \"", key, "\" has the wrong type (", value.type_name(), "): ", e.what());
    }
  }
}

int64_t make_divisible(double v, int64_t divisor) {
  int64_t nv = std::max<int64_t>(divisor, static_cast<int64_t>(v + divisor / 2.0) / divisor * divisor);
  if (static_cast<double>(nv) < 0.9 * v) nv += divisor;
  return nv;
}

int64_t ChannelPlan::out(const std::string& conv, int64_t default_channels) {
  auto it = overrides_.find(conv);
  if (it == overrides_.end()) return default_channels;
  used_.insert(conv);
  PFQ_CHECK(it->second > 0, "channel override for '", conv, "' must be positive, got ", it->second);
  return it->second;
}

int64_t ChannelPlan::fixed(const std::string& conv, int64_t channels) {
  auto it = overrides_.find(conv);
  if (it == overrides_.end()) return channels;
  used_.insert(conv);
  PFQ_CHECK(it->second == channels, "channel override for '", conv, "' is ", it->second, " but this depthwise conv has as many",
            " outputs as inputs, ", channels, ": override the conv that produces its input instead");
  return channels;
}

void ChannelPlan::require_equal(const std::string& where, int64_t a, int64_t b) {
  PFQ_CHECK(a == b, "channel overrides disagree at ", where, ": ", a, " vs ", b,
            " channels (channels meeting in a residual add must be pruned together)");
}

void ChannelPlan::finish(const std::string& model) const {
  std::string unused;
  for (const auto& [name, c] : overrides_)
    if (!used_.count(name)) unused += (unused.empty() ? "" : ", ") + name;
  PFQ_CHECK(unused.empty(), model, ": channel overrides name no conv layer of this model: ", unused,
            " (use conv module names such as 'layer1.0.conv1' or 'features.2.conv.0.0')");
}

}  // namespace pfq::models
