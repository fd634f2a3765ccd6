// commands.h — registration of the `pfq` subcommands (one function per subcommand; each
// runs from the parsed callback so errors surface as pfq::Error in main).
#pragma once
#include <CLI/CLI.hpp>

namespace pfq::app {

inline constexpr const char* kVersionString = "0.1.0";

void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_prune_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_workflow_command(CLI::App& app);
void add_finetune_command(CLI::App& app);
void add_reproduce_command(CLI::App& app);
void add_export_command(CLI::App& app);    // cmd_intcheck.cpp
void add_intcheck_command(CLI::App& app);
void add_import_command(CLI::App& app);

// Exit status set by the subcommand that ran (e.g. 130 after Ctrl-C).
int exit_code();
void set_exit_code(int code);

}  // namespace pfq::app
