// cmd_inspect.cpp — `pfq inspect`: a checkpoint's architecture and layer summary plus the PfQ
// analysis (prune/analysis.h: BN running-variance spread, constant channels per criterion,
// BN-folded weight range and b-bit step per layer, before and after an in-memory PfQ pass),
// with optional SVG charts; or the GPUs this build can use (--devices). Plain state dicts
// (e.g. exported from PyTorch) load as recognised, or with --arch and the geometry flags. The work:
// apps/inspect_checkpoint.h.
#include <cstdio>
#include <iostream>

#include "apps/cli_checks.h"
#include "apps/commands.h"
#include "apps/inspect_checkpoint.h"
#include "core/device.h"

namespace pfq::app {

void add_inspect_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "describe a checkpoint (layers, parameters, multiply-adds, PfQ analysis) or list GPUs");
  auto o = std::make_shared<InspectOptions>();
  cmd->add_option("checkpoint", o->checkpoint, "a .safetensors checkpoint written by pfq, or plain PyTorch weights")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--devices", o->devices, "list the CUDA GPUs this build can use");
  cmd->add_flag("--json", o->json, "print one JSON document");
  cmd->add_option("--bits", o->bits, "per-layer quantization step reported at this bit width")->check(CLI::Range(2, 16))->capture_default_str();
  cmd->add_option("--var-threshold", o->var_threshold, "also count channels with running_var below this (var-below=<t>)")
      ->check(::pfq::app::NonNegative);
  cmd->add_option("--criterion", o->criterion, "the in-memory PfQ pass: var-below-eps | var-zero | var-below=<t>")->capture_default_str();
  cmd->add_option("--border", o->border, "the in-memory PfQ pass: exact | bias | keep")
      ->check(CLI::IsMember({"exact", "bias", "keep"}))
      ->capture_default_str();
  cmd->add_option("--plot", o->plot, "write the per-layer folded weight range before/after PfQ as this SVG");
  cmd->add_option("--plot-dir", o->plot_dir, "write weight_range.svg and bn_variance.svg into this folder");
  cmd->add_flag("--no-analysis", o->no_analysis, "architecture summary only");
  add_weights_flags(cmd, o->weights);
  cmd->callback([o] {
    if (o->devices) {
      std::printf("%s", describe_devices().c_str());
      return;
    }
    PFQ_CHECK(!o->no_analysis || (o->plot.empty() && o->plot_dir.empty()), "pfq inspect: --plot/--plot-dir need the analysis (drop --no-analysis)");
    const InspectResult r = inspect_checkpoint(*o);
    if (o->json)
      std::cout << r.json.dump(2) << "\n";
    else
      std::printf("%s", r.text.c_str());
  });
}

}  // namespace pfq::app
