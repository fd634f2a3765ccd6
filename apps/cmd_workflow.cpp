// cmd_workflow.cpp — `pfq workflow`: every stage's flags on the command line or in a JSON
// config file (--config; flags given on the command line override the file).
#include <cstdio>
#include <fstream>
#include <iostream>

#include "apps/commands.h"
#include "apps/workflow.h"
#include "data/factory.h"
#include "layers/models/registry.h"

namespace pfq::app {

WorkflowOptions read_workflow_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  PFQ_CHECK(in, "--config ", path, ": cannot open");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    PFQ_FAIL("--config ", path, ": not valid JSON (error at byte ", e.byte, "): ", e.what());
  } catch (const nlohmann::json::exception& e) {
    PFQ_FAIL("--config ", path, ": not valid JSON: ", e.what());
  }
  PFQ_CHECK(j.is_object(), "--config ", path, ": expected a JSON object of options, got ", j.type_name());
  WorkflowOptions o;
  const nlohmann::json defaults = o;
  for (const auto& [key, value] : j.items())  // a float where an integer is expected would not convert safely
    PFQ_CHECK(!(defaults.contains(key) && defaults[key].is_number_integer() && value.is_number_float()), "--config ", path,
              ": key '", key, "': expected an integer, got ", value.dump());
  for (const auto& [key, value] : j.items())  // negative numbers would wrap around in unsigned options
    PFQ_CHECK(!(defaults.contains(key) && defaults[key].is_number_unsigned() && value.is_number_integer() &&
                !value.is_number_unsigned()),
              "--config ", path, ": key '", key, "': value ", value.dump(), " is out of range for this option (not negative)");
  try {
    from_json(j, o);
  } catch (const Error& e) {
    PFQ_FAIL("--config ", path, ": ", e.what());
  } catch (const nlohmann::json::exception&) {
    // Name the offending key: convert the keys one at a time.
    for (const auto& [key, value] : j.items()) {
      WorkflowOptions probe;
      try {
        from_json(nlohmann::json{{key, value}}, probe);
      } catch (const nlohmann::json::exception& e) {
        PFQ_FAIL("--config ", path, ": key '", key, "': value ", value.dump(), " has the wrong type for this option (",
                 nlohmann::json(probe)[key].type_name(), " expected): ", e.what());
      }
    }
    PFQ_FAIL("--config ", path, ": a value has the wrong type");
  }
  const nlohmann::json got = o;  // integers out of the option's range wrap around: refuse them
  for (const auto& [key, value] : j.items())
    PFQ_CHECK(got[key] == value, "--config ", path, ": key '", key, "': value ", value.dump(), " is out of range for this option");
  return o;
}

void add_workflow_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("workflow",
                                 "pretrain -> PfQ -> quantized fine-tune -> evaluate, as resumable stages in one folder "
                                 "(default: MobileNetV1 on Fashion-MNIST at 4/4 bits)");
  auto o = std::make_shared<WorkflowOptions>();
  auto config = std::make_shared<std::string>();
  cmd->add_option("--config", *config, "JSON file with any of the options below (keys as in <out>/config.json)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--out", o->out, "output folder (stages, checkpoints, metrics, report)")->capture_default_str();
  cmd->add_option("--dataset", o->dataset)->check(CLI::IsMember(data::dataset_names()))->capture_default_str();
  cmd->add_option("--data-dir", o->data_dir);
  cmd->add_option("--model", o->model)->check(CLI::IsMember(models::model_names()))->capture_default_str();
  cmd->add_option("--width", o->width)->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--seed", o->seed)->capture_default_str();
  cmd->add_option("--threads", o->threads)->check(CLI::NonNegativeNumber);
  cmd->add_option("--device", o->device, "cpu | cuda | cuda:N: where pretraining and fine-tuning run")->capture_default_str();
  cmd->add_option("--workers", o->workers)->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--limit-train", o->limit_train)->check(CLI::NonNegativeNumber);
  cmd->add_option("--limit-test", o->limit_test)->check(CLI::NonNegativeNumber);
  cmd->add_flag("--quick", o->quick, "reduced schedule and data subsets (smoke test, a few minutes)");
  cmd->add_option("--pretrain-epochs", o->pretrain_epochs)->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--pretrain-lr", o->pretrain_lr)->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--weight-decay", o->weight_decay)->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--batch-size", o->batch_size)->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--criterion", o->criterion, "PfQ criterion: var-below-eps | var-zero | var-below=<t>")->capture_default_str();
  cmd->add_option("--border", o->border, "PfQ border mode")->check(CLI::IsMember({"exact", "bias", "keep"}))->capture_default_str();
  cmd->add_option("--wbits", o->wbits)->check(CLI::Range(1, 8))->capture_default_str();
  cmd->add_option("--abits", o->abits)->check(CLI::Range(2, 8))->capture_default_str();
  cmd->add_option("--finetune-epochs", o->finetune_epochs)->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--finetune-lr", o->finetune_lr)->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--intcheck-images", o->intcheck_images, "integer check on the first N test images (0: all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->callback([cmd, o, config] {
    WorkflowOptions opts;
    if (!config->empty()) opts = read_workflow_config(*config);
    // Command-line flags override the file: copy every option the user actually gave.
    nlohmann::json given = *o, merged = opts;
    for (auto* opt : cmd->get_options()) {
      if (opt->count() == 0 || opt->get_name() == "--config" || opt->get_name() == "--help") continue;
      std::string key = opt->get_name().substr(2);
      std::replace(key.begin(), key.end(), '-', '_');
      if (given.contains(key)) merged[key] = given[key];
    }
    from_json(merged, opts);
    if (opts.quick) apply_quick(opts);
    std::fprintf(stderr, "pfq workflow: %s\n", nlohmann::json(opts).dump().c_str());
    nlohmann::json table = run_workflow(opts);
    std::printf("%s\n", table.dump(2).c_str());
  });
}

}  // namespace pfq::app
