/// \file
/// model_loading.h — models from pfq checkpoints for every command that loads one (apps/):
/// float or quantization-aware (QAT) checkpoints, and the check that a checkpoint's model fits a
/// dataset. Sits on apps/checkpoint.h (the file format); left out: building models from
/// scratch (layers/models/registry.h) and writing checkpoints.
#pragma once
#include <string>

#include "apps/checkpoint.h"
#include "data/loader.h"

namespace pfq::app {

/// True for a checkpoint `pfq finetune` wrote (train.extra["qat"] holds its QatConfig).
bool is_qat_checkpoint(const Checkpoint& ckpt);

/// Builds the model a checkpoint records: float, or (is_qat_checkpoint) prepared with the
/// recorded QatConfig, then loads the weights strictly. `dtype`: the model is built in it before
/// the quantizers are added (they follow the parameters' dtype), and the weights are converted
/// to it as they load.
ModulePtr model_from_any_checkpoint(const Checkpoint& ckpt, DType dtype = DType::Float32);

/// Throws unless the images of `loader` (dataset `dataset`) have the channels and classes the
/// checkpoint's model expects: "<what> expects C-channel inputs and K classes; dataset ... has
/// ...<hint>" (`what` names the checkpoint as the user gave it, e.g. "checkpoint <path>").
void check_checkpoint_fits(const Checkpoint& ckpt, const std::string& what, const data::DataLoader& loader,
                           const std::string& dataset, const std::string& hint = "");

}  // namespace pfq::app
