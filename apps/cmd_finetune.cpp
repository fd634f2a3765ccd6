// cmd_finetune.cpp — `pfq finetune`: quantization-aware fine-tuning of a float checkpoint
// (apps/finetune.h). Prints the final fake-quantized top-1; exit status 0 also when diverged
// (the result is flagged, as docs/method.md 4.3 asks).
#include <cstdio>
#include <nlohmann/json.hpp>

#include "apps/cli_checks.h"
#include "apps/commands.h"
#include "apps/run_options.h"
#include "apps/finetune.h"
#include "quant/quantizer.h"

namespace pfq::app {

void add_finetune_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("finetune", "quantization-aware fine-tuning of a float checkpoint (BN folded)");
  auto o = std::make_shared<FinetuneOptions>();
  cmd->add_option("checkpoint", o->checkpoint, "float .safetensors checkpoint (pfq train / pfq prune), or plain PyTorch weights")
      ->required()
      ->check(CLI::ExistingFile);
  add_weights_flags(cmd, o->weights);
  cmd->add_option("--wbits", o->qat.wbits, "weight bits (32 = float)")->check(CLI::Range(1, 32))->capture_default_str();
  cmd->add_option("--abits", o->qat.abits, "activation bits (32 = float)")->check(CLI::Range(1, 32))->capture_default_str();
  cmd->add_option("--first-last-bits", o->qat.first_last_bits, "bits of the first conv and last linear (weights and input)")
      ->check(CLI::Range(1, 32))
      ->capture_default_str();
  cmd->add_option("--wquant", o->qat.wquant, "weight quantizer")->check(CLI::IsMember(quant::quantizer_names()))->capture_default_str();
  cmd->add_option("--aquant", o->qat.aquant, "activation quantizer")->check(CLI::IsMember(quant::quantizer_names()))->capture_default_str();
  cmd->add_flag("--per-channel", o->qat.per_channel, "per-output-channel weight quantization");
  cmd->add_flag("--fold-bn,!--no-fold-bn", o->qat.fold_bn, "fold BN into the conv weights during QAT (default on)");
  cmd->add_option("--bn-stats", o->qat.bn_stats,
                  "folded BN's batch statistics in training: float (a second float conv, exact) | quantized (one conv)")
      ->check(CLI::IsMember(quant::bn_stats_names()))
      ->capture_default_str();
  cmd->add_option("--calib-batches", o->qat.calib_batches, "ema observers: batches observed before quantizing")
      ->check(::pfq::app::NonNegative)
      ->capture_default_str();
  cmd->add_option("--stages", o->stages, "wa | w,wa (first half weights only)")->check(CLI::IsMember({"wa", "w,wa"}))->capture_default_str();
  cmd->add_option("--epochs", o->epochs)->check(::pfq::app::Positive)->capture_default_str();
  cmd->add_option("--lr", o->lr, "peak learning rate (cosine schedule)")->check(::pfq::app::NonNegative)->capture_default_str();
  cmd->add_option("--weight-decay", o->weight_decay)->check(::pfq::app::NonNegative)->capture_default_str();
  add_data_flags(cmd, *o);
  add_run_flags(cmd, *o, {.out = "output directory (checkpoint, metrics)"});
  add_parallel_flags(cmd, *o);
  cmd->add_option("--freeze-bn-epoch", o->freeze_bn_epoch, "freeze BN statistics from this epoch on (1-based; 0 = the last epoch of a run of 2 or more, never in a 1-epoch run)")
      ->check(::pfq::app::NonNegative)->capture_default_str();
  cmd->add_option("--bn-reestimate", o->bn_reestimate, "after training, re-estimate BN statistics from this many batches (0 = off)")
      ->check(::pfq::app::NonNegative)->capture_default_str();
  cmd->callback([o] {
    std::fprintf(stderr, "pfq finetune: %s\n", with_backend(nlohmann::json(*o)).dump().c_str());
    FinetuneResult r = finetune(*o);
    std::printf("final: fake-quantized test top1 %.2f%% top5 %.2f%% after %lld epochs%s, checkpoint %s\n", r.top1, r.top5,
                static_cast<long long>(r.epochs), r.diverged ? " (diverged)" : "", r.checkpoint.c_str());
    std::printf("model size: %.3f KiB (weights at their bit widths; scales, biases, activation ranges at 32 bits)\n",
                r.size_kib);
    if (r.collapsed) std::printf("%s\n", r.collapse.c_str());
  });
}

}  // namespace pfq::app
