// cmd_bench.cpp — `pfq bench`: the flags of the timed training, QAT and inference steps of the
// built-in models on synthetic data (apps/bench_modes.h), of the loader mode (bench_loader.h)
// and of the per-op profile (bench_profile.h). apps/bench_run.h runs them and prints a row per
// model and mode, or one JSON document (bench/compare.sh pairs it with PyTorch).
#include <iostream>
#include <nlohmann/json.hpp>

#include "apps/cli_checks.h"
#include "apps/bench_run.h"
#include "apps/commands.h"
#include "apps/quantizer_presets.h"
#include "core/device.h"
#include "data/factory.h"
#include "layers/models/registry.h"

namespace pfq::app {

void add_bench_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "time training steps and inference of the built-in models (synthetic data)");
  auto o = std::make_shared<BenchOptions>();
  cmd->add_option("--models", o->models, "models to time")->check(CLI::IsMember(models::model_names()))->capture_default_str();
  cmd->add_option("--modes", o->modes,
                  "train, infer, qat (QAT training step, BN folded), loader (data loader images/s against the training step) "
                  "and/or index (start-up listing of the image folder --data-dir/train: time and memory)")
      ->check(CLI::IsMember({"train", "infer", "qat", "loader", "index"}))
      ->capture_default_str();
  cmd->add_option("--wbits", o->wbits, "qat mode: weight bits (32 = float)")->check(CLI::Range(1, 32))->capture_default_str();
  cmd->add_option("--abits", o->abits, "qat mode: activation bits (32 = float)")->check(CLI::Range(1, 32))->capture_default_str();
  cmd->add_option("--bn-stats", o->bn_stats, "qat mode: folded BN's batch statistics, float | quantized (default: finetune's)")
      ->check(CLI::IsMember(quant::bn_stats_names()));
  cmd->add_option("--quantizer", o->quantizer,
                  "qat mode: quantizer preset of pfq reproduce (minmax = minmax weights + EMA activations, as pfq finetune)")
      ->check(CLI::IsMember(quantizer_presets()))
      ->capture_default_str();
  cmd->add_option("--loader-datasets", o->loader_datasets, "loader mode: datasets (cifar10 without --data-dir: synthetic files)")
      ->check(CLI::IsMember(data::dataset_names()))
      ->capture_default_str();
  cmd->add_option("--data-dir", o->data_dir, "loader and index modes: dataset folder (default: the dataset's standard location)");
  cmd->add_option("--workers", o->workers, "loader mode: data loader threads")->check(::pfq::app::NonNegative)->capture_default_str();
  cmd->add_option("--loader-batches", o->loader_batches, "loader mode: batches timed for the loader alone")
      ->check(::pfq::app::Positive)
      ->capture_default_str();
  cmd->add_option("--batch-size", o->batch)->check(::pfq::app::Positive)->capture_default_str();
  cmd->add_option("--size", o->size, "input height and width")->check(::pfq::app::Positive)->capture_default_str();
  cmd->add_option("--channels", o->channels)->check(::pfq::app::Positive)->capture_default_str();
  cmd->add_option("--classes", o->classes)->check(::pfq::app::Positive)->capture_default_str();
  cmd->add_option("--width", o->width)->check(::pfq::app::Positive)->capture_default_str();
  cmd->add_option("--threads", o->threads, "OpenMP threads (0 = all cores)")->check(::pfq::app::NonNegative)->capture_default_str();
  cmd->add_option("--warmup", o->warmup)->check(::pfq::app::NonNegative)->capture_default_str();
  cmd->add_option("--steps", o->steps)->check(::pfq::app::Positive)->capture_default_str();
  cmd->add_flag("--json", o->json, "print one JSON document");
  cmd->add_flag("--no-overlap", o->no_overlap, "under mpirun: all-reduce the gradients after the backward pass instead of during it");
  cmd->add_option("--profile", o->profile_steps, "after timing, run N more steps with the op profiler and print the per-op breakdown")
      ->check(::pfq::app::NonNegative);
  cmd->add_flag("--profile-shapes", o->profile_shapes, "with --profile: split convolution time by pass (fwd, dX, dW) and layer shape")
      ->needs("--profile");
  cmd->add_flag("--profile-host", o->profile_host,
                "with --profile on a GPU: do not wait for the device in each op, so the rows are the host's time to launch them")
      ->needs("--profile");
  cmd->add_option("--cpu-conv", o->cpu_conv, "CPU convolution backend: onednn (default when built with oneDNN) or eigen (pfq's own kernels)")
      ->check(CLI::IsMember({"onednn", "eigen"}));
  cmd->add_option("--cpu-layout", o->cpu_layout,
                  "activation layout around oneDNN's CPU convolutions: nhwc (default: channels-last, kept across layers) or nchw (reordered on every call)")
      ->check(CLI::IsMember({"nchw", "nhwc"}));
  add_device_flag(cmd, o->device);
  cmd->callback([o] {
    const nlohmann::ordered_json out = run_bench(*o);
    if (o->json) std::cout << out.dump(2) << "\n";
  });
}

}  // namespace pfq::app
