/// \file
/// mobilenet_v2.h — MobileNetV2 builder (layers/models/), torchvision's layout and names:
/// features.0 = ConvBNAct(3x3, 32, stride 2, ReLU6), features.1..17 = InvertedResidual (t, c, n, s:
/// 1,16,1,1 6,24,2,2 6,32,3,2 6,64,4,2 6,96,3,1 6,160,3,2 6,320,1,1), features.18 = ConvBNAct(1x1,
/// 1280), then global average pool, classifier (0 = Dropout(0.2), 1 = Linear). Channels as
/// torchvision (make_divisible(c * width, 8), last = make_divisible(1280 * max(1, width))).
/// "cifar": stem stride 1 and the second stage (24 channels) at stride 1, so 32x32 ends at 4x4.
#pragma once
#include "layers/models/blocks.h"
#include "layers/models/model_config.h"

namespace pfq::models {

/// Children: features, avgpool, flatten, classifier (avgpool/flatten hold no state).
/// Init (torchvision): conv kaiming_normal_(fan_out), BN 1/0, Linear N(0, 0.01) bias 0.
class MobileNetV2 : public Sequential {
 public:
  std::string type_name() const override { return "MobileNetV2"; }
};

/// MobileNetV2 for `cfg` (width, variant, channel overrides).
std::shared_ptr<MobileNetV2> mobilenet_v2(const ModelConfig& cfg);

}  // namespace pfq::models
