// mobilenet_v1.cpp — MobileNetV1 (mobilenet_v1.h).
#include "layers/models/mobilenet_v1.h"

namespace pfq::models {

std::shared_ptr<MobileNetV1> mobilenet_v1(const ModelConfig& cfg) {
  PFQ_CHECK(cfg.width > 0 && cfg.num_classes > 0 && cfg.in_channels > 0,
            "mobilenetv1: width, num_classes and in_channels must be positive");
  const bool cifar = cfg.resolved_variant() == "cifar";
  PFQ_CHECK(cfg.activation.empty() || cfg.activation == "relu" || cfg.activation == "relu6",
            "mobilenetv1: activation must be relu or relu6, got \"", cfg.activation, "\"");
  const Act act = cfg.activation == "relu6" ? Act::ReLU6 : Act::ReLU;
  // (out channels, stride) of the 13 depthwise-separable blocks (ImageNet strides).
  const std::vector<std::pair<int64_t, int64_t>> blocks{{64, 1},  {128, 2}, {128, 1}, {256, 2}, {256, 1},
                                                        {512, 2}, {512, 1}, {512, 1}, {512, 1}, {512, 1},
                                                        {512, 1}, {1024, 2}, {1024, 1}};
  Generator gen(cfg.seed);
  ChannelPlan plan(cfg.channels);
  auto m = std::make_shared<MobileNetV1>();
  auto features = std::make_shared<Sequential>();
  int64_t in = plan.out("features.0.0", make_divisible(32 * cfg.width));
  features->push_back(std::make_shared<ConvBNAct>(cfg.in_channels, in, 3, cifar ? 1 : 2, 1, act, gen));
  for (size_t i = 0; i < blocks.size(); ++i) {
    const std::string p = "features." + std::to_string(i + 1);
    const int64_t stride = (cifar && i == 1) ? 1 : blocks[i].second;
    plan.fixed(p + ".dw.0", in);
    const int64_t out = plan.out(p + ".pw.0", make_divisible(static_cast<double>(blocks[i].first) * cfg.width));
    features->push_back(std::make_shared<DepthwiseSeparable>(in, out, stride, gen, act));
    in = out;
  }
  m->add("features", features);
  m->add("avgpool", std::make_shared<AdaptiveAvgPool2d>(1));
  m->add("flatten", std::make_shared<Flatten>(1));
  m->add("fc", std::make_shared<Linear>(in, cfg.num_classes, true, gen));
  plan.finish("mobilenetv1");
  init_conv_kaiming_fan_out(*m, gen);
  init_linear_normal(*m, gen, 0.01);
  return m;
}

}  // namespace pfq::models
