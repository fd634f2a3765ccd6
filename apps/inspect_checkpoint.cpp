// inspect_checkpoint.cpp — `pfq inspect`'s work (apps/inspect_checkpoint.h): the analysis is
// prune/analysis.h's, the charts apps/pfq_plots.h's.
#include "apps/inspect_checkpoint.h"

#include <cstdio>
#include <filesystem>

#include "apps/checkpoint.h"
#include "apps/model_loading.h"
#include "apps/pfq_plots.h"
#include "core/device.h"
#include "core/io/atomic_file.h"
#include "layers/summary.h"
#include "prune/pfq.h"
#include "quant/model_size.h"

namespace pfq::app {

std::string describe_devices() {
  if (!cuda_compiled()) return "this pfq was built without CUDA: no GPUs usable (cpu only)\n";
  auto devs = cuda_devices();
  std::string out = devs.empty() ? "built with CUDA, but no GPU is present\n" : "";
  for (auto& d : devs) {
    char line[256];
    std::snprintf(line, sizeof line, "cuda:%d  %s  %.1f GiB  compute capability %d.%d\n", d.index, d.name.c_str(),
                  d.total_memory / 1073741824.0, d.cc_major, d.cc_minor);
    out += line;
  }
  return out;
}

namespace {

void write_plot(const std::string& path, const std::string& svg, nlohmann::json& written) {
  const auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir);
  io::write_file_atomic(path, svg);
  written.push_back(path);
}

}  // namespace

InspectResult inspect_checkpoint(const InspectOptions& o) {
  PFQ_CHECK(!o.checkpoint.empty(), "pfq inspect: give a checkpoint path or --devices");
  if (!o.no_analysis) prune::parse_border(o.border);  // spellings first
  const prune::Criterion crit = prune::parse_criterion(o.criterion);
  const bool plain = !is_pfq_checkpoint_file(o.checkpoint);
  const Checkpoint ck = load_checkpoint_or_weights(o.checkpoint, o.weights);
  // A QAT checkpoint (pfq finetune) is rebuilt as its fake-quantized model; the PfQ analysis is for float models.
  const bool qat = is_qat_checkpoint(ck);
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
  char head[192];  // the checkpoint's path goes in front unabridged
  if (!plain)
    std::snprintf(head, sizeof head, ": %s, trained %lld epochs, best top1 %.2f%%\n", ck.model.arch.c_str(),
                  static_cast<long long>(ck.train.epoch), ck.train.best_top1);
  else
    std::snprintf(head, sizeof head, ": plain weights loaded as %s (width %g, %s variant, %lld x %lld x %lld input, %lld classes)\n",
                  ck.model.arch.c_str(), ck.model.width, ck.model.variant.c_str(), static_cast<long long>(ck.model.in_channels),
                  static_cast<long long>(ck.model.input_size), static_cast<long long>(ck.model.input_size),
                  static_cast<long long>(ck.model.num_classes));
  return {j, o.checkpoint + head + s.str(2) + text};
}

}  // namespace pfq::app
