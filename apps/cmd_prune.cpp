// cmd_prune.cpp — `pfq prune`: PfQ (or an L1 / BN-gamma baseline at matched size) on a
// checkpoint (apps/prune_checkpoint.h does the work). Prints the per-layer table, float
// accuracy, parameters and multiply-adds before -> after and the max output change on a test
// batch, or the JSON report.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "apps/cli_checks.h"
#include "apps/commands.h"
#include "apps/run_options.h"
#include "apps/prune_checkpoint.h"

namespace pfq::app {

namespace {

void print_outcome(const PruneOptions& o, const PruneOutcome& r) {
  const prune::PruneReport& report = r.report;
  const nlohmann::json& j = r.json;
  if (o.json) {
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::printf("%s", report.str().c_str());
  std::printf("parameters %lld -> %lld, multiply-adds %lld -> %lld (input %s)\n", static_cast<long long>(r.before.total_params),
              static_cast<long long>(r.after.total_params), static_cast<long long>(r.before.total_macs),
              static_cast<long long>(r.after.total_macs), shape_str(r.input).c_str());
  if (j.contains("accuracy"))
    std::printf("float top1 on %s (%lld images): %.2f%% -> %.2f%%\n", o.dataset.c_str(),
                static_cast<long long>(j["accuracy"]["images"].get<int64_t>()), j["accuracy"]["top1_before"].get<double>(),
                j["accuracy"]["top1_after"].get<double>());
  std::printf("max output change (%s): %.3g\n", j["output_change_input"].get<std::string>().c_str(), r.change);
  if (report.method != "pfq" && report.removed_total != r.target)
    std::printf("note: removed %lld of the %lld channels asked for (no smaller candidate fitted)\n",
                static_cast<long long>(report.removed_total), static_cast<long long>(r.target));
  std::printf("wrote %s and %s\n", o.out.c_str(), r.report_path.c_str());
}

}  // namespace

void add_prune_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("prune", "PfQ: remove constant filters without changing the function (or a baseline pruner)");
  auto o = std::make_shared<PruneOptions>();
  cmd->add_option("checkpoint", o->checkpoint, "a .safetensors checkpoint written by pfq, or plain PyTorch weights")
      ->required()
      ->check(CLI::ExistingFile);
  add_weights_flags(cmd, o->weights);
  cmd->add_option("--out", o->out, "pruned checkpoint to write (a .prune.json report goes next to it)")->required();
  cmd->add_option("--method", o->method, "pfq | l1 | bn-gamma")->check(CLI::IsMember({"pfq", "l1", "bn-gamma"}))->capture_default_str();
  cmd->add_option("--criterion", o->criterion, "PfQ: var-below-eps | var-zero | var-below=<t>")->capture_default_str();
  cmd->add_option("--border", o->border, "PfQ: exact | bias | keep")->check(CLI::IsMember({"exact", "bias", "keep"}))->capture_default_str();
  cmd->add_option("--target", o->target, "baselines: channels to remove (0 = as many as PfQ removes)")->check(::pfq::app::NonNegative);
  add_data_flags(cmd, *o, {.dataset = "evaluation dataset", .limit_train = nullptr, .limit_test = "evaluate only the first N test images",
                           .batch_size = nullptr, .workers_default = false});
  cmd->add_flag("--no-eval", o->no_eval, "skip the accuracy evaluation (output change measured on random inputs)");
  cmd->add_flag("--json", o->json, "print the JSON report instead of the table");
  cmd->callback([o] {
    std::fprintf(stderr, "pfq prune: %s\n", with_backend(nlohmann::json(*o)).dump().c_str());
    print_outcome(*o, prune_checkpoint(*o));
  });
}

}  // namespace pfq::app
