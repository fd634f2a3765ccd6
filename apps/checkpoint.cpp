// checkpoint.cpp — pfq checkpoint files on top of core/io/safetensors.
#include "apps/checkpoint.h"

#include "core/io/safetensors.h"
#include "layers/models/registry.h"

namespace pfq::app {
namespace {
const std::string kOptimPrefix = "optim.";
}

void save_checkpoint(const std::string& path, const Module& model, const models::ModelConfig& cfg, const TrainState& state,
                     const optim::Optimizer* optimizer) {
  std::vector<std::pair<std::string, Tensor>> tensors = model.state_dict();
  if (optimizer)
    for (auto& [name, t] : optimizer->state_tensors()) tensors.emplace_back(kOptimPrefix + name, t);
  nlohmann::json train = {{"epoch", state.epoch},          {"batch", state.batch},
                          {"global_step", state.global_step}, {"best_top1", state.best_top1},
                          {"finished", state.finished},    {"generator_state", state.generator_state},
                          {"extra", state.extra}};
  io::Metadata meta = {{"format", kCheckpointFormat},
                       {"pfq_version", kPfqVersion},
                       {"model", nlohmann::json(cfg).dump()},
                       {"train_state", train.dump()}};
  if (optimizer) meta["optimizer"] = optimizer->kind();
  io::save_safetensors(path, tensors, meta);
}

Checkpoint load_checkpoint(const std::string& path) {
  io::SafetensorsFile f = io::load_safetensors(path);
  Checkpoint c;
  c.path = path;
  auto meta = [&](const std::string& key) -> const std::string& {
    auto it = f.metadata.find(key);
    PFQ_CHECK(it != f.metadata.end(), "checkpoint ", path, ": metadata key '", key,
              "' is missing (not a pfq checkpoint? expected format ", kCheckpointFormat, ")");
    return it->second;
  };
  PFQ_CHECK(meta("format") == kCheckpointFormat, "checkpoint ", path, ": format '", meta("format"), "', expected ", kCheckpointFormat);
  try {
    c.model = nlohmann::json::parse(meta("model")).get<models::ModelConfig>();
    auto t = nlohmann::json::parse(meta("train_state"));
    c.train.epoch = t.at("epoch");
    c.train.batch = t.at("batch");
    c.train.global_step = t.at("global_step");
    c.train.best_top1 = t.at("best_top1");
    c.train.finished = t.at("finished");
    c.train.generator_state = t.at("generator_state");
    c.train.extra = t.value("extra", nlohmann::json::object());
  } catch (const nlohmann::json::exception& e) {
    PFQ_FAIL("checkpoint ", path, ": malformed metadata (", e.what(), ")");
  }
  for (auto& [name, t] : f.tensors) {
    if (name.rfind(kOptimPrefix, 0) == 0) c.optim_state.emplace_back(name.substr(kOptimPrefix.size()), t);
    else c.model_state.emplace_back(name, t);
  }
  return c;
}

Checkpoint load_weights_as_checkpoint(const std::string& path, const models::ModelConfig& cfg) {
  PFQ_CHECK(!cfg.arch.empty(), "loading weights from ", path, ": name the architecture (e.g. --arch resnet20)");
  io::SafetensorsFile f = io::load_safetensors(path);
  Checkpoint c;
  c.path = path;
  c.model = cfg;
  for (auto& [name, t] : f.tensors)
    if (name.rfind(kOptimPrefix, 0) != 0) c.model_state.emplace_back(name, t);
  PFQ_CHECK(!c.model_state.empty(), "loading weights from ", path, ": the file holds no model tensors");
  return c;
}

ModulePtr model_from_checkpoint(const Checkpoint& ckpt) {
  ModulePtr m = models::build_model(ckpt.model);
  try {
    m->load_state_dict(ckpt.model_state, true);
  } catch (const Error& e) {
    PFQ_FAIL("checkpoint ", ckpt.path, ": weights do not fit the recorded architecture '", ckpt.model.arch, "': ", e.what());
  }
  return m;
}

}  // namespace pfq::app
