/// \file
/// state_size.h — how many values (parameters and buffers) the state dict of build_model(cfg)
/// holds, computed from the config alone, without building or allocating anything. A
/// checkpoint's metadata names its architecture (apps/checkpoint.cpp): the weights in the file
/// must be able to fill it before a model that size is built. Mirrors the builders of resnet.cpp,
/// mobilenet_v1.cpp and mobilenet_v2.cpp; tests/layers/test_models.cpp holds the two to equality.
#pragma once
#include "layers/models/model_config.h"

namespace pfq::models {

/// A double: a hand-edited config can claim more than int64 holds. Throws pfq::Error for an
/// unknown cfg.arch, a width that is not a finite number in (0, 1e9], in_channels or num_classes
/// below 1, output corrections that are not 3 positive sizes, and the channel-override errors
/// that build_model would report.
double state_numel(const ModelConfig& cfg);

}  // namespace pfq::models
