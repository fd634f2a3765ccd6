/// \file
/// checkpoint.h — pfq training checkpoints: a safetensors file holding the model's state dict
/// (PyTorch names), the optimizer state under "optim.*", and metadata with the architecture
/// (ModelConfig incl. per-layer channel counts, so pruned models reload), the training state
/// (epoch, next batch, step, best accuracy, the default generator's state and the state of every
/// generator a module owns, e.g. Dropout's, by module path) and the pfq version.
/// Written atomically (core/io); validated on load with errors naming the file.
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "core/optim/optimizer.h"
#include "layers/models/model_config.h"
#include "layers/module.h"

namespace pfq::app {

/// Version of pfq recorded in every checkpoint's metadata.
constexpr const char* kPfqVersion = "0.1.0";
/// Format tag of pfq checkpoints (safetensors metadata "format").
constexpr const char* kCheckpointFormat = "pfq-checkpoint-1";

/// Where a training run stands, saved in the checkpoint so a resumed run continues exactly.
struct TrainState {
  int64_t epoch = 0;        ///< epoch in progress (or the next one when batch == 0)
  int64_t batch = 0;        ///< next batch index within `epoch`
  int64_t global_step = 0;  ///< optimizer steps taken
  /// Best test top-1 (%) so far; -1 before the first evaluation.
  double best_top1 = -1;
  /// True once the last epoch ran (or training diverged).
  bool finished = false;
  std::string generator_state;  ///< pfq::default_generator() state
  /// Module::generator_states() of the model when saved (save_checkpoint fills it from the
  /// model); empty in checkpoints written before it was recorded. Restore with
  /// restore_module_generators on resume.
  std::map<std::string, std::string> module_generators;
  nlohmann::json extra;         ///< stage-specific fields (e.g. the training options)
};

/// A loaded checkpoint: architecture, weights, optimizer state and training state.
struct Checkpoint {
  /// The file it was read from.
  std::string path;
  /// The architecture (after pruning: its channel counts).
  models::ModelConfig model;
  NamedTensors model_state;  ///< state dict
  NamedTensors optim_state;  ///< names without the "optim." prefix
  /// Where training stood when it was saved.
  TrainState train;
};

/// Writes `model`'s state dict, `cfg`, `state` and the optimizer's state (when given) to `path` atomically
/// (temporary file + rename).
void save_checkpoint(const std::string& path, const Module& model, const models::ModelConfig& cfg, const TrainState& state,
                     const optim::Optimizer* optimizer);
/// Refuses, before anything is built, metadata whose architecture has more parameter and buffer
/// values than the file's model tensors (a hand-edited width or channel count) or whose
/// input_size is outside [1, 4096].
Checkpoint load_checkpoint(const std::string& path);
/// Sets the model's module generators (Dropout masks) to the checkpoint's, so a resumed run
/// draws the same masks as an uninterrupted one; a checkpoint without them changes nothing.
void restore_module_generators(Module& model, const Checkpoint& ckpt);
/// Builds the architecture recorded in the checkpoint and loads its weights (strict).
ModulePtr model_from_checkpoint(const Checkpoint& ckpt);
/// A plain state dict (safetensors without pfq metadata, e.g. exported from PyTorch with pfq's
/// module names) as a Checkpoint of the architecture `cfg` the caller names (cfg.arch required);
/// "optim.*" tensors of a pfq checkpoint are ignored, training state is default.
/// model_from_checkpoint then loads it strictly: missing/unexpected names and shape mismatches
/// are errors naming the file and the architecture.
Checkpoint load_weights_as_checkpoint(const std::string& path, const models::ModelConfig& cfg);

}  // namespace pfq::app
