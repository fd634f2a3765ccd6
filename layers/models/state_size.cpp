// state_size.cpp — state_numel (state_size.h): the builders' layer sequence with the same
// ChannelPlan calls, counting values instead of creating modules.
#include "layers/models/state_size.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "layers/models/registry.h"

namespace pfq::models {

namespace {

// Values of the modules the builders create: bias-free convs, BN with affine weights and running
// statistics (weight, bias, running_mean, running_var, num_batches_tracked), Linear with bias.
struct Census {
  double n = 0;
  void conv_bn(double in, double out, double kernel, double groups = 1) { n += out * (in / groups) * kernel * kernel + 4 * out + 1; }
  void linear(double in, double out) { n += out * in + out; }
};

int64_t scaled(int64_t c, double width) { return std::max<int64_t>(1, std::llround(static_cast<double>(c) * width)); }

// resnet.cpp: stem conv, stages of BasicBlocks (projection where stride or width changes), fc.
double count_resnet(const ModelConfig& cfg, const std::string& name, const std::vector<int64_t>& base, const std::vector<int>& blocks,
              int64_t stem_kernel) {
  ChannelPlan plan(cfg.channels);
  Census s;
  std::vector<int64_t> widths;
  for (int64_t c : base) widths.push_back(scaled(c, cfg.width));
  int64_t in = plan.out("conv1", widths[0]), in_default = widths[0];
  s.conv_bn(static_cast<double>(cfg.in_channels), static_cast<double>(in), static_cast<double>(stem_kernel));
  for (size_t st = 0; st < widths.size(); ++st)
    for (int b = 0; b < blocks[st]; ++b) {
      const std::string p = "layer" + std::to_string(st + 1) + "." + std::to_string(b);
      const bool ds = (st > 0 && b == 0) || in_default != widths[st];
      const int64_t mid = plan.out(p + ".conv1", widths[st]), out = plan.out(p + ".conv2", widths[st]);
      s.conv_bn(static_cast<double>(in), static_cast<double>(mid), 3);
      s.conv_bn(static_cast<double>(mid), static_cast<double>(out), 3);
      if (ds) {
        ChannelPlan::require_equal(p + " (conv2 vs downsample.0)", out, plan.out(p + ".downsample.0", widths[st]));
        s.conv_bn(static_cast<double>(in), static_cast<double>(out), 1);
      }
      in = out;
      in_default = widths[st];
    }
  s.linear(static_cast<double>(in), static_cast<double>(cfg.num_classes));
  plan.finish(name);
  return s.n;
}

// resnet.cpp's resnet50: stem conv, stages of Bottlenecks (planes p, output 4p; the first block
// of each stage projects), fc.
double count_resnet50(const ModelConfig& cfg) {
  ChannelPlan plan(cfg.channels);
  Census s;
  const int blocks[4] = {3, 4, 6, 3};
  const int64_t base[4] = {64, 128, 256, 512};
  int64_t in_default = scaled(64, cfg.width), in = plan.out("conv1", in_default);
  s.conv_bn(static_cast<double>(cfg.in_channels), static_cast<double>(in), cfg.resolved_variant() == "imagenet" ? 7 : 3);
  for (int st = 0; st < 4; ++st) {
    const int64_t planes = scaled(base[st], cfg.width), wide = 4 * planes;
    for (int b = 0; b < blocks[st]; ++b) {
      const std::string p = "layer" + std::to_string(st + 1) + "." + std::to_string(b);
      const bool ds = (st > 0 && b == 0) || in_default != wide;
      const int64_t mid1 = plan.out(p + ".conv1", planes), mid2 = plan.out(p + ".conv2", planes), out = plan.out(p + ".conv3", wide);
      s.conv_bn(static_cast<double>(in), static_cast<double>(mid1), 1);
      s.conv_bn(static_cast<double>(mid1), static_cast<double>(mid2), 3);
      s.conv_bn(static_cast<double>(mid2), static_cast<double>(out), 1);
      if (ds) {
        ChannelPlan::require_equal(p + " (conv3 vs downsample.0)", out, plan.out(p + ".downsample.0", wide));
        s.conv_bn(static_cast<double>(in), static_cast<double>(out), 1);
      }
      in = out;
      in_default = wide;
    }
  }
  s.linear(static_cast<double>(in), static_cast<double>(cfg.num_classes));
  plan.finish("resnet50");
  return s.n;
}

// mobilenet_v1.cpp: stem, 13 depthwise-separable blocks, fc.
double count_mobilenet_v1(const ModelConfig& cfg) {
  const int64_t outs[13] = {64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024};
  ChannelPlan plan(cfg.channels);
  Census s;
  int64_t in = plan.out("features.0.0", make_divisible(32 * cfg.width));
  s.conv_bn(static_cast<double>(cfg.in_channels), static_cast<double>(in), 3);
  for (int i = 0; i < 13; ++i) {
    const std::string p = "features." + std::to_string(i + 1);
    plan.fixed(p + ".dw.0", in);
    const int64_t out = plan.out(p + ".pw.0", make_divisible(static_cast<double>(outs[i]) * cfg.width));
    s.conv_bn(static_cast<double>(in), static_cast<double>(in), 3, static_cast<double>(in));
    s.conv_bn(static_cast<double>(in), static_cast<double>(out), 1);
    in = out;
  }
  s.linear(static_cast<double>(in), static_cast<double>(cfg.num_classes));
  plan.finish("mobilenetv1");
  return s.n;
}

// mobilenet_v2.cpp: stem, inverted residual rows (expansion t, channels c, repeats n), last 1x1 conv, classifier.
double count_mobilenet_v2(const ModelConfig& cfg) {
  const int64_t rows[7][3] = {{1, 16, 1}, {6, 24, 2}, {6, 32, 3}, {6, 64, 4}, {6, 96, 3}, {6, 160, 3}, {6, 320, 1}};
  ChannelPlan plan(cfg.channels);
  Census s;
  int64_t in_default = make_divisible(32 * cfg.width);
  int64_t in = plan.out("features.0.0", in_default);
  s.conv_bn(static_cast<double>(cfg.in_channels), static_cast<double>(in), 3);
  int index = 1;
  for (const auto& [t, c, n] : rows) {
    const int64_t out_default = make_divisible(static_cast<double>(c) * cfg.width);
    for (int64_t i = 0; i < n; ++i, ++index) {
      const std::string p = "features." + std::to_string(index) + ".conv";
      const bool expand = t != 1;
      const int64_t hidden = expand ? plan.out(p + ".0.0", std::llround(static_cast<double>(in_default * t))) : in;
      plan.fixed(p + (expand ? ".1.0" : ".0.0"), hidden);
      const int64_t out = plan.out(p + (expand ? ".2" : ".1"), out_default);
      if (expand) s.conv_bn(static_cast<double>(in), static_cast<double>(hidden), 1);
      s.conv_bn(static_cast<double>(hidden), static_cast<double>(hidden), 3, static_cast<double>(hidden));
      s.conv_bn(static_cast<double>(hidden), static_cast<double>(out), 1);
      in = out;
      in_default = out_default;
    }
  }
  const int64_t last = plan.out("features." + std::to_string(index) + ".0", make_divisible(1280 * std::max(1.0, cfg.width)));
  s.conv_bn(static_cast<double>(in), static_cast<double>(last), 1);
  s.linear(static_cast<double>(last), static_cast<double>(cfg.num_classes));
  plan.finish("mobilenetv2");
  return s.n;
}

double architecture(const ModelConfig& cfg) {
  const std::string& a = cfg.arch;
  if (a == "resnet20" || a == "resnet32" || a == "resnet56") {
    const int n = (std::stoi(a.substr(6)) - 2) / 6;
    return count_resnet(cfg, a, {16, 32, 64}, {n, n, n}, 3);
  }
  if (a == "resnet18") return count_resnet(cfg, a, {64, 128, 256, 512}, {2, 2, 2, 2}, cfg.resolved_variant() == "imagenet" ? 7 : 3);
  if (a == "resnet50") return count_resnet50(cfg);
  if (a == "mobilenetv1") return count_mobilenet_v1(cfg);
  if (a == "mobilenetv2") return count_mobilenet_v2(cfg);
  std::string known;  // the registry's names; the test holds every one of them to its built count
  for (const auto& n : model_names()) known += (known.empty() ? "" : ", ") + n;
  PFQ_FAIL("unknown model '", a, "' (known: ", known, ")");
}

}  // namespace

double state_numel(const ModelConfig& cfg) {
  PFQ_CHECK(!cfg.arch.empty(), "model config: the architecture (arch) is empty");
  // the builders turn width into int64 channel counts; beyond this they would overflow
  PFQ_CHECK(std::isfinite(cfg.width) && cfg.width > 0 && cfg.width <= 1e9, "model config: width must be a number in (0, 1e9], got ",
            cfg.width);
  // every factor positive, so no claim can cancel another out
  PFQ_CHECK(cfg.in_channels > 0 && cfg.num_classes > 0, "model config: in_channels and num_classes must be positive, got ",
            cfg.in_channels, " and ", cfg.num_classes);
  double n = architecture(cfg);
  for (const auto& [name, shape] : cfg.output_corrections) {
    double values = 1;
    for (int64_t d : shape) values *= static_cast<double>(d);
    PFQ_CHECK(shape.size() == 3 && std::all_of(shape.begin(), shape.end(), [](int64_t d) { return d > 0; }),
              "model config: the output correction of '", name, "' must have 3 positive sizes [OC, OH, OW]");
    n += values;
  }
  return n;
}

}  // namespace pfq::models
