// workflow_report.cpp — report.md and the comparison figures of `pfq workflow` (workflow_report.h).
#include "apps/workflow_report.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>

#include "apps/checkpoint.h"
#include "apps/curves.h"
#include "apps/model_loading.h"
#include "apps/ort_check.h"
#include "apps/plot/svg_plot.h"
#include "core/error.h"
#include "core/io/atomic_file.h"
#include "quant/model_size.h"

namespace pfq::app {

double checkpoint_kib(const nlohmann::json& stage) {
  return quant::model_size(*model_from_any_checkpoint(load_checkpoint(stage.at("checkpoint").get<std::string>()))).kib();
}

std::string compare_weight_range_svg(const std::string& pfq_report_json, int wbits) {
  if (!std::filesystem::exists(pfq_report_json)) return "";
  nlohmann::json rep = nlohmann::json::parse(std::ifstream(pfq_report_json), nullptr, false);
  PFQ_CHECK(!rep.is_discarded(), "workflow report: ", pfq_report_json, " is not valid JSON; delete the pfq stage's folder to redo it");
  if (!rep.contains("layers") || rep["layers"].empty()) return "";
  const double levels = static_cast<double>((1 << (wbits - 1)) - 1);
  char title[160];
  std::snprintf(title, sizeof title, "max |w'| per layer at the start of each W%d fine-tune (W%d step = max |w'| / %g)", wbits, wbits,
                levels);
  plot::Axes ax{title, "layer", "max |w'| of BN-folded weights"};
  ax.log_y = true;
  plot::Series without{"without PfQ (the pretrained model)", {}, {}, "line+markers", "#D55E00"};
  plot::Series with{"with PfQ (after PfQ)", {}, {}, "line+markers", "#0072B2"};
  auto num = [](const nlohmann::json& v) { return v.is_number() ? v.get<double>() : std::numeric_limits<double>::quiet_NaN(); };
  for (const auto& l : rep["layers"]) {
    const std::string name = l.value("name", std::string("?"));
    ax.xtick_labels.push_back(l.value("kind", std::string()) == "depthwise" ? name + " [dw]" : name);
    without.y.push_back(num(l["max_w_before"]));
    with.y.push_back(num(l["max_w_after"]));
  }
  const size_t n = ax.xtick_labels.size();
  const int width = static_cast<int>(std::max<size_t>(720, std::min<size_t>(1600, 180 + 24 * n)));
  return plot::line_chart_svg(ax, {without, with}, width, 480);
}

namespace {

// One report row for the ONNX export: its size and what ONNX Runtime found.
std::string onnx_row(const WorkflowOptions& o, const nlohmann::json& ic) {
  const std::string name = "| W" + std::to_string(o.wbits) + "/A" + std::to_string(o.abits) + " ONNX (QDQ) | - | | | ";
  if (!ic.contains("onnx")) return "";
  const nlohmann::json& x = ic["onnx"];
  if (x.contains("error")) return name + "| not exported: " + x["error"].get<std::string>().substr(0, 300) + " |\n";
  char kib[32];
  std::snprintf(kib, sizeof kib, "%.2f", x["bytes"].get<double>() / 1024.0);
  std::string notes = "intcheck/model.onnx; ";
  const nlohmann::json& c = x["check"];
  if (!c["ran"].get<bool>()) {
    notes += "ONNX Runtime check not run: " + c["why"].get<std::string>();
  } else if (c.contains("error") || !c.contains("models") || c["models"].empty()) {
    notes += "ONNX Runtime check failed: " + c.value("error", std::string("no result")) + ", see intcheck/onnx_check.log";
  } else {
    const nlohmann::json& m = c["models"][0];
    char t[600];
    auto pct = [&](const char* level, const char* key) { return m.contains(level) ? 100.0 * m[level].value(key, 0.0) : -1.0; };
    std::snprintf(t, sizeof t, "ONNX Runtime %s %s: top-1 agrees with the fake-quantized model on %.2f%% of %lld images at "
                  "the default optimisation level, %.2f%% at ORT_DISABLE_ALL",
                  c.value("onnxruntime", std::string("?")).c_str(), c["ok"].get<bool>() ? "passed" : "FAILED",
                  pct("ort-default", "agree_fq"), m.value("images", 0LL), pct("ort-noopt", "agree_fq"));
    notes += t;
    // Near-tie flips (ort_check.h): ONNX Runtime's class is within kOrtTieTol of the largest logit
    // below the fake-quantized model's top-1; they are allowed, clear disagreements are not.
    const long long ties = m.contains("ort-default") ? m["ort-default"].value("near_ties_fq", 0LL) : 0;
    if (ties > 0) {
      std::snprintf(t, sizeof t, " (%lld near-tie flip%s, within %.0f%% of the largest logit; %.2f%% agree beyond that)",
                    ties, ties == 1 ? "" : "s", 100 * kOrtTieTol, pct("ort-default", "agree_fq_clear"));
      notes += t;
    }
  }
  return name + kib + " (file) | " + notes + " |\n";
}

std::string fmt_number(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// "diverged", "collapsed to chance", both or "" for a fine-tune stage's result.
std::string finetune_notes(const nlohmann::json& ft) {
  std::string s = ft.value("diverged", false) ? "diverged" : "";
  if (ft.value("collapsed", false)) s += std::string(s.empty() ? "" : "; ") + "collapsed to chance accuracy";
  return s;
}

// The paragraph under the table that compares the two fine-tunes.
std::string comparison_text(const WorkflowOptions& o, const nlohmann::json& t) {
  const nlohmann::json& with = t["finetune"];
  const nlohmann::json& without = t["finetune-nopfq"];
  const std::string bits = "W" + std::to_string(o.wbits) + "/A" + std::to_string(o.abits);
  const double gap = with["top1"].get<double>() - without["top1"].get<double>();
  std::string s = "## PfQ at " + bits + "\n\nBoth fine-tunes start from the same pretrained float model with the same schedule, seed and "
                  "quantizer; only PfQ differs. Top-1 without PfQ " + fmt_number("%.2f%%", without["top1"].get<double>()) + ", with PfQ " +
                  fmt_number("%.2f%%", with["top1"].get<double>()) + " (" + fmt_number("%+.2f", gap) + " points). ";
  const long long removed = t["pfq"]["removed_channels"].get<long long>();
  if (removed > 0)
    s += "PfQ removed " + std::to_string(removed) + " channels whose BN running variance is below eps, which shrinks the folded "
         "weight range of their layers (first figure) and so the " + std::to_string(o.wbits) + "-bit quantization step.\n\n";
  else
    s += "PfQ found no channel whose BN running variance is below eps (a short pretraining may leave none), so both runs "
         "fine-tuned the same model: equal numbers here are expected, not a finding.\n\n";
  s += "How much this moves: the float accuracy, the number of channels PfQ finds and the fine-tuned accuracies differ "
       "between seeds (`--seed`), thread counts and machines (float sums in another order); pfq's README, section "
       "\"How much the numbers vary\", lists measured spreads. A gap smaller than that spread is not a result.\n\n";
  if (std::filesystem::exists(o.out + "/compare_weight_range.svg"))
    s += "![weight range each fine-tune starts from](compare_weight_range.svg)\n\n";
  s += "![fine-tuning curves without and with PfQ](compare_curves.svg)\n\n";
  return s;
}

void write_comparison_figures(const WorkflowOptions& o) {
  const std::string range = compare_weight_range_svg(o.out + "/pfq/report.json", o.wbits);
  if (!range.empty()) io::write_file_atomic(o.out + "/compare_weight_range.svg", range);
  const std::string bits = "W" + std::to_string(o.wbits) + "/A" + std::to_string(o.abits);
  const std::string svg = curves_svg(bits + " fine-tune", {{"without PfQ", read_run_curves(stage_dir(o, "finetune-nopfq"))},
                                                          {"with PfQ", read_run_curves(stage_dir(o, "finetune"))}});
  io::write_file_atomic(o.out + "/compare_curves.svg", svg);
}

}  // namespace

void write_workflow_report(const WorkflowOptions& o, const nlohmann::json& t) {
  write_comparison_figures(o);
  const nlohmann::json& ic = t["intcheck"];
  const nlohmann::json& pfq = t["pfq"];
  char introw[512];
  if (ic.contains("error"))
    std::snprintf(introw, sizeof introw, "| W%d/A%d integer (int8, CPU) | - | | | | not converted: %s |\n", o.wbits, o.abits,
                  ic["error"].get<std::string>().substr(0, 300).c_str());
  else
    std::snprintf(introw, sizeof introw, "| W%d/A%d integer (int8, CPU) | %.2f | %lld | %lld | %.2f | predictions agree with the "
                  "fake-quantized model on %.2f%% of %lld images |\n", o.wbits, o.abits, ic["int_top1"].get<double>(),
                  pfq["params_after"].get<long long>(), pfq["macs_after"].get<long long>(), t["finetune"]["size_kib"].get<double>(),
                  ic["agreement"].get<double>(), ic["images"].get<long long>());
  // Imported weights: the architecture they were read as (the recipe's model/width are unused).
  const nlohmann::json& pre = t["pretrain"];
  const std::string model = pre.contains("arch") ? pre["arch"].get<std::string>() + " imported from " + pre["source"].get<std::string>() : o.model;
  const double width = pre.contains("width") ? pre["width"].get<double>() : o.width;
  char head[4096];
  std::snprintf(head, sizeof head,
                "# pfq workflow report\n\n%s (width %.2f) on %s, seed %llu.\n\n"
                "| stage | top-1 (%%) | parameters | multiply-adds | size_kib | notes |\n|---|---|---|---|---|---|\n"
                "| float, pretrained | %.2f | %lld | %lld | %.2f | |\n"
                "| float, after PfQ | %.2f | %lld | %lld | %.2f | %lld channels removed (%s, border %s) |\n"
                "| W%d/A%d fake-quantized, fine-tuned without PfQ | %.2f | %lld | %lld | %.2f | %s |\n"
                "| W%d/A%d fake-quantized, fine-tuned after PfQ | %.2f | %lld | %lld | %.2f | %s |\n",
                model.c_str(), width, o.dataset.c_str(), static_cast<unsigned long long>(o.seed),
                t["pretrain"]["top1"].get<double>(), pfq["params_before"].get<long long>(), pfq["macs_before"].get<long long>(),
                t["pretrain"]["size_kib"].get<double>(),
                pfq["top1_after"].get<double>(), pfq["params_after"].get<long long>(), pfq["macs_after"].get<long long>(),
                pfq["size_kib"].get<double>(), pfq["removed_channels"].get<long long>(), o.criterion.c_str(), o.border.c_str(),
                o.wbits, o.abits, t["finetune-nopfq"]["top1"].get<double>(), pfq["params_before"].get<long long>(),
                pfq["macs_before"].get<long long>(), t["finetune-nopfq"]["size_kib"].get<double>(),
                finetune_notes(t["finetune-nopfq"]).c_str(),
                o.wbits, o.abits, t["finetune"]["top1"].get<double>(), pfq["params_after"].get<long long>(), pfq["macs_after"].get<long long>(),
                t["finetune"]["size_kib"].get<double>(), finetune_notes(t["finetune"]).c_str());
  std::string md = std::string(head) + introw + onnx_row(o, ic) +
                   "\nsize_kib: bits of every stored tensor (quantized weights at their bit width; scales, biases, BN "
                   "statistics, activation ranges and float layers at 32 bits), in KiB.\n\n" +
                   comparison_text(o, t) +
                   "## Each stage\n\n"
                   "![training curves](pretrain/curves.svg)\n\n![weight range before/after PfQ](pfq/weight_range.svg)\n\n"
                   "![fine-tuning curves without PfQ](finetune-nopfq/curves.svg)\n\n"
                   "![fine-tuning curves after PfQ](finetune/curves.svg)\n";
  io::write_file_atomic(o.out + "/report.md", md);
}

}  // namespace pfq::app
