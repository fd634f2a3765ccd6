/// \file
/// mobilenet_v1.h — MobileNetV1 builder (layers/models/), Howard et al. 2017: a 3x3 conv-BN-ReLU
/// stem (32) and 13 depthwise-separable blocks (64, 128/2, 128, 256/2, 256, 512/2, 5x512, 1024/2,
/// 1024), global average pool, fc. Channels: make_divisible(c * width, 8). "imagenet": stem
/// stride 2. "cifar": stem stride 1 and block 2 (128, the first stride-2 block) at stride 1, so
/// 32x32 inputs end at 4x4. Init: conv kaiming_normal_(fan_out), BN 1/0, fc N(0, 0.01) bias 0.
#pragma once
#include "layers/models/blocks.h"
#include "layers/models/model_config.h"

namespace pfq::models {

/// Children: features (Sequential: "0" = ConvBNAct stem, "1".."13" = DepthwiseSeparable with
/// "dw" and "pw"), avgpool, flatten, fc. Names: features.0.0.weight, features.3.dw.0.weight,
/// features.3.pw.1.running_var, fc.weight.
class MobileNetV1 : public Sequential {
 public:
  std::string type_name() const override { return "MobileNetV1"; }
};

/// MobileNetV1 for `cfg` (width, variant, channel overrides).
std::shared_ptr<MobileNetV1> mobilenet_v1(const ModelConfig& cfg);

}  // namespace pfq::models
