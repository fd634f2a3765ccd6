// cmd_inspect.cpp — `pfq inspect`: a checkpoint's architecture and layer summary plus the PfQ
// analysis (prune/analysis.h: BN running-variance spread, constant channels per criterion,
// BN-folded weight range and b-bit step per layer, before and after an in-memory PfQ pass),
// with optional SVG charts; or the GPUs this build can use (--devices). Plain state dicts
// (e.g. exported from PyTorch) load with --arch and the input geometry.
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "apps/checkpoint.h"
#include "apps/commands.h"
#include "apps/finetune.h"
#include "apps/pfq_plots.h"
#include "core/device.h"
#include "core/io/atomic_file.h"
#include "layers/models/registry.h"
#include "layers/summary.h"
#include "prune/pfq.h"
#include "quant/model_size.h"

namespace pfq::app {

namespace {

struct InspectOpts {
  std::string checkpoint;
  bool devices = false, json = false, no_analysis = false;
  int bits = 4;
  double var_threshold = -1;
  std::string criterion = "var-below-eps", border = "exact";
  std::string plot, plot_dir;
  models::ModelConfig weights;  // with --arch: the architecture of a plain state dict
};

void list_devices() {
  if (!cuda_compiled()) {
    std::printf("this pfq was built without CUDA: no GPUs usable (cpu only)\n");
    return;
  }
  auto devs = cuda_devices();
  if (devs.empty()) std::printf("built with CUDA, but no GPU is present\n");
  for (auto& d : devs)
    std::printf("cuda:%d  %s  %.1f GiB  compute capability %d.%d\n", d.index, d.name.c_str(), d.total_memory / 1073741824.0,
                d.cc_major, d.cc_minor);
}

void write_plot(const std::string& path, const std::string& svg, nlohmann::json& written) {
  const auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir);
  io::write_file_atomic(path, svg);
  written.push_back(path);
}

void run_inspect(const InspectOpts& o) {
  PFQ_CHECK(!o.checkpoint.empty(), "pfq inspect: give a checkpoint path or --devices");
  if (!o.no_analysis) prune::parse_border(o.border);  // spellings first
  const prune::Criterion crit = prune::parse_criterion(o.criterion);
  const Checkpoint ck = o.weights.arch.empty() ? load_checkpoint(o.checkpoint) : load_weights_as_checkpoint(o.checkpoint, o.weights);
  // A QAT checkpoint (pfq finetune) is rebuilt as its fake-quantized model; the PfQ analysis is for float models.
  const bool qat = ck.train.extra.is_object() && ck.train.extra.contains("qat");
  ModulePtr model = qat ? model_from_any_checkpoint(ck) : model_from_checkpoint(ck);
  const Shape in{1, ck.model.in_channels, ck.model.input_size, ck.model.input_size};
  const ModelSummary s = summarize(*model, in);
  nlohmann::json j = {{"checkpoint", o.checkpoint}, {"model", ck.model}, {"summary", s.to_json()}, {"epoch", ck.train.epoch}};
  const quant::ModelSize size = quant::model_size(*model);
  j["model_size"] = size.to_json();
  char size_line[192];
  std::snprintf(size_line, sizeof size_line, "model size: %.3f KiB (%s; %.3f KiB at float32)\n", size.kib(),
                qat ? "QAT: weights at their bit widths, scales/biases/activation ranges at 32 bits" : "float32, BN not folded",
                size.float32_kib());
  std::string text = size_line;
  PFQ_CHECK(!qat || (o.plot.empty() && o.plot_dir.empty()), "pfq inspect: --plot/--plot-dir chart the PfQ analysis of a float model; ",
            o.checkpoint, " is a QAT checkpoint (inspect the float checkpoint it was fine-tuned from)");
  if (!o.no_analysis && !qat) {
    prune::ModelAnalysis a = prune::analyze(*model, {o.bits, o.var_threshold});
    // "After" = what `pfq prune` would produce: the same pass on a copy of the model, in memory.
    ModulePtr pruned = model_from_checkpoint(ck);
    prune::PfqOptions po;
    po.criterion = crit;
    po.border = prune::parse_border(o.border);
    const prune::PruneReport rep = prune::pfq_prune(*pruned, ck.model, po);
    a.attach(rep);
    const ModelSummary s1 = summarize(*pruned, in);
    j["analysis"] = a.to_json();
    j["pfq"] = {{"criterion", rep.criterion},          {"border", rep.border},
                {"removed_total", rep.removed_total},  {"kept_constant_total", rep.kept_constant_total},
                {"correction_maps", rep.correction_maps}, {"params_before", s.total_params},
                {"params_after", s1.total_params},     {"macs_before", s.total_macs},
                {"macs_after", s1.total_macs}};
    nlohmann::json plots = nlohmann::json::array();
    if (!rep.layers.empty()) {
      if (!o.plot.empty()) write_plot(o.plot, weight_range_svg(rep), plots);
      if (!o.plot_dir.empty()) {
        write_plot(o.plot_dir + "/weight_range.svg", weight_range_svg(rep), plots);
        write_plot(o.plot_dir + "/bn_variance.svg", bn_variance_svg(a), plots);
      }
    }
    j["plots"] = plots;
    text += "\n" + a.str();
    char line[256];
    std::snprintf(line, sizeof line, "parameters %lld -> %lld, multiply-adds %lld -> %lld after PfQ\n",
                  static_cast<long long>(s.total_params), static_cast<long long>(s1.total_params),
                  static_cast<long long>(s.total_macs), static_cast<long long>(s1.total_macs));
    text += line;
    for (const auto& p : plots) text += "wrote " + p.get<std::string>() + "\n";
    if (rep.layers.empty()) text += "no conv -> BN layers: nothing to analyse or plot\n";
  }
  if (qat && !o.no_analysis) text += "PfQ analysis skipped: a QAT (fake-quantized) checkpoint; inspect the float checkpoint instead\n";
  if (o.json) {
    std::cout << j.dump(2) << "\n";
    return;
  }
  if (o.weights.arch.empty())
    std::printf("%s: %s, trained %lld epochs, best top1 %.2f%%\n", o.checkpoint.c_str(), ck.model.arch.c_str(),
                static_cast<long long>(ck.train.epoch), ck.train.best_top1);
  else
    std::printf("%s: plain weights loaded as %s (width %g, %lld x %lld x %lld input, %lld classes)\n", o.checkpoint.c_str(),
                ck.model.arch.c_str(), ck.model.width, static_cast<long long>(ck.model.in_channels),
                static_cast<long long>(ck.model.input_size), static_cast<long long>(ck.model.input_size),
                static_cast<long long>(ck.model.num_classes));
  std::printf("%s%s", s.str(2).c_str(), text.c_str());
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "describe a checkpoint (layers, parameters, multiply-adds, PfQ analysis) or list GPUs");
  auto o = std::make_shared<InspectOpts>();
  o->weights.in_channels = 1;
  o->weights.input_size = 28;
  cmd->add_option("checkpoint", o->checkpoint, "a .safetensors checkpoint written by pfq (or plain weights with --arch)")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--devices", o->devices, "list the CUDA GPUs this build can use");
  cmd->add_flag("--json", o->json, "print one JSON document");
  cmd->add_option("--bits", o->bits, "per-layer quantization step reported at this bit width")->check(CLI::Range(2, 16))->capture_default_str();
  cmd->add_option("--var-threshold", o->var_threshold, "also count channels with running_var below this (var-below=<t>)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--criterion", o->criterion, "the in-memory PfQ pass: var-below-eps | var-zero | var-below=<t>")->capture_default_str();
  cmd->add_option("--border", o->border, "the in-memory PfQ pass: exact | bias | keep")
      ->check(CLI::IsMember({"exact", "bias", "keep"}))
      ->capture_default_str();
  cmd->add_option("--plot", o->plot, "write the per-layer folded weight range before/after PfQ as this SVG");
  cmd->add_option("--plot-dir", o->plot_dir, "write weight_range.svg and bn_variance.svg into this folder");
  cmd->add_flag("--no-analysis", o->no_analysis, "architecture summary only");
  auto* arch = cmd->add_option("--arch", o->weights.arch, "load plain weights (no pfq metadata, e.g. from PyTorch) into this architecture")
                   ->check(CLI::IsMember(models::model_names()));
  cmd->add_option("--width", o->weights.width, "with --arch: width multiplier")->check(CLI::PositiveNumber)->capture_default_str()->needs(arch);
  cmd->add_option("--in-channels", o->weights.in_channels, "with --arch: input channels")
      ->check(CLI::PositiveNumber)
      ->capture_default_str()
      ->needs(arch);
  cmd->add_option("--input-size", o->weights.input_size, "with --arch: input height and width")
      ->check(CLI::PositiveNumber)
      ->capture_default_str()
      ->needs(arch);
  cmd->add_option("--classes", o->weights.num_classes, "with --arch: classes")->check(CLI::PositiveNumber)->capture_default_str()->needs(arch);
  cmd->callback([o] {
    if (o->devices) return list_devices();
    PFQ_CHECK(!o->no_analysis || (o->plot.empty() && o->plot_dir.empty()), "pfq inspect: --plot/--plot-dir need the analysis (drop --no-analysis)");
    run_inspect(*o);
  });
}

}  // namespace pfq::app
