// reproduce_report.cpp — the report of `pfq reproduce` (apps/reproduce.h): reads every run's
// done.json, aggregates top-1 over seeds per (bits, quantizer, pruning), compares PfQ with no
// pruning at the same bits and quantizer, and writes report.md, results.csv, results.json and
// curves/<bits>.svg (fine-tuning loss and test top-1 per epoch, one series per pruning method).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "apps/metrics.h"
#include "apps/plot/svg_plot.h"
#include "apps/reproduce.h"
#include "core/io/atomic_file.h"

namespace pfq::app {

namespace {

nlohmann::json read_done(const std::string& path) {
  if (!std::filesystem::exists(path)) return nullptr;
  std::ifstream in(path);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  PFQ_CHECK(!j.is_discarded(), "reproduce report: ", path, " is not valid JSON; delete it to redo that stage");
  return j;
}

std::string fmt(const char* f, double v) {
  if (!std::isfinite(v)) return "";
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

nlohmann::json num_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

struct Group {
  std::string bits, quantizer, pruning;
  std::vector<nlohmann::json> done;
  std::vector<std::string> missing;
  double mean = NAN, min = NAN, max = NAN, std = NAN, top5 = NAN, size_kib = NAN, params = NAN, macs = NAN, removed = NAN;
  int64_t diverged = 0;
};

double mean_of(const std::vector<nlohmann::json>& v, const char* key) {
  double s = 0;
  for (const auto& j : v) s += j.at(key).get<double>();
  return v.empty() ? NAN : s / static_cast<double>(v.size());
}

void aggregate(Group& g) {
  if (g.done.empty()) return;
  std::vector<double> t;
  for (const auto& j : g.done) t.push_back(j.at("top1").get<double>());
  g.mean = mean_of(g.done, "top1");
  g.min = *std::min_element(t.begin(), t.end());
  g.max = *std::max_element(t.begin(), t.end());
  double ss = 0;
  for (double x : t) ss += (x - g.mean) * (x - g.mean);
  g.std = t.size() > 1 ? std::sqrt(ss / static_cast<double>(t.size() - 1)) : 0.0;  // sample standard deviation
  g.top5 = mean_of(g.done, "top5");
  g.size_kib = mean_of(g.done, "size_kib");  // equal over seeds unless pretrained per seed
  g.params = mean_of(g.done, "params");
  g.macs = mean_of(g.done, "macs");
  g.removed = mean_of(g.done, "removed_channels");
  for (const auto& j : g.done) g.diverged += j.at("diverged").get<bool>();
}

// Loss and test top-1 per epoch of the first seed's runs at `bits`: a row of two panels per
// quantizer, one series per pruning method.
void plot_bits_curves(const ReproduceOptions& o, const std::string& bits, const std::string& path) {
  std::vector<std::string> panels;
  for (const auto& q : o.quantizers) {
    std::vector<plot::Series> loss, acc;
    for (const auto& p : o.pruning) {
      const std::string id = bits_tag(bits) + "-" + q + "-" + p + "-s" + std::to_string(o.seeds.front());
      const std::string dir = o.out + "/runs/" + id;
      if (!std::filesystem::exists(dir + "/done.json")) continue;
      plot::Series l{p, {}, {}, "line+markers", ""}, a{p, {}, {}, "line+markers", ""};
      for (const auto& r : MetricsLog(dir, "metrics").rows()) {
        l.x.push_back(MetricsLog::number(r, "epoch"));
        l.y.push_back(MetricsLog::number(r, "train_loss"));
        a.x.push_back(MetricsLog::number(r, "epoch"));
        a.y.push_back(MetricsLog::number(r, "test_top1"));
      }
      loss.push_back(l);
      acc.push_back(a);
    }
    if (loss.empty()) continue;
    const std::string t = "W/A " + bits + " " + q;
    plot::Axes la, aa;
    la.title = t + ": fine-tuning loss";
    la.xlabel = aa.xlabel = "epoch";
    la.ylabel = "cross-entropy";
    aa.title = t + ": test top-1";
    aa.ylabel = "top-1 (%)";
    panels.push_back(plot::line_chart_svg(la, loss, 560, 340));
    panels.push_back(plot::line_chart_svg(aa, acc, 560, 340));
  }
  if (!panels.empty()) io::write_file_atomic(path, plot::grid_svg(panels, 2));
}

}  // namespace

nlohmann::json write_reproduce_report(const ReproduceOptions& o) {
  const std::vector<ReproduceRun> runs = plan_runs(o);
  std::vector<Group> groups;
  std::map<std::string, size_t> index;
  nlohmann::json per_run = nlohmann::json::array();
  for (const auto& r : runs) {
    const std::string key = r.bits + "|" + r.quantizer + "|" + r.pruning;
    if (!index.count(key)) {
      index[key] = groups.size();
      Group g;
      g.bits = r.bits;
      g.quantizer = r.quantizer;
      g.pruning = r.pruning;
      groups.push_back(g);
    }
    Group& g = groups[index[key]];
    nlohmann::json d = read_done(o.out + "/runs/" + r.id + "/done.json");
    if (d.is_null()) {
      g.missing.push_back(r.id);
      per_run.push_back({{"id", r.id}, {"missing", true}});
    } else {
      g.done.push_back(d);
      per_run.push_back(d);
    }
  }
  for (auto& g : groups) aggregate(g);

  // Float models: pretrained and after each pruning, per pretraining root.
  const std::vector<uint64_t> roots = o.pretrain_per_seed ? o.seeds : std::vector<uint64_t>{o.seeds.front()};
  nlohmann::json floats = nlohmann::json::array();
  std::string float_md;
  for (uint64_t s : roots) {
    const std::string rel = o.pretrain_per_seed ? "seed" + std::to_string(s) + "/" : "";
    for (const auto& p : o.pruning) {
      nlohmann::json d = read_done(o.out + "/" + rel + p + "/done.json");
      if (d.is_null()) continue;
      floats.push_back({{"pretrain_seed", s}, {"pruning", p}, {"top1_before", d.at("top1_before")}, {"top1_after", d.at("top1_after")},
                        {"removed_channels", d.at("removed_channels")}, {"params", d.at("params_after")}, {"macs", d.at("macs_after")}});
      float_md += "| " + std::to_string(s) + " | " + p + " | " + fmt("%.2f", d.at("top1_before").get<double>()) + " | " +
                  fmt("%.2f", d.at("top1_after").get<double>()) + " | " + std::to_string(d.at("removed_channels").get<int64_t>()) +
                  " | " + std::to_string(d.at("params_after").get<int64_t>()) + " | " + std::to_string(d.at("macs_after").get<int64_t>()) + " |\n";
    }
  }

  nlohmann::json rows = nlohmann::json::array();
  std::string csv = "bits,wbits,abits,quantizer,pruning,seeds,missing,top1_mean,top1_min,top1_max,top1_std,top5_mean,diverged,size_kib,params,macs,filters_removed\n";
  std::string table = "| W/A | quantizer | pruning | top-1 mean (%) | min - max | std | seeds | size (KiB) | parameters | multiply-adds | filters removed | notes |\n"
                      "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& g : groups) {
    const auto [wb, ab] = parse_bits(g.bits);
    rows.push_back({{"bits", g.bits}, {"wbits", wb}, {"abits", ab}, {"quantizer", g.quantizer}, {"pruning", g.pruning},
                    {"seeds", g.done.size()}, {"missing", g.missing}, {"top1_mean", num_or_null(g.mean)}, {"top1_min", num_or_null(g.min)},
                    {"top1_max", num_or_null(g.max)}, {"top1_std", num_or_null(g.std)}, {"top5_mean", num_or_null(g.top5)},
                    {"diverged", g.diverged}, {"size_kib", num_or_null(g.size_kib)}, {"params", num_or_null(g.params)},
                    {"macs", num_or_null(g.macs)}, {"filters_removed", num_or_null(g.removed)}});
    csv += g.bits + "," + std::to_string(wb) + "," + std::to_string(ab) + "," + g.quantizer + "," + g.pruning + "," +
           std::to_string(g.done.size()) + "," + std::to_string(g.missing.size()) + "," + fmt("%.4f", g.mean) + "," + fmt("%.4f", g.min) +
           "," + fmt("%.4f", g.max) + "," + fmt("%.4f", g.std) + "," + fmt("%.4f", g.top5) + "," + std::to_string(g.diverged) + "," +
           fmt("%.3f", g.size_kib) + "," + fmt("%.0f", g.params) + "," + fmt("%.0f", g.macs) + "," + fmt("%.0f", g.removed) + "\n";
    std::string notes;
    if (g.diverged) notes += std::to_string(g.diverged) + " diverged";
    if (!g.missing.empty()) notes += (notes.empty() ? "" : "; ") + std::to_string(g.missing.size()) + " missing";
    table += "| " + g.bits + " | " + g.quantizer + " | " + g.pruning + " | " + fmt("%.2f", g.mean) + " | " +
             (g.done.empty() ? "" : fmt("%.2f", g.min) + " - " + fmt("%.2f", g.max)) + " | " + fmt("%.2f", g.std) + " | " +
             std::to_string(g.done.size()) + " | " + fmt("%.1f", g.size_kib) + " | " + fmt("%.0f", g.params) + " | " +
             fmt("%.0f", g.macs) + " | " + fmt("%.0f", g.removed) + " | " + notes + " |\n";
  }

  // The claim (docs/method.md 5): PfQ (B) beats no pruning (A) at low bits with equal or smaller size.
  nlohmann::json claims = nlohmann::json::array();
  std::string claim_md;
  for (const auto& a : groups) {
    if (a.pruning != "none" || a.done.empty()) continue;
    const std::string key = a.bits + "|" + a.quantizer + "|pfq";
    if (!index.count(key) || groups[index.at(key)].done.empty()) continue;
    const Group& b = groups[index.at(key)];
    const double delta = b.mean - a.mean;
    const bool smaller = b.size_kib <= a.size_kib + 1e-9;
    const char* verdict = delta > 0 && smaller ? "PfQ better, not larger" : delta > 0 ? "PfQ better but larger" : "PfQ not better";
    claims.push_back({{"bits", a.bits}, {"quantizer", a.quantizer}, {"top1_without", a.mean}, {"top1_with", b.mean},
                      {"delta", delta}, {"size_kib_without", a.size_kib}, {"size_kib_with", b.size_kib}, {"verdict", verdict}});
    claim_md += "| " + a.bits + " | " + a.quantizer + " | " + fmt("%.2f", a.mean) + " | " + fmt("%.2f", b.mean) + " | " +
                fmt("%+.2f", delta) + " | " + fmt("%.1f", a.size_kib) + " -> " + fmt("%.1f", b.size_kib) + " | " + verdict + " |\n";
  }

  std::filesystem::create_directories(o.out + "/curves");
  std::string figures;
  const std::string rel0 = o.pretrain_per_seed ? "seed" + std::to_string(o.seeds.front()) + "/" : "";
  if (o.pretrained.empty() && std::filesystem::exists(o.out + "/" + rel0 + "pretrain/curves.svg"))
    figures += "Pretraining curves: ![pretraining](" + rel0 + "pretrain/curves.svg)\n\n";
  if (std::filesystem::exists(o.out + "/" + rel0 + "pfq/weight_range.svg"))
    figures += "Per-layer range of the BN-folded weights before and after PfQ (" + rel0 + "pfq/report.txt has the table):\n\n![weight range](" +
               rel0 + "pfq/weight_range.svg)\n\n";
  for (const auto& b : o.bits) {
    const std::string file = "curves/" + bits_tag(b) + ".svg";
    plot_bits_curves(o, b, o.out + "/" + file);
    if (std::filesystem::exists(o.out + "/" + file))
      figures += "Fine-tuning at W/A " + b + " (seed " + std::to_string(o.seeds.front()) + "), without vs with PfQ: ![" + b + "](" + file + ")\n\n";
  }

  std::string seeds;
  for (uint64_t s : o.seeds) seeds += (seeds.empty() ? "" : ", ") + std::to_string(s);
  // Imported weights: the architecture they were read as (stage pretrain's done.json), not the
  // (unused) model flags.
  std::string model = o.model;
  double width = o.width;
  if (const std::string pre = o.out + "/" + rel0 + "pretrain/done.json"; !o.pretrained.empty() && std::filesystem::exists(pre)) {
    const nlohmann::json d = read_done(pre);
    if (d.contains("arch")) model = d["arch"].get<std::string>(), width = d["width"].get<double>();
  }
  char head[4096];
  std::snprintf(head, sizeof head,
                "# pfq reproduce report\n\n%s (width %.2f) on %s%s. Pretrained %s; fine-tuning seeds %s. Schedule: pretrain %lld "
                "epochs (lr %g), QAT fine-tune %lld epochs (lr %g, stages %s), weight decay %g, batch %lld; training images %s, "
                "test images %s. PfQ criterion %s, border %s; first conv and last linear at %d bits.\n\n",
                model.c_str(), width, o.dataset.c_str(), o.quick ? " (--quick: a smoke run, not a result)" : "",
                o.pretrained.empty() ? (o.pretrain_per_seed ? "once per seed" : "once") : ("from " + o.pretrained).c_str(),
                seeds.c_str(), static_cast<long long>(o.pretrain_epochs), o.pretrain_lr, static_cast<long long>(o.finetune_epochs),
                o.finetune_lr, o.stages.c_str(), o.weight_decay, static_cast<long long>(o.batch_size),
                o.limit_train ? std::to_string(o.limit_train).c_str() : "all", o.limit_test ? std::to_string(o.limit_test).c_str() : "all",
                o.criterion.c_str(), o.border.c_str(), o.first_last_bits);
  std::string md = head;
  md += "Top-1 of the fake-quantized model after fine-tuning, over seeds (std: sample standard deviation). Size (quant/model_size.h): "
        "weights at their bit width; scales, biases (BN folded), activation ranges and PfQ correction maps at 32 bits. Quantizers: minmax = per-layer "
        "weights and EMA activations (the paper's setting), per-channel = per-output-channel weights, pact = PACT activations, "
        "lsq = LSQ weights and activations. l1 / bn-gamma remove as many filters as PfQ.\n\n" +
        table + "\n";
  if (!claim_md.empty())
    md += "## PfQ vs no pruning (docs/method.md section 5)\n\n| W/A | quantizer | top-1 without | top-1 with PfQ | change | size (KiB) | verdict |\n"
          "|---|---|---|---|---|---|---|\n" + claim_md + "\n";
  for (const auto& f : floats)
    if (f.at("pruning") == "pfq" && f.at("removed_channels").get<int64_t>() == 0)
      md += "Note: PfQ found no constant filters in the model of pretraining seed " + std::to_string(f.at("pretrain_seed").get<uint64_t>()) +
            ", so its pfq, l1 and bn-gamma runs fine-tune the unpruned model (they differ from none only by chance).\n\n";
  if (!float_md.empty())
    md += "## Float models\n\n| pretraining seed | pruning | top-1 before (%) | top-1 after (%) | filters removed | parameters | multiply-adds |\n"
          "|---|---|---|---|---|---|---|\n" + float_md + "\n";
  if (!figures.empty()) md += "## Figures\n\n" + figures;
  md += "Tables as CSV: results.csv; everything as JSON: results.json; each run's folder: runs/<id>/ (metrics, curves.svg, done.json).\n";

  nlohmann::json j = {{"config", o}, {"rows", rows}, {"pfq_vs_none", claims}, {"float", floats}, {"runs", per_run}};
  io::write_file_atomic(o.out + "/report.md", md);
  io::write_file_atomic(o.out + "/results.csv", csv);
  io::write_file_atomic(o.out + "/results.json", j.dump(2) + "\n");
  return j;
}

}  // namespace pfq::app
