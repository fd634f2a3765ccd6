// pfq.cpp — the `pfq` command line: one CLI11 app with a subcommand per stage of the
// workflow. Each subcommand parses and validates its flags (unknown flags are errors),
// echoes the resolved configuration, and calls into apps/ (trainer, checkpoint, ...).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "apps/commands.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"pfq — pretrain, prune (PfQ) and quantize CNNs on CPU and GPU"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("pfq ") + pfq::app::kVersionString);
  pfq::app::add_train_command(app);
  pfq::app::add_eval_command(app);
  pfq::app::add_inspect_command(app);
  pfq::app::add_prune_command(app);
  pfq::app::add_bench_command(app);
  pfq::app::add_workflow_command(app);
  pfq::app::add_finetune_command(app);
  pfq::app::add_reproduce_command(app);
  pfq::app::add_export_command(app);
  pfq::app::add_intcheck_command(app);
  pfq::app::add_import_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const pfq::Error& e) {
    std::fprintf(stderr, "pfq: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pfq: error: %s\n", e.what());
    return 1;
  }
  return pfq::app::exit_code();
}
