// cmd_train.cpp — `pfq train` and `pfq eval`.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "apps/cli_checks.h"
#include "apps/commands.h"
#include "apps/run_options.h"
#include "apps/trainer.h"

namespace pfq::app {

namespace {
int g_exit_code = 0;
}
int exit_code() { return g_exit_code; }
void set_exit_code(int code) { g_exit_code = code; }

void add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "train a model from scratch (or resume) on a dataset");
  auto o = std::make_shared<TrainOptions>();
  add_model_flags(cmd, *o, {.model = "architecture", .width = "channel width multiplier (MobileNets)"});
  add_data_flags(cmd, *o, {.dataset = "dataset"});
  cmd->add_option("--epochs", o->epochs)->check(::pfq::app::Positive)->capture_default_str();
  cmd->add_option("--optimizer", o->optimizer)->check(CLI::IsMember({"sgd", "adam", "adamw"}))->capture_default_str();
  cmd->add_option("--lr", o->lr, "peak learning rate")->check(::pfq::app::NonNegative)->capture_default_str();
  cmd->add_option("--momentum", o->momentum)->check(CLI::Range(0.0, 0.999999))->capture_default_str();
  cmd->add_option("--nesterov", o->nesterov, "Nesterov momentum (true/false)")->capture_default_str();
  cmd->add_option("--weight-decay", o->weight_decay)->check(::pfq::app::NonNegative)->capture_default_str();
  cmd->add_flag("--no-decay-bn-bias", o->no_decay_bn_bias, "exclude BN parameters and biases from weight decay");
  cmd->add_option("--schedule", o->schedule)->check(CLI::IsMember({"constant", "step", "multistep", "cosine"}))->capture_default_str();
  cmd->add_option("--warmup", o->warmup, "epochs of linear warmup")->check(::pfq::app::NonNegative)->capture_default_str();
  cmd->add_option("--label-smoothing", o->label_smoothing)->check(CLI::Range(0.0, 0.999))->capture_default_str();
  add_run_flags(cmd, *o, {.out = "output directory (checkpoints, metrics)"});
  add_parallel_flags(cmd, *o);
  cmd->add_flag("--resume", o->resume, "continue from <out>/last.safetensors");
  cmd->add_flag("--skip-nonfinite", o->skip_nonfinite,
                "skip steps whose loss or gradients are NaN/Inf (counted in metrics) instead of stopping");
  cmd->callback([o] {
    std::fprintf(stderr, "pfq train: %s\n", with_backend(nlohmann::json(*o)).dump().c_str());
    TrainResult r = train(*o);
    if (r.interrupted) {
      set_exit_code(130);
      return;
    }
    std::printf("final: test top1 %.2f%% top5 %.2f%% loss %.4f (best top1 %.2f%%), checkpoints in %s\n", r.final_eval.top1,
                r.final_eval.top5, r.final_eval.loss, r.best_top1, o->out.c_str());
    if (r.skipped_nonfinite > 0)
      std::printf("skipped %lld steps with a NaN/Inf loss or gradient (--skip-nonfinite)\n", (long long)r.skipped_nonfinite);
  });
}

void add_eval_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "evaluate a checkpoint on a dataset's test split");
  struct EvalOptions : DataOptions {
    std::string checkpoint;
    DeviceOption device;
    bool json = false;
    WeightsOptions weights;
  };
  auto o = std::make_shared<EvalOptions>();
  cmd->add_option("checkpoint", o->checkpoint, "a .safetensors checkpoint written by pfq, or plain PyTorch weights")
      ->required()
      ->check(CLI::ExistingFile);
  add_weights_flags(cmd, o->weights);
  add_data_flags(cmd, *o, {.data_dir = "", .limit_train = nullptr, .limit_test = nullptr, .batch_size = nullptr, .workers = "",
                           .workers_default = false});
  add_device_flag(cmd, o->device);
  cmd->add_option("--limit", o->limit_test, "evaluate only the first N images")->check(::pfq::app::NonNegative);
  cmd->add_flag("--json", o->json, "print one JSON object (top1, top5, loss, images)");
  cmd->callback([o] {
    EvalResult r = evaluate_checkpoint(o->checkpoint, *o, o->device, !o->json, o->weights);
    if (o->json) {
      std::cout << nlohmann::json{{"top1", r.top1}, {"top5", r.top5}, {"loss", r.loss}, {"images", r.images}}.dump() << "\n";
    } else {
      std::printf("%s on %s: top1 %.2f%% top5 %.2f%% loss %.4f (%lld images)\n", o->checkpoint.c_str(), o->dataset.c_str(), r.top1,
                  r.top5, r.loss, static_cast<long long>(r.images));
    }
  });
}

}  // namespace pfq::app
