// plain_weights.cpp — pfq checkpoints or plain PyTorch weights behind one loader
// (apps/plain_weights.h).
#include "apps/plain_weights.h"

#include "apps/weight_names.h"
#include "core/io/safetensors.h"
#include "data/factory.h"
#include "layers/models/registry.h"

namespace pfq::app {

void to_json(nlohmann::json& j, const WeightsOptions& o) {
  j = {{"arch", o.arch},           {"width", o.width},           {"num_classes", o.num_classes},
       {"in_channels", o.in_channels}, {"input_size", o.input_size}, {"variant", o.variant}};
}
void from_json(const nlohmann::json& j, WeightsOptions& o) {
  o.arch = j.value("arch", o.arch);
  o.width = j.value("width", o.width);
  o.num_classes = j.value("num_classes", o.num_classes);
  o.in_channels = j.value("in_channels", o.in_channels);
  o.input_size = j.value("input_size", o.input_size);
  o.variant = j.value("variant", o.variant);
}

void add_weights_flags(CLI::App* cmd, WeightsOptions& o, const std::string& prefix) {
  const std::string p = "--" + prefix;
  const std::string g = "plain weights (a PyTorch state dict; default: recognised from the tensors)";
  cmd->add_option(p + "arch", o.arch, "architecture of plain weights")->check(CLI::IsMember(models::model_names()))->group(g);
  cmd->add_option(p + "width", o.width, "width multiplier of plain weights")->check(CLI::PositiveNumber)->group(g);
  cmd->add_option(p + "classes", o.num_classes, "classes of plain weights")->check(CLI::PositiveNumber)->group(g);
  cmd->add_option(p + "variant", o.variant, "cifar | imagenet: the stem and strides of plain weights (default: imagenet, "
                                          "or what the ResNet stem says)")
      ->check(CLI::IsMember({"cifar", "imagenet"}))
      ->group(g);
  cmd->add_option(p + "in-channels", o.in_channels, "input channels of plain weights")->check(CLI::PositiveNumber)->group(g);
  cmd->add_option(p + "input-size", o.input_size, "input height and width recorded for plain weights (default: the data's, else "
                                                "224 imagenet / 32 cifar)")
      ->check(CLI::PositiveNumber)
      ->group(g);
}

int64_t loader_image_size(const data::DataLoader& loader) { return data::data_info(loader.dataset(), loader.transform()).height; }

bool is_pfq_checkpoint_file(const std::string& path) {
  const io::SafetensorsHeader h = io::read_safetensors_header(path);
  auto it = h.metadata.find("format");
  // any "pfq..." format, so that another version of the format gets load_checkpoint's error
  return (it != h.metadata.end() && it->second.rfind("pfq", 0) == 0) || h.metadata.count("model") || h.metadata.count("train_state");
}

namespace {

std::string describe_cfg(const models::ModelConfig& c) {
  return detail::cat(c.arch, " (width ", c.width, ", variant ", c.variant, ", ", c.in_channels, " x ", c.input_size, " x ", c.input_size,
                     " input, ", c.num_classes, " classes", c.activation.empty() ? "" : ", " + c.activation, c.channels.empty() ? "" : ", per-conv channel counts from the file", ")");
}

std::string names_list() {
  std::string out;
  for (const std::string& n : models::model_names()) out += (out.empty() ? "" : ", ") + n;
  return out;
}

std::string first_names(const NamedTensors& s, size_t n) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < n; ++i) out += (i ? ", " : "") + s[i].first;
  return s.size() > n ? out + ", ..." : out;
}

// The file's conv output channels where they differ from what `cfg`'s width builds (widths that
// round differently): recorded as per-conv overrides, as for a pruned model.
void adopt_file_channels(const NamedTensors& state, models::ModelConfig& cfg) {
  ModulePtr probe;
  try {
    probe = models::build_model(cfg);
  } catch (const Error&) {
    return;  // the strict load below reports it
  }
  for (const auto& [conv, channels] : models::conv_channels(*probe))
    for (const auto& [n, t] : state)
      if (n == conv + ".weight" && t.dim() == 4 && t.shape()[0] != channels) cfg.channels[conv] = t.shape()[0];
}

Checkpoint load_plain_weights(const std::string& path, const WeightsOptions& w, int64_t dataset_input_size, std::string* source) {
  io::SafetensorsFile f = io::load_safetensors(path);
  Checkpoint c;
  c.path = path;
  for (auto& [name, t] : f.tensors)
    if (name.rfind("optim.", 0) != 0) c.model_state.emplace_back(name, t);
  PFQ_CHECK(!c.model_state.empty(), "plain weights ", path, ": the file holds no tensors");
  const Recognised r = recognise_weights(c.model_state);
  if (source) *source = r.source;
  models::ModelConfig& cfg = c.model;
  cfg.arch = w.arch.empty() ? r.model.arch : w.arch;
  PFQ_CHECK(!cfg.arch.empty(), "plain weights ", path, ": the tensor names (", first_names(c.model_state, 4),
            ") match none of pfq's architectures or name maps (torchvision ResNet/MobileNetV2, timm mobilenetv1_100); give --arch (",
            names_list(), ") and the geometry flags, see docs/pretrained.md");
  const bool recognised = cfg.arch == r.model.arch;
  if (recognised) cfg.activation = r.model.activation;
  cfg.width = w.width > 0 ? w.width : recognised ? r.model.width : 1.0;
  cfg.num_classes = w.num_classes > 0 ? w.num_classes : recognised ? r.model.num_classes : 1000;
  cfg.in_channels = w.in_channels > 0 ? w.in_channels : recognised ? r.model.in_channels : 3;
  const bool cifar_only = cfg.arch == "resnet20" || cfg.arch == "resnet32" || cfg.arch == "resnet56";
  cfg.variant = !w.variant.empty() ? w.variant : recognised && !r.model.variant.empty() ? r.model.variant : cifar_only ? "cifar" : "imagenet";
  cfg.input_size = w.input_size > 0 ? w.input_size : dataset_input_size > 0 ? dataset_input_size : cfg.variant == "imagenet" ? 224 : 32;
  if (recognised && w.width <= 0) adopt_file_channels(c.model_state, cfg);
  // The strict load, once, so that every command fails here, before it writes anything.
  try {
    models::build_model(cfg)->load_state_dict(c.model_state, true);
  } catch (const Error& e) {
    PFQ_FAIL("plain weights ", path, " do not fit ", describe_cfg(cfg),
             recognised && !w.any() ? " (recognised from the tensor names and shapes; --arch, --width, --classes and --variant override it)"
                                    : "",
             ": ", e.what());
  }
  return c;
}

}  // namespace

Checkpoint load_checkpoint_or_weights(const std::string& path, const WeightsOptions& w, int64_t dataset_input_size) {
  if (is_pfq_checkpoint_file(path)) {
    PFQ_CHECK(!w.any(), path, " is a pfq checkpoint, which records its architecture: --arch, --width, --classes, --variant, "
                             "--in-channels and --input-size are for plain weights (drop them)");
    return load_checkpoint(path);
  }
  return load_plain_weights(path, w, dataset_input_size, nullptr);
}

Checkpoint load_checkpoint_for_data(const std::string& path, const WeightsOptions& w, const DataOptions& data) {
  int64_t size = 0;
  if (w.input_size <= 0 && !is_pfq_checkpoint_file(path)) size = loader_image_size(*make_test_loader(data, 0));
  return load_checkpoint_or_weights(path, w, size);
}

Checkpoint import_weights(const std::string& path, const WeightsOptions& w, const std::string& out) {
  PFQ_CHECK(!is_pfq_checkpoint_file(path), "pfq import: ", path, " is already a pfq checkpoint (nothing to import)");
  std::string source;
  Checkpoint c = load_plain_weights(path, w, 0, &source);
  ModulePtr model = model_from_checkpoint(c);
  c.model = models::describe(c.model.arch, c.model, *model);
  c.train.extra = {{"imported", {{"from", path}, {"names", source}}}};
  save_checkpoint(out, *model, c.model, c.train, nullptr);
  c.path = out;
  return c;
}

}  // namespace pfq::app
