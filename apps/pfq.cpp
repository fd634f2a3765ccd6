// pfq.cpp — the `pfq` command line: one CLI11 app with a subcommand per stage of the
// workflow. Each subcommand parses and validates its flags (unknown flags are errors),
// echoes the resolved configuration, and calls into apps/ (trainer, checkpoint, ...).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "apps/commands.h"
#include "core/dist/communicator.h"
#include "core/error.h"
#include "core/io/atomic_file.h"

namespace {

// A data-parallel run (mpirun / srun): errors carry the rank, and a rank that fails ends every
// rank (MPI_Abort) instead of leaving them waiting in a collective.
int fail(const char* what) {
  pfq::dist::Communicator& w = pfq::dist::world();
  if (w.size() == 1) {
    std::fprintf(stderr, "pfq: error: %s\n", what);
    return 1;
  }
  std::fprintf(stderr, "pfq: error on rank %d of %d: %s\n", w.rank(), w.size(), what);
  w.abort(1);  // [[noreturn]], which GCC does not see through the virtual call
  return 1;
}

}  // namespace

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
    pfq::dist::init_from_environment();
    if (!pfq::dist::is_main_rank()) {  // rank 0 writes the run's files and prints its results; errors go to stderr from any rank
      pfq::io::disable_writes_on_this_process();
      if (!std::freopen("/dev/null", "w", stdout)) std::perror("pfq: /dev/null");
    }
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    if (pfq::dist::world().size() > 1 && code != 0) pfq::dist::world().abort(code);
    pfq::dist::finalize();
    return code;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  pfq::dist::finalize();
  return pfq::app::exit_code();
}
