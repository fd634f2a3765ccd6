// resnet.cpp — CIFAR ResNets, ResNet-18 and ResNet-50 (resnet.h).
#include "layers/models/resnet.h"

#include <cmath>

namespace pfq::models {

namespace {

int64_t scaled(int64_t c, double width) { return std::max<int64_t>(1, std::llround(static_cast<double>(c) * width)); }

// Adds layer1..layerK of BasicBlocks to `m`; `in` is the stem's actual output channels,
// `in_default` the unpruned one (decides where projection shortcuts go). Returns the channels.
int64_t add_stages(ResNet& m, const std::vector<int64_t>& widths, const std::vector<int>& blocks, int64_t in, int64_t in_default,
                   ChannelPlan& plan, Generator& gen) {
  for (size_t s = 0; s < widths.size(); ++s) {
    auto layer = std::make_shared<Sequential>();
    const std::string lname = "layer" + std::to_string(s + 1);
    for (int b = 0; b < blocks[s]; ++b) {
      const std::string p = lname + "." + std::to_string(b);
      const int64_t stride = (s > 0 && b == 0) ? 2 : 1;
      const bool ds = stride != 1 || in_default != widths[s];
      const int64_t mid = plan.out(p + ".conv1", widths[s]);
      const int64_t out = plan.out(p + ".conv2", widths[s]);
      if (ds) ChannelPlan::require_equal(p + " (conv2 vs downsample.0)", out, plan.out(p + ".downsample.0", widths[s]));
      else ChannelPlan::require_equal(p + " (conv2 vs block input)", out, in);
      layer->push_back(std::make_shared<BasicBlock>(in, mid, out, stride, ds, gen));
      in = out;
      in_default = widths[s];
    }
    m.add(lname, layer);
  }
  return in;
}

// layer1..layer4 of Bottlenecks (planes 64/128/256/512 scaled, output 4 x planes); the first
// block of each stage projects (torchvision: stride 2 from layer2 on, widths differ everywhere).
int64_t add_bottleneck_stages(ResNet& m, const std::vector<int64_t>& planes, const std::vector<int>& blocks, int64_t in,
                              int64_t in_default, ChannelPlan& plan, Generator& gen) {
  for (size_t s = 0; s < planes.size(); ++s) {
    auto layer = std::make_shared<Sequential>();
    const std::string lname = "layer" + std::to_string(s + 1);
    const int64_t wide = 4 * planes[s];
    for (int b = 0; b < blocks[s]; ++b) {
      const std::string p = lname + "." + std::to_string(b);
      const int64_t stride = (s > 0 && b == 0) ? 2 : 1;
      const bool ds = stride != 1 || in_default != wide;
      const int64_t mid1 = plan.out(p + ".conv1", planes[s]);
      const int64_t mid2 = plan.out(p + ".conv2", planes[s]);
      const int64_t out = plan.out(p + ".conv3", wide);
      if (ds) ChannelPlan::require_equal(p + " (conv3 vs downsample.0)", out, plan.out(p + ".downsample.0", wide));
      else ChannelPlan::require_equal(p + " (conv3 vs block input)", out, in);
      layer->push_back(std::make_shared<Bottleneck>(in, mid1, mid2, out, stride, ds, gen));
      in = out;
      in_default = wide;
    }
    m.add(lname, layer);
  }
  return in;
}

// conv1, bn1, relu and (imagenet) maxpool: 7x7 stride 2 + 3x3/2 max pool, or (cifar) 3x3 stride 1.
int64_t add_stem(ResNet& m, int64_t width, bool imagenet, const ModelConfig& cfg, ChannelPlan& plan, Generator& gen) {
  const int64_t c = plan.out("conv1", width);
  if (imagenet)
    m.add("conv1", std::make_shared<Conv2d>(cfg.in_channels, c, 7, Conv2dArgs{.stride = 2, .padding = 3, .bias = false}, gen));
  else
    m.add("conv1", std::make_shared<Conv2d>(cfg.in_channels, c, 3, Conv2dArgs{.padding = 1, .bias = false}, gen));
  m.add("bn1", std::make_shared<BatchNorm2d>(c));
  m.add("relu", std::make_shared<ReLU>());
  if (imagenet) m.add("maxpool", std::make_shared<MaxPool2d>(3, 2, 1));
  return c;
}

void add_head(ResNet& m, int64_t in, const ModelConfig& cfg, Generator& gen) {
  PFQ_CHECK(cfg.num_classes > 0 && cfg.in_channels > 0, "resnet: num_classes and in_channels must be positive");
  m.add("avgpool", std::make_shared<AdaptiveAvgPool2d>(1));
  m.add("flatten", std::make_shared<Flatten>(1));
  m.add("fc", std::make_shared<Linear>(in, cfg.num_classes, true, gen));
}

}  // namespace

std::shared_ptr<ResNet> resnet_cifar(int depth, const ModelConfig& cfg) {
  PFQ_CHECK(depth >= 8 && (depth - 2) % 6 == 0, "resnet", depth, ": CIFAR ResNet depth must be 6n + 2 (20, 32, 56, ...)");
  PFQ_CHECK(cfg.resolved_variant() == "cifar", "resnet", depth, " exists only as a CIFAR-style network; variant \"",
            cfg.variant, "\" is not available (use resnet18 for ImageNet-style inputs)");
  PFQ_CHECK(cfg.width > 0, "resnet", depth, ": width must be positive, got ", cfg.width);
  const int n = (depth - 2) / 6;
  Generator gen(cfg.seed);
  ChannelPlan plan(cfg.channels);
  auto m = std::make_shared<ResNet>();
  const std::vector<int64_t> widths{scaled(16, cfg.width), scaled(32, cfg.width), scaled(64, cfg.width)};
  const int64_t c = plan.out("conv1", widths[0]);
  m->add("conv1", std::make_shared<Conv2d>(cfg.in_channels, c, 3, Conv2dArgs{.padding = 1, .bias = false}, gen));
  m->add("bn1", std::make_shared<BatchNorm2d>(c));
  m->add("relu", std::make_shared<ReLU>());
  const int64_t out = add_stages(*m, widths, {n, n, n}, c, widths[0], plan, gen);
  add_head(*m, out, cfg, gen);
  plan.finish("resnet" + std::to_string(depth));
  init_conv_kaiming_fan_out(*m, gen);
  return m;
}

std::shared_ptr<ResNet> resnet18(const ModelConfig& cfg) {
  PFQ_CHECK(cfg.width > 0, "resnet18: width must be positive, got ", cfg.width);
  const bool imagenet = cfg.resolved_variant() == "imagenet";
  Generator gen(cfg.seed);
  ChannelPlan plan(cfg.channels);
  auto m = std::make_shared<ResNet>();
  const std::vector<int64_t> widths{scaled(64, cfg.width), scaled(128, cfg.width), scaled(256, cfg.width), scaled(512, cfg.width)};
  const int64_t c = add_stem(*m, widths[0], imagenet, cfg, plan, gen);
  const int64_t out = add_stages(*m, widths, {2, 2, 2, 2}, c, widths[0], plan, gen);
  add_head(*m, out, cfg, gen);
  plan.finish("resnet18");
  init_conv_kaiming_fan_out(*m, gen);
  return m;
}

std::shared_ptr<ResNet> resnet50(const ModelConfig& cfg) {
  PFQ_CHECK(cfg.width > 0, "resnet50: width must be positive, got ", cfg.width);
  Generator gen(cfg.seed);
  ChannelPlan plan(cfg.channels);
  auto m = std::make_shared<ResNet>();
  const std::vector<int64_t> planes{scaled(64, cfg.width), scaled(128, cfg.width), scaled(256, cfg.width), scaled(512, cfg.width)};
  const int64_t c = add_stem(*m, planes[0], cfg.resolved_variant() == "imagenet", cfg, plan, gen);
  const int64_t out = add_bottleneck_stages(*m, planes, {3, 4, 6, 3}, c, planes[0], plan, gen);
  add_head(*m, out, cfg, gen);
  plan.finish("resnet50");
  init_conv_kaiming_fan_out(*m, gen);
  return m;
}

}  // namespace pfq::models
