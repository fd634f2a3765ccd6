// registry.cpp — the model registry (registry.h).
#include "layers/models/registry.h"

#include <functional>

namespace pfq::models {

namespace {
using Builder = std::function<ModulePtr(const ModelConfig&)>;
const std::vector<std::pair<std::string, Builder>>& builders() {
  static const std::vector<std::pair<std::string, Builder>> b{
      {"resnet20", [](const ModelConfig& c) { return resnet_cifar(20, c); }},
      {"resnet32", [](const ModelConfig& c) { return resnet_cifar(32, c); }},
      {"resnet56", [](const ModelConfig& c) { return resnet_cifar(56, c); }},
      {"resnet18", [](const ModelConfig& c) { return resnet18(c); }},
      {"resnet50", [](const ModelConfig& c) { return resnet50(c); }},
      {"mobilenetv1", [](const ModelConfig& c) { return mobilenet_v1(c); }},
      {"mobilenetv2", [](const ModelConfig& c) { return mobilenet_v2(c); }},
  };
  return b;
}

// Output-correction buffers (zero until loaded) on the convs the config lists.
ModulePtr with_corrections(ModulePtr m, const ModelConfig& cfg) {
  for (const auto& [name, shape] : cfg.output_corrections) {
    Module* sub = nullptr;
    try {
      sub = &m->submodule(name);
    } catch (const Error&) {
      PFQ_FAIL("model config: output_corrections names '", name, "', which is no module of this model");
    }
    auto* conv = dynamic_cast<Conv2d*>(sub);
    PFQ_CHECK(conv, "model config: output_corrections names '", name, "', a ", sub->type_name(), ", not a Conv2d");
    conv->set_output_correction(Tensor::zeros(shape));
  }
  return m;
}
}  // namespace

std::vector<std::string> model_names() {
  std::vector<std::string> v;
  for (const auto& [n, b] : builders()) v.push_back(n);
  return v;
}

ModulePtr build_model(const std::string& name, const ModelConfig& cfg) {
  PFQ_CHECK(cfg.activation.empty() || name == "mobilenetv1", "model '", name, "': the activation \"", cfg.activation,
            "\" is a choice of mobilenetv1 only");
  for (const auto& [n, b] : builders())
    if (n == name) return with_corrections(b(cfg), cfg);
  std::string known;
  for (const auto& n : model_names()) known += (known.empty() ? "" : ", ") + n;
  PFQ_FAIL("unknown model '", name, "' (known: ", known, ")");
}

ModulePtr build_model(const ModelConfig& cfg) {
  PFQ_CHECK(!cfg.arch.empty(), "build_model: the model config names no architecture (arch is empty)");
  return build_model(cfg.arch, cfg);
}

std::map<std::string, int64_t> conv_channels(const Module& model) {
  std::map<std::string, int64_t> out;
  for (const auto& [name, m] : model.named_modules())
    if (const auto* c = dynamic_cast<const Conv2d*>(m)) out[name] = c->out_channels;
  return out;
}

ModelConfig describe(const std::string& name, const ModelConfig& cfg, const Module& model) {
  ModelConfig c = cfg;
  c.arch = name;
  c.channels = conv_channels(model);
  c.output_corrections.clear();
  for (const auto& [n, m] : model.named_modules())
    if (const auto* conv = dynamic_cast<const Conv2d*>(m); conv && conv->has_output_correction())
      c.output_corrections[n] = conv->output_correction().shape();
  return c;
}

}  // namespace pfq::models
