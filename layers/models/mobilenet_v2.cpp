// mobilenet_v2.cpp — MobileNetV2 (mobilenet_v2.h).
#include "layers/models/mobilenet_v2.h"

#include <algorithm>
#include <cmath>

namespace pfq::models {

std::shared_ptr<MobileNetV2> mobilenet_v2(const ModelConfig& cfg) {
  PFQ_CHECK(cfg.width > 0 && cfg.num_classes > 0 && cfg.in_channels > 0,
            "mobilenetv2: width, num_classes and in_channels must be positive");
  const bool cifar = cfg.resolved_variant() == "cifar";
  struct Row { int64_t t, c, n, s; };
  const std::vector<Row> rows{{1, 16, 1, 1}, {6, 24, 2, cifar ? 1 : 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
                              {6, 96, 3, 1}, {6, 160, 3, 2},             {6, 320, 1, 1}};
  Generator gen(cfg.seed);
  ChannelPlan plan(cfg.channels);
  auto m = std::make_shared<MobileNetV2>();
  auto features = std::make_shared<Sequential>();
  int64_t in_default = make_divisible(32 * cfg.width);
  int64_t in = plan.out("features.0.0", in_default);
  features->push_back(std::make_shared<ConvBNAct>(cfg.in_channels, in, 3, cifar ? 1 : 2, 1, Act::ReLU6, gen));
  for (const Row& r : rows) {
    const int64_t out_default = make_divisible(static_cast<double>(r.c) * cfg.width);
    for (int64_t i = 0; i < r.n; ++i) {
      const std::string p = "features." + std::to_string(features->size()) + ".conv";
      const int64_t stride = i == 0 ? r.s : 1;
      const bool expand = r.t != 1;
      const bool residual = stride == 1 && in_default == out_default;
      const int64_t hidden = expand ? plan.out(p + ".0.0", std::llround(static_cast<double>(in_default * r.t))) : in;
      plan.fixed(p + (expand ? ".1.0" : ".0.0"), hidden);
      const int64_t out = plan.out(p + (expand ? ".2" : ".1"), out_default);
      if (residual) ChannelPlan::require_equal(p.substr(0, p.size() - 5) + " (projection vs block input)", out, in);
      features->push_back(std::make_shared<InvertedResidual>(in, hidden, out, stride, expand, residual, gen));
      in = out;
      in_default = out_default;
    }
  }
  const int64_t last = plan.out("features." + std::to_string(features->size()) + ".0",
                                make_divisible(1280 * std::max(1.0, cfg.width)));
  features->push_back(std::make_shared<ConvBNAct>(in, last, 1, 1, 1, Act::ReLU6, gen));
  m->add("features", features);
  m->add("avgpool", std::make_shared<AdaptiveAvgPool2d>(1));
  m->add("flatten", std::make_shared<Flatten>(1));
  auto classifier = std::make_shared<Sequential>();
  classifier->push_back(std::make_shared<Dropout>(0.2, gen.next_u64()));
  classifier->push_back(std::make_shared<Linear>(last, cfg.num_classes, true, gen));
  m->add("classifier", classifier);
  plan.finish("mobilenetv2");
  init_conv_kaiming_fan_out(*m, gen);
  init_linear_normal(*m, gen, 0.01);
  return m;
}

}  // namespace pfq::models
