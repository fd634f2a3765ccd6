/// \file
/// registry.h — builds models by name from a ModelConfig (layers/models/): resnet20, resnet32,
/// resnet56, resnet18, mobilenetv1, mobilenetv2; and reads back the per-conv channel counts of
/// a (pruned) model so a checkpoint can record them in ModelConfig::channels and rebuild the
/// same shapes later. Leaves out: user-registered architectures.
#pragma once
#include <memory>

#include "layers/models/mobilenet_v1.h"
#include "layers/models/mobilenet_v2.h"
#include "layers/models/resnet.h"

namespace pfq::models {

/// Names build_model() accepts ("resnet20", "mobilenetv1", ...).
std::vector<std::string> model_names();
/// Throws pfq::Error listing the known names for an unknown one. Convs named in
/// cfg.output_corrections get a zero output-correction buffer of the recorded shape.
ModulePtr build_model(const std::string& name, const ModelConfig& cfg);
ModulePtr build_model(const ModelConfig& cfg);  ///< uses cfg.arch

/// Conv module name -> out_channels for every Conv2d of `model` (depthwise included).
std::map<std::string, int64_t> conv_channels(const Module& model);
/// `cfg` with arch = name, channels = conv_channels(model) and the shapes of the convs' output
/// corrections (PfQ): the record to save with weights.
ModelConfig describe(const std::string& name, const ModelConfig& cfg, const Module& model);

}  // namespace pfq::models
