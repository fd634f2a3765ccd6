// cmd_reproduce.cpp — `pfq reproduce`: flags of the reproduction protocol (apps/reproduce.h),
// optionally over a `pfq workflow` recipe or an earlier reproduction's config.json (--config;
// flags given on the command line override it). --task is internal: --jobs starts children so.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "apps/cli_checks.h"
#include "apps/commands.h"
#include "apps/config_file.h"
#include "core/dist/communicator.h"
#include "apps/run_options.h"
#include "apps/reproduce.h"

namespace pfq::app {

namespace {

// A reproduction's config.json (has "quantizers") or else a workflow recipe.
ReproduceOptions read_config(const std::string& path) {
  const nlohmann::json j = read_json_object(path);
  if (j.contains("quantizers")) return options_from_json<ReproduceOptions>(j, path);
  ReproduceOptions o;
  apply_workflow_recipe(options_from_json<WorkflowOptions>(j, path), o);
  return o;
}

}  // namespace

void add_reproduce_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "reproduce",
      "the reproduction protocol (docs/method.md 5): one pretrained model fine-tuned at several W/A bits with several "
      "quantizers, without and with PfQ and against L1 / BN-gamma pruning, over seeds; report.md + CSV + JSON");
  auto o = std::make_shared<ReproduceOptions>();
  auto config = std::make_shared<std::string>();
  auto extra_bits = std::make_shared<std::vector<std::string>>();
  auto task = std::make_shared<std::string>();
  auto report_only = std::make_shared<bool>(false);
  cmd->add_option("--config", *config, "a pfq workflow recipe (configs/*.json) or a reproduction's config.json")->check(CLI::ExistingFile);
  cmd->add_option("--out", o->out, "output folder (config, pretrain/, pfq/, runs/<id>/, report)")->capture_default_str();
  add_stage_flags(cmd, *o, "data loader threads per run");
  cmd->add_option("--pretrained", o->pretrained, "float checkpoint (or plain PyTorch weights) to start from instead of pretraining")
      ->check(CLI::ExistingFile);
  add_weights_flags(cmd, o->pretrained_weights, "pretrained-");
  cmd->add_option("--seeds", o->seeds, "fine-tuning seeds, e.g. 0,1,2")->delimiter(',')->capture_default_str();
  cmd->add_flag("--pretrain-per-seed", o->pretrain_per_seed, "pretrain once per seed (default: once, with the first seed)");
  cmd->add_option("--bits", *extra_bits, "W/A pairs to add to 8/8, 4/4, 4/8 (e.g. 2/4)")->delimiter(',');
  cmd->add_option("--only-bits", o->bits, "W/A pairs to run instead of 8/8, 4/4, 4/8")->delimiter(',');
  cmd->add_option("--quantizers", o->quantizers, "minmax, per-channel, pact, lsq")->delimiter(',')->capture_default_str();
  cmd->add_option("--pruning", o->pruning, "none, pfq, l1, bn-gamma")->delimiter(',')->capture_default_str();
  cmd->add_option("--baseline-quantizers", o->baseline_quantizers, "quantizers the l1 / bn-gamma baselines run with")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--jobs", o->jobs, "runs at once (child processes; threads are split between them)")->check(::pfq::app::Positive)->capture_default_str();
  cmd->add_option("--threads", o->threads, "OpenMP threads in total (0 = all cores)")->check(::pfq::app::NonNegative);
  cmd->add_option("--device", o->device,
                  "cpu | cuda | cuda:N, or a list the --jobs share (cuda:0,cuda:1): where pretraining and fine-tuning run")
      ->capture_default_str();
  cmd->add_flag("--quick", o->quick, "reduced schedule and data subsets (smoke test)");
  add_parallel_flags(cmd, *o);
  cmd->add_option("--finetune-epochs,--epochs", o->finetune_epochs, "QAT fine-tuning epochs per run")->check(::pfq::app::Positive)->capture_default_str();
  cmd->add_option("--stages", o->stages, "wa | w,wa (first half weights only)")->check(CLI::IsMember({"wa", "w,wa"}))->capture_default_str();
  cmd->add_option("--calib-batches", o->calib_batches, "ema observers: batches observed before quantizing")->check(::pfq::app::NonNegative)->capture_default_str();
  cmd->add_option("--first-last-bits", o->first_last_bits, "bits of the first conv and last linear")->check(CLI::Range(2, 8))->capture_default_str();
  cmd->add_flag("--export-onnx", o->export_onnx,
                "also write each run's fine-tuned model as runs/<id>/model.onnx (QDQ; runs already done too)");
  cmd->add_flag("--report-only", *report_only,
                "write the report of the runs done so far in --out (its config.json, with the grid changed by flags) "
                "and run nothing");
  cmd->add_option("--task", *task, "internal: run one task (pretrain:<seed> | run:<id>) of the reproduction in --out");
  cmd->callback([cmd, o, config, extra_bits, task, report_only] {
    if (!task->empty()) {
      PFQ_CHECK(pfq::dist::world().size() == 1, "reproduce --task runs one task of a reproduction in one process (it is how "
                "--jobs starts its children); under mpirun, run pfq reproduce itself");
      run_reproduce_task(o->out, *task, o->threads, o->workers, o->device);
      return;
    }
    ReproduceOptions opts;
    if (!config->empty())
      opts = read_config(*config);
    else if (*report_only && std::filesystem::exists(o->out + "/config.json"))  // else reproduce_report_only says it is missing
      opts = read_config(o->out + "/config.json");
    nlohmann::json given = *o, merged = opts;  // flags given on the command line override the file
    override_with_given_flags(*cmd, given, merged, {{"only_bits", "bits"}});
    if (o->pretrained_weights.any()) merged["pretrained_weights"] = o->pretrained_weights;  // --pretrained-arch ...: one key
    from_json(merged, opts);
    for (const auto& b : *extra_bits)
      if (std::find(opts.bits.begin(), opts.bits.end(), b) == opts.bits.end()) opts.bits.push_back(b);
    if (opts.quick) apply_quick(opts);
    note("pfq reproduce: %s\n", with_backend(nlohmann::json(opts)).dump().c_str());
    std::error_code ec;
    const std::string exe = std::filesystem::read_symlink("/proc/self/exe", ec).string();
    nlohmann::json r = *report_only ? reproduce_report_only(opts) : run_reproduce(opts, ec ? "" : exe);
    std::ifstream md(opts.out + "/report.md");
    std::cout << md.rdbuf();
    std::fprintf(stderr, "pfq reproduce: %lld runs ran now; report %s/report.md\n", static_cast<long long>(r.value("executed", 0)),
                 opts.out.c_str());
  });
}

}  // namespace pfq::app
