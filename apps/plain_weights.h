// plain_weights.h — every command's checkpoint argument (apps/): a pfq checkpoint, loaded as
// always, or plain weights (a safetensors state dict PyTorch wrote, e.g. from torchvision or timm)
// whose architecture comes from --arch/--width/--classes/--variant/--in-channels/--input-size or
// is recognised from the tensors' names and shapes (apps/weight_names.h), checked by building the
// model and loading strictly (every missing, unexpected or misshapen tensor listed at once). Also
// `pfq import`'s work: plain weights written as a pfq checkpoint. Left out: pickle (.pth) files
// (tools/pth_to_safetensors.py converts them).
#pragma once
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "apps/checkpoint.h"
#include "apps/run_options.h"
#include "data/loader.h"

namespace pfq::app {

// The architecture of plain weights; 0 / "" = recognised from the file (input_size: the
// command's dataset's image size, else 224 for the ImageNet variant and 32 for the CIFAR one).
struct WeightsOptions {
  std::string arch;
  double width = 0;
  int64_t num_classes = 0;
  int64_t in_channels = 0;
  int64_t input_size = 0;
  std::string variant;  // "cifar" | "imagenet"
  bool any() const { return !arch.empty() || width > 0 || num_classes > 0 || in_channels > 0 || input_size > 0 || !variant.empty(); }
};
void to_json(nlohmann::json& j, const WeightsOptions& o);
void from_json(const nlohmann::json& j, WeightsOptions& o);

// --arch, --width, --classes, --variant, --in-channels, --input-size (each as --<prefix>arch ...
// with a prefix, e.g. "pretrained-" where a command has its own --width).
void add_weights_flags(CLI::App* cmd, WeightsOptions& o, const std::string& prefix = "");

// True when the file's metadata marks it as pfq's (format pfq-checkpoint-1, or pfq's model /
// train_state keys): such files load with load_checkpoint, exactly as before.
bool is_pfq_checkpoint_file(const std::string& path);

// A pfq checkpoint (then `w` must be empty: the file records its architecture), or plain weights
// as a float Checkpoint whose model config is complete (arch, width, variant, input geometry,
// classes and, when the file's channel counts differ from the width's, per-conv channels), its
// weights verified to load strictly into that model. `dataset_input_size` > 0: the image size of
// the command's data, the default input_size. Errors name the file, what was recognised or given,
// and every tensor that does not fit.
Checkpoint load_checkpoint_or_weights(const std::string& path, const WeightsOptions& w, int64_t dataset_input_size = 0);

// The image side `loader` yields (through its transform): the default input_size of plain weights.
int64_t loader_image_size(const data::DataLoader& loader);

// load_checkpoint_or_weights with the image size of `data`'s test split as the default input
// size (the loader is built only for plain weights without --input-size).
Checkpoint load_checkpoint_for_data(const std::string& path, const WeightsOptions& w, const DataOptions& data);

// `pfq import`: plain weights -> a pfq checkpoint at `out` (written atomically, after the strict
// load succeeded; nothing is written on an error). Returns the checkpoint as loaded.
Checkpoint import_weights(const std::string& path, const WeightsOptions& w, const std::string& out);

}  // namespace pfq::app
