/// \file
/// resnet.h — ResNet builders (layers/models/). ResNet-20/32/56: CIFAR ResNets of He et al.
/// 2016 (3x3 conv 16, three stages of n BasicBlocks at 16/32/64 channels, strides 1/2/2) but
/// with 1x1 conv + BN projection shortcuts where the shape changes (option B), not the paper's
/// zero-padding option A. ResNet-18: torchvision's layout and names (conv1, bn1, relu, maxpool,
/// layer1..4, avgpool, fc); its "cifar" variant uses a 3x3 stride-1 stem and no maxpool.
/// ResNet-50: the same stem and head around torchvision's Bottleneck stages (3, 4, 6, 3).
/// Init (torchvision): conv kaiming_normal_(fan_out), BN 1/0, fc PyTorch default. Leaves out:
/// zero_init_residual, ResNet-34/101/152 (one line each in registry.cpp when wanted).
#pragma once
#include "layers/models/blocks.h"
#include "layers/models/model_config.h"

namespace pfq::models {

/// Children in order: conv1, bn1, relu, [maxpool], layer1.., avgpool, flatten, fc. A Sequential,
/// so it runs (and the pruner walks it) as a chain; the Flatten holds no state-dict entries.
class ResNet : public Sequential {
 public:
  std::string type_name() const override { return "ResNet"; }
};

/// depth = 6n + 2 (20, 32, 56, 110, ...); the variant must resolve to "cifar".
std::shared_ptr<ResNet> resnet_cifar(int depth, const ModelConfig& cfg);
/// torchvision's ResNet-18 (BasicBlock) for `cfg`.
std::shared_ptr<ResNet> resnet18(const ModelConfig& cfg);
/// torchvision's ResNet-50 (Bottleneck, v1.5) for `cfg`.
std::shared_ptr<ResNet> resnet50(const ModelConfig& cfg);

}  // namespace pfq::models
