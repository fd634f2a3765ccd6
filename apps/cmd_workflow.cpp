// cmd_workflow.cpp — `pfq workflow`: every stage's flags on the command line or in a JSON
// config file (--config; flags given on the command line override the file).
#include <cstdio>
#include <fstream>
#include <iostream>

#include "apps/cli_checks.h"
#include "apps/commands.h"
#include "apps/config_file.h"
#include "apps/run_options.h"
#include "apps/workflow.h"

namespace pfq::app {

void add_workflow_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("workflow",
                                 "pretrain -> PfQ -> quantized fine-tune -> evaluate, as resumable stages in one folder "
                                 "(default: MobileNetV1 on Fashion-MNIST at 4/4 bits)");
  auto o = std::make_shared<WorkflowOptions>();
  auto config = std::make_shared<std::string>();
  cmd->add_option("--config", *config, "JSON file with any of the options below (keys as in <out>/config.json)")
      ->check(CLI::ExistingFile);
  add_stage_flags(cmd, *o, "");
  add_run_flags(cmd, *o, {.out = "output folder (stages, checkpoints, metrics, report)", .threads = "", .threads_default = false,
                          .device = "cpu | cuda | cuda:N: where pretraining and fine-tuning run", .quiet = nullptr});
  cmd->add_option("--pretrained", o->pretrained, "float checkpoint or plain PyTorch weights to start from instead of pretraining")
      ->check(CLI::ExistingFile);
  add_weights_flags(cmd, o->pretrained_weights, "pretrained-");
  add_parallel_flags(cmd, *o);
  cmd->add_flag("--quick", o->quick, "reduced schedule and data subsets (smoke test, a few minutes)");
  cmd->add_option("--wbits", o->wbits)->check(CLI::Range(1, 8))->capture_default_str();
  cmd->add_option("--abits", o->abits)->check(CLI::Range(2, 8))->capture_default_str();
  cmd->add_option("--finetune-epochs", o->finetune_epochs)->check(::pfq::app::Positive)->capture_default_str();
  cmd->add_option("--intcheck-images", o->intcheck_images, "integer check on the first N test images (0: all)")
      ->check(::pfq::app::NonNegative)
      ->capture_default_str();
  cmd->add_option("--onnx-python", o->onnx_python,
                  "Python with onnx, onnxruntime, numpy, safetensors that checks the exported model.onnx")
      ->capture_default_str();
  cmd->callback([cmd, o, config] {
    WorkflowOptions opts;
    if (!config->empty()) opts = read_workflow_config(*config);
    nlohmann::json given = *o, merged = opts;  // flags given on the command line override the file
    override_with_given_flags(*cmd, given, merged);
    if (o->pretrained_weights.any()) merged["pretrained_weights"] = o->pretrained_weights;  // --pretrained-arch ...: one key
    from_json(merged, opts);
    if (opts.quick) apply_quick(opts);
    note("pfq workflow: %s\n", with_backend(nlohmann::json(opts)).dump().c_str());
    nlohmann::json table = run_workflow(opts);
    std::printf("%s\n", table.dump(2).c_str());
  });
}

}  // namespace pfq::app
