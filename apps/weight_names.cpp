// weight_names.cpp — name maps and architecture recognition for plain state dicts
// (apps/weight_names.h).
#include "apps/weight_names.h"

#include <algorithm>
#include <iterator>
#include <regex>

namespace pfq::app {
namespace {

// timm mobilenetv1_100's stages: dsa_r1_k3_s1_c64, dsa_r2_k3_s2_c128, dsa_r2_k3_s2_c256,
// dsa_r6_k3_s2_c512, dsa_r2_k3_s2_c1024 (block counts; the first block of a stage has its stride).
constexpr int kTimmV1Stages[] = {1, 2, 2, 6, 2};

const Tensor* find_tensor(const NamedTensors& s, const std::string& name) {
  for (const auto& [n, t] : s)
    if (n == name) return &t;
  return nullptr;
}

// Size of dimension d of tensor `name`, 0 when absent or of lower rank.
int64_t dim_of(const NamedTensors& s, const std::string& name, size_t d) {
  const Tensor* t = find_tensor(s, name);
  return t && t->shape().size() > d ? t->shape()[d] : 0;
}

// Largest i with "<prefix>{i}<suffix>" in the state dict, -1 when none.
int last_index(const NamedTensors& s, const std::string& prefix, const std::string& suffix) {
  int last = -1;
  for (const auto& [n, t] : s) {
    if (n.size() <= prefix.size() + suffix.size() || n.compare(0, prefix.size(), prefix) != 0 ||
        n.compare(n.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const std::string mid = n.substr(prefix.size(), n.size() - prefix.size() - suffix.size());
    if (mid.empty() || mid.size() > 4 || mid.find_first_not_of("0123456789") != std::string::npos) continue;
    last = std::max(last, std::stoi(mid));
  }
  return last;
}

bool has_tensor(const NamedTensors& s, const std::string& name) { return find_tensor(s, name) != nullptr; }

void recognise_resnet(const NamedTensors& s, models::ModelConfig& m) {
  const int64_t stem = dim_of(s, "conv1.weight", 0);
  if (has_tensor(s, "layer1.0.conv3.weight")) m.arch = "resnet50";
  else if (has_tensor(s, "layer4.0.conv1.weight")) m.arch = "resnet18";
  else {
    const int n = last_index(s, "layer1.", ".conv1.weight") + 1;
    if (n == 3) m.arch = "resnet20";
    else if (n == 5) m.arch = "resnet32";
    else if (n == 9) m.arch = "resnet56";
    else return;
    m.variant = "cifar";
    m.width = stem / 16.0;
    return;
  }
  m.width = stem / 64.0;
  const int64_t k = dim_of(s, "conv1.weight", 3);
  m.variant = k == 7 ? "imagenet" : k == 3 ? "cifar" : "";
}

}  // namespace

const std::vector<NameRule>& timm_mobilenetv1_rules() {
  static const std::vector<NameRule> rules{
      {"conv_stem.weight", "features.0.0.weight"},
      {"bn1.{x}", "features.0.1.{x}"},
      {"blocks.{i}.{j}.conv_dw.weight", "features.{k+1}.dw.0.weight"},
      {"blocks.{i}.{j}.bn1.{x}", "features.{k+1}.dw.1.{x}"},
      {"blocks.{i}.{j}.conv_pw.weight", "features.{k+1}.pw.0.weight"},
      {"blocks.{i}.{j}.bn2.{x}", "features.{k+1}.pw.1.{x}"},
      {"classifier.{x}", "fc.{x}"},
  };
  return rules;
}

std::optional<std::string> timm_mobilenetv1_to_pfq(const std::string& name) {
  static const std::regex bn(R"(bn1\.(weight|bias|running_mean|running_var|num_batches_tracked))");
  static const std::regex block(
      R"(blocks\.(\d)\.(\d)\.(conv_dw\.weight|conv_pw\.weight|(bn1|bn2)\.(weight|bias|running_mean|running_var|num_batches_tracked)))");
  static const std::regex head(R"(classifier\.(weight|bias))");
  std::smatch m;
  if (name == "conv_stem.weight") return "features.0.0.weight";
  if (std::regex_match(name, m, bn)) return "features.0.1." + m[1].str();
  if (std::regex_match(name, m, head)) return "fc." + m[1].str();
  if (!std::regex_match(name, m, block)) return std::nullopt;
  const int stage = std::stoi(m[1].str()), j = std::stoi(m[2].str());
  if (stage >= static_cast<int>(std::size(kTimmV1Stages)) || j >= kTimmV1Stages[stage]) return std::nullopt;
  int k = j;
  for (int i = 0; i < stage; ++i) k += kTimmV1Stages[i];
  const std::string p = "features." + std::to_string(k + 1) + ".";
  const std::string what = m[3].str();
  if (what == "conv_dw.weight") return p + "dw.0.weight";
  if (what == "conv_pw.weight") return p + "pw.0.weight";
  return p + (m[4].str() == "bn1" ? "dw.1." : "pw.1.") + m[5].str();
}

Recognised recognise_weights(NamedTensors& state) {
  Recognised r;
  r.source = "pfq";
  // timm's MobileNetV1: its stem name plus every name mapped (a name left unmapped stays as it is,
  // so the strict load lists it as unexpected).
  // (timm's inverted-residual nets, e.g. its MobileNetV2, have conv_pwl and are left alone).
  if (has_tensor(state, "conv_stem.weight") && has_tensor(state, "blocks.0.0.conv_dw.weight") && !has_tensor(state, "blocks.1.0.conv_pwl.weight")) {
    r.source = "timm";
    r.model.activation = "relu6";  // timm's _gen_mobilenet_v1: act_layer relu6
    for (auto& [n, t] : state)
      if (auto to = timm_mobilenetv1_to_pfq(n)) n = *to;
  }
  models::ModelConfig& m = r.model;
  m.arch.clear();
  m.variant.clear();
  if (has_tensor(state, "features.1.dw.0.weight")) {
    m.arch = "mobilenetv1";
    const int last = last_index(state, "features.", ".pw.0.weight");
    m.width = dim_of(state, "features." + std::to_string(last) + ".pw.0.weight", 0) / 1024.0;
    m.in_channels = dim_of(state, "features.0.0.weight", 1);
    m.num_classes = dim_of(state, "fc.weight", 0);
  } else if (has_tensor(state, "features.1.conv.0.0.weight")) {
    m.arch = "mobilenetv2";
    const int last = last_index(state, "features.", ".0.weight");
    // the last 1x1 conv reads the last block's output: make_divisible(320 * width) channels
    m.width = dim_of(state, "features." + std::to_string(last) + ".0.weight", 1) / 320.0;
    m.in_channels = dim_of(state, "features.0.0.weight", 1);
    m.num_classes = dim_of(state, "classifier.1.weight", 0);
  } else if (has_tensor(state, "conv1.weight") && has_tensor(state, "layer1.0.conv1.weight")) {
    recognise_resnet(state, m);
    m.in_channels = dim_of(state, "conv1.weight", 1);
    m.num_classes = dim_of(state, "fc.weight", 0);
  }
  if (m.arch.empty() || m.width <= 0 || m.in_channels <= 0 || m.num_classes <= 0) m.arch.clear();
  return r;
}

}  // namespace pfq::app
