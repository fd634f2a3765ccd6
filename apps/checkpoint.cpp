// checkpoint.cpp — pfq checkpoint files on top of core/io/safetensors.
#include "apps/checkpoint.h"

#include <algorithm>
#include <cmath>

#include "core/io/safetensors.h"
#include "layers/models/registry.h"
#include "layers/models/state_size.h"

namespace pfq::app {
namespace {
const std::string kOptimPrefix = "optim.";
// Largest input side a checkpoint may record: pfq inspect/prune trace shapes with a [1, C, size,
// size] input, and no tensor in the file bounds it.
constexpr int64_t kMaxInputSize = 4096;

std::string count_str(double n) { return n < 1e15 ? std::to_string(std::llround(n)) : detail::cat(n); }

// The metadata decides what gets built: a hand-edited or corrupt one must not make pfq build a
// model larger than the weights the file holds (docs/reliability.md, resource limits). QAT
// checkpoints hold quantizer state on top of the architecture's values, hence <=, not ==; the
// strict load in model_from_checkpoint checks every name and shape afterwards.
void check_architecture_fits(const Checkpoint& c) {
  const models::ModelConfig& m = c.model;
  PFQ_CHECK(m.input_size > 0 && m.input_size <= kMaxInputSize, "checkpoint ", c.path, ": the metadata's input_size ", m.input_size,
            " is outside [1, ", kMaxInputSize, "]");
  double implied = 0;
  try {
    implied = models::state_numel(m);
  } catch (const Error& e) {
    PFQ_FAIL("checkpoint ", c.path, ": the metadata's architecture cannot be built: ", e.what());
  }
  int64_t held = 0;
  for (const auto& [name, t] : c.model_state) held += t.numel();
  if (implied <= static_cast<double>(held)) return;
  int64_t widest = 0;
  for (const auto& [name, channels] : m.channels) widest = std::max(widest, channels);
  PFQ_FAIL("checkpoint ", c.path, ": the architecture in its metadata ('", m.arch, "', width ", m.width, ", in_channels ",
           m.in_channels, ", num_classes ", m.num_classes, widest ? ", largest channel count " + std::to_string(widest) : "",
           ") has ", count_str(implied), " parameter and buffer values but the file holds ", held,
           "; the metadata does not describe these weights (edited by hand?), so no model is built from it");
}
}  // namespace

void save_checkpoint(const std::string& path, const Module& model, const models::ModelConfig& cfg, const TrainState& state,
                     const optim::Optimizer* optimizer) {
  std::vector<std::pair<std::string, Tensor>> tensors = model.state_dict();
  if (optimizer)
    for (auto& [name, t] : optimizer->state_tensors()) tensors.emplace_back(kOptimPrefix + name, t);
  const std::map<std::string, std::string> generators = model.generator_states();
  nlohmann::json train = {{"epoch", state.epoch},          {"batch", state.batch},
                          {"global_step", state.global_step}, {"best_top1", state.best_top1},
                          {"finished", state.finished},    {"generator_state", state.generator_state},
                          {"extra", state.extra}};
  if (!generators.empty()) train["module_generators"] = generators;  // absent: no module draws
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
    if (t.contains("module_generators"))
      c.train.module_generators = t.at("module_generators").get<std::map<std::string, std::string>>();
  } catch (const nlohmann::json::exception& e) {
    PFQ_FAIL("checkpoint ", path, ": malformed metadata (", e.what(), ")");
  }
  for (auto& [name, t] : f.tensors) {
    if (name.rfind(kOptimPrefix, 0) == 0) c.optim_state.emplace_back(name.substr(kOptimPrefix.size()), t);
    else c.model_state.emplace_back(name, t);
  }
  check_architecture_fits(c);
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

void restore_module_generators(Module& model, const Checkpoint& ckpt) {
  model.set_generator_states(ckpt.train.module_generators, "checkpoint " + ckpt.path);
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
