// pfq_by_hand.cpp — teaches PfQ (Pruning for Quantization) step by step with the library calls
// that `pfq prune` wraps: load a checkpoint, find the constant channels from the BatchNorm
// running variances (prune::analyze), remove them with their consumers compensated
// (prune::pfq_prune), then show that the model computes the same function
// (prune::max_output_change) while the BN-folded weight range, which sets the quantization step,
// shrinks.
//
//   pfq_by_hand [--checkpoint FILE]
//
// FILE: a pfq checkpoint (pfq train / pfq workflow write them). Without it the example makes
// one: a MobileNetV1 (width 0.25, 1x28x28 inputs) with two "dead" ReLU units, as SGD with weight
// decay leaves them (BN shift far below zero: the ReLU outputs 0 for every input); each feeds a
// depthwise channel whose output is then constant, variance 0, and whose folded weight
// gamma * w / sqrt(var + eps) is 1/sqrt(eps) ~ 316 times its weight: the range blow-up PfQ
// removes. No data needed: running statistics come from random inputs.
#include <cstdio>
#include <filesystem>
#include <string>

#include "apps/checkpoint.h"
#include "layers/layers.h"
#include "layers/models/registry.h"
#include "prune/analysis.h"
#include "prune/pfq.h"
#include "quant/qat.h"

using namespace pfq;

// Writes the demonstration checkpoint described above to `path`.
void make_checkpoint(const std::string& path) {
  models::ModelConfig cfg{.in_channels = 1, .input_size = 28, .num_classes = 10, .width = 0.25, .arch = "mobilenetv1"};
  ModulePtr model = models::build_model(cfg);
  // Dead units: channel 3 after features.1's pointwise conv, channel 5 after features.3's.
  for (auto [bn_path, channel] : {std::pair{"features.1.pw.1", 3}, std::pair{"features.3.pw.1", 5}}) {
    auto& bn = dynamic_cast<BatchNorm2d&>(model->submodule(bn_path));
    bn.bias().data<float>()[channel] = -100.f;
  }
  // Running statistics as training would leave them (here measured on random images).
  Generator gen(3);
  quant::reestimate_bn_stats(*model, [&] { return Tensor::randn({64, 1, 28, 28}, gen); }, 8);
  app::save_checkpoint(path, *model, models::describe("mobilenetv1", cfg, *model), app::TrainState{}, nullptr);
  std::printf("wrote %s (MobileNetV1 w0.25 with 2 dead ReLU units)\n", path.c_str());
}

int main(int argc, char** argv) {
  std::string path;
  if (argc == 3 && std::string(argv[1]) == "--checkpoint") {
    path = argv[2];
  } else if (argc == 1) {
    path = (std::filesystem::temp_directory_path() / "pfq_by_hand.safetensors").string();
    make_checkpoint(path);
  } else {
    return std::fprintf(stderr, "usage: pfq_by_hand [--checkpoint FILE]\n"), 2;
  }

  // 1. Load: the checkpoint records the architecture (channel counts too), so the model rebuilds.
  app::Checkpoint ckpt;
  try {
    ckpt = app::load_checkpoint(path);
  } catch (const Error& e) {
    return std::fprintf(stderr, "pfq checkpoint expected at %s\n  %s\n", path.c_str(), e.what()), 2;
  }
  ModulePtr model = app::model_from_checkpoint(ckpt);
  model->eval();

  // 2. Find: per conv -> BN layer, the channels whose running variance is below the BN's eps,
  //    and the folded weight range max |gamma * w / sqrt(var + eps)| with and without them.
  prune::ModelAnalysis before = prune::analyze(*model);
  std::printf("\nlayers with constant channels (var < eps) or dead producers:\n");
  for (const auto& l : before.layers)
    if (!l.constant_eps.empty() || !l.dead_via_depthwise.empty())
      std::printf("  %-18s %-9s %lld channels: %zu constant, %zu dead producer(s); folded range %.3g\n", l.name.c_str(),
                  l.kind.c_str(), (long long)l.channels, l.constant_eps.size(), l.dead_via_depthwise.size(), l.max_w);

  // 3. Remove: a twin loaded from the same file is pruned in place; each removed channel's constant
  //    output moves into its consumers (bias / running mean, exact border maps).
  ModulePtr pruned = app::model_from_checkpoint(ckpt);
  prune::PruneReport report = prune::pfq_prune(*pruned, ckpt.model);  // criterion var < eps, border exact
  before.attach(report);
  std::printf("\nPfQ removed %lld channels; parameters %lld -> %lld\n", (long long)report.removed_total,
              (long long)model->num_parameters(), (long long)pruned->num_parameters());

  // 4. Same function: the largest change of any logit over a batch of inputs (eval mode).
  Generator gen(11);
  const models::ModelConfig& cfg = ckpt.model;
  Tensor x = Tensor::randn({16, cfg.in_channels, cfg.input_size, cfg.input_size}, gen);
  const double change = prune::max_output_change(*model, *pruned, x);
  std::printf("max |logit before - after| over 16 inputs: %.3g\n", change);

  // 5. Smaller range: the layers that lost channels, folded weight range before -> after, and the
  //    4-bit per-layer step it implies (max / 7).
  double worst_before = 0, worst_after = 0;
  std::printf("\nfolded weight range (4-bit step) of the layers PfQ changed:\n");
  for (const auto& l : before.layers) {
    worst_before = std::max(worst_before, l.max_w);
    worst_after = std::max(worst_after, l.max_w_after);
    if (l.channels_after >= 0 && l.channels_after < l.channels)
      std::printf("  %-18s %lld -> %lld channels: %.3g (%.3g) -> %.3g (%.3g)\n", l.name.c_str(), (long long)l.channels,
                  (long long)l.channels_after, l.max_w, l.step4, l.max_w_after, l.step_after);
  }
  std::printf("largest folded range in the model: %.3g -> %.3g\n", worst_before, worst_after);
  // The function is kept within float rounding (relative to the logits' size).
  NoGradGuard no_grad;
  const double logit_scale = max(abs((*model)(x))).item();
  return change <= 1e-4 * std::max(1.0, logit_scale) ? 0 : 1;
}
