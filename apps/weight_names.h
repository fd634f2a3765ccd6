// weight_names.h — plain PyTorch state dicts read as pfq models (apps/): the name maps from other
// model zoos' names to pfq's (torchvision's ResNet-18/50 and MobileNetV2 already use pfq's
// names; timm's MobileNetV1 is renamed here), and the recognition of a pfq architecture (arch,
// width, variant, input channels, classes) from the tensors' names and shapes. Left out: the
// file reading and the strict load (apps/plain_weights.h); zoos other than these two.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "layers/models/model_config.h"
#include "layers/module.h"

namespace pfq::app {

// One rule of a name map, for documentation and error messages: `from` in the source's names,
// `to` in pfq's ({i}, {j}, {k} and {x} are placeholders).
struct NameRule {
  const char* from;
  const char* to;
};
// timm's `mobilenetv1_100` (timm/models/mobilenetv3.py, _gen_mobilenet_v1): stages of 1, 2, 2, 6
// and 2 depthwise-separable blocks; block j of stage i is pfq's features.{k+1} with k the
// block's index over all stages.
const std::vector<NameRule>& timm_mobilenetv1_rules();
// The names as pfq's builders spell them, or nullopt when `name` is not one of timm's
// MobileNetV1 names (conv_stem, bn1, blocks.i.j.{conv_dw,bn1,conv_pw,bn2}, classifier).
std::optional<std::string> timm_mobilenetv1_to_pfq(const std::string& name);

struct Recognised {
  std::string source;  // "pfq" (pfq's and torchvision's names) or "timm"
  models::ModelConfig model;  // arch, width, variant ("" when the shapes cannot tell), in_channels, num_classes
};
// The state dict renamed to pfq's names (timm's MobileNetV1 names when every tensor has one) and
// what its names and shapes say about the architecture; `arch` empty when they name none of
// pfq's models. Never throws on odd input: the strict load that follows reports what is wrong.
Recognised recognise_weights(NamedTensors& state);

}  // namespace pfq::app
