// workflow.cpp — stage runner and stages of `pfq workflow`.
#include "apps/workflow.h"

#include <cstdio>
#include <filesystem>
#include <cmath>
#include <fstream>

#include "apps/checkpoint.h"
#include "apps/finetune.h"
#include "apps/metrics.h"
#include "apps/plot/svg_plot.h"
#include "core/io/atomic_file.h"
#include "layers/summary.h"
#include "prune/pfq.h"

namespace pfq::app {

#define PFQ_WORKFLOW_FIELDS(X)                                                                                 \
  X(out) X(dataset) X(data_dir) X(model) X(width) X(seed) X(threads) X(workers) X(limit_train) X(limit_test) \
  X(quick) X(pretrain_epochs) X(pretrain_lr) X(weight_decay) X(batch_size) X(criterion) X(border) X(wbits)    \
  X(abits) X(finetune_epochs) X(finetune_lr)

void to_json(nlohmann::json& j, const WorkflowOptions& o) {
  j = nlohmann::json::object();
#define PFQ_TO(f) j[#f] = o.f;
  PFQ_WORKFLOW_FIELDS(PFQ_TO)
#undef PFQ_TO
}

void from_json(const nlohmann::json& j, WorkflowOptions& o) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool known = false;
#define PFQ_KNOWN(f) known = known || it.key() == #f;
    PFQ_WORKFLOW_FIELDS(PFQ_KNOWN)
#undef PFQ_KNOWN
    PFQ_CHECK(known, "workflow config: unknown key '", it.key(), "'");
  }
#define PFQ_FROM(f) \
  if (j.contains(#f)) j.at(#f).get_to(o.f);
  PFQ_WORKFLOW_FIELDS(PFQ_FROM)
#undef PFQ_FROM
}

void apply_quick(WorkflowOptions& o) {
  o.pretrain_epochs = std::min<int64_t>(o.pretrain_epochs, 2);
  o.finetune_epochs = std::min<int64_t>(o.finetune_epochs, 1);
  if (o.limit_train == 0) o.limit_train = 4096;
  if (o.limit_test == 0) o.limit_test = 1000;
}

namespace {

std::string stage_dir(const WorkflowOptions& o, const std::string& stage) { return o.out + "/" + stage; }

bool stage_done(const WorkflowOptions& o, const std::string& stage, nlohmann::json& result) {
  const std::string marker = stage_dir(o, stage) + "/done.json";
  if (!std::filesystem::exists(marker)) return false;
  std::ifstream in(marker);
  try {
    result = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    PFQ_FAIL("workflow: ", marker, " is not valid JSON (", e.what(), "); delete it to rerun stage ", stage);
  }
  std::fprintf(stderr, "workflow: stage %s already done (%s), skipping\n", stage.c_str(), marker.c_str());
  return true;
}

void mark_done(const WorkflowOptions& o, const std::string& stage, const nlohmann::json& result) {
  io::write_file_atomic(stage_dir(o, stage) + "/done.json", result.dump(2) + "\n");
}

// Loss and accuracy per epoch from a stage's metrics.jsonl, side by side, as <dir>/curves.svg.
void plot_curves(const std::string& dir, const std::string& title) {
  auto rows = MetricsLog(dir, "metrics").rows();
  if (rows.empty()) return;
  auto column = [&](const char* key) {
    std::vector<double> v;
    for (auto& r : rows) v.push_back(r.value(key, std::nan("")));
    return v;
  };
  std::vector<double> epochs = column("epoch");
  plot::Axes loss{title + ": loss", "epoch", "cross-entropy"};
  plot::Axes acc{title + ": accuracy", "epoch", "top-1 (%)"};
  std::string a = plot::line_chart_svg(loss, {{"train", epochs, column("train_loss"), "line+markers"},
                                              {"test", epochs, column("test_loss"), "line+markers"}});
  std::string b = plot::line_chart_svg(acc, {{"train", epochs, column("train_acc"), "line+markers"},
                                             {"test", epochs, column("test_top1"), "line+markers"}});
  io::write_file_atomic(dir + "/curves.svg", plot::grid_svg({a, b}, 2));
}

nlohmann::json run_pretrain(const WorkflowOptions& o) {
  nlohmann::json result;
  if (stage_done(o, "pretrain", result)) return result;
  std::fprintf(stderr, "workflow: stage pretrain (%s, %lld epochs)\n", o.model.c_str(), static_cast<long long>(o.pretrain_epochs));
  TrainOptions t;
  t.model = o.model;
  t.width = o.width;
  t.dataset = o.dataset;
  t.data_dir = o.data_dir;
  t.epochs = o.pretrain_epochs;
  t.batch_size = o.batch_size;
  t.lr = o.pretrain_lr;
  t.momentum = 0.9;
  t.nesterov = true;
  t.weight_decay = o.weight_decay;
  t.schedule = "cosine";
  t.seed = o.seed;
  t.threads = o.threads;
  t.workers = o.workers;
  t.limit_train = o.limit_train;
  t.limit_test = o.limit_test;
  t.out = stage_dir(o, "pretrain");
  t.resume = true;  // continues an interrupted pretrain stage, starts fresh otherwise
  TrainResult r = train(t);
  PFQ_CHECK(!r.interrupted, "workflow interrupted during pretrain; run the same command again to resume");
  plot_curves(t.out, "pretrain");
  result = {{"checkpoint", r.last_checkpoint}, {"curves", t.out + "/curves.svg"}, {"top1", r.final_eval.top1}, {"top5", r.final_eval.top5}, {"loss", r.final_eval.loss}};
  mark_done(o, "pretrain", result);
  return result;
}

// Stage 2 (pfq-method.md section 3): PfQ on the pretrained model. Evaluates the float model
// before and after, so the report shows the function is unchanged (exact border mode).
nlohmann::json run_pfq(const WorkflowOptions& o, const nlohmann::json& pretrain) {
  nlohmann::json result;
  if (stage_done(o, "pfq", result)) return result;
  std::fprintf(stderr, "workflow: stage pfq (criterion %s, border %s)\n", o.criterion.c_str(), o.border.c_str());
  std::filesystem::create_directories(stage_dir(o, "pfq"));
  Checkpoint ck = load_checkpoint(pretrain.at("checkpoint").get<std::string>());
  ModulePtr model = model_from_checkpoint(ck);
  model->eval();
  const Shape in = {1, ck.model.in_channels, ck.model.input_size, ck.model.input_size};
  const ModelSummary before = summarize(*model, in);
  prune::PfqOptions po;
  po.criterion = prune::parse_criterion(o.criterion);
  po.border = prune::parse_border(o.border);
  prune::PruneReport rep = prune::pfq_prune(*model, ck.model, po);
  const ModelSummary after = summarize(*model, in);
  auto loader = make_loader(o.dataset, o.data_dir, false, 256, o.workers, o.seed, o.limit_test);
  EvalResult ev = evaluate(*model, *loader);
  TrainState st = ck.train;
  const std::string path = stage_dir(o, "pfq") + "/model.safetensors";
  save_checkpoint(path, *model, rep.config, st, nullptr);
  io::write_file_atomic(stage_dir(o, "pfq") + "/report.json", rep.to_json().dump(2) + "\n");
  io::write_file_atomic(stage_dir(o, "pfq") + "/report.txt", rep.str());
  std::fprintf(stderr, "%s", rep.str().c_str());
  // The per-layer folded weight range before vs after PfQ (pfq-method.md section 2).
  std::vector<std::string> names;
  plot::Series wb{"before PfQ", {}, {}, "line+markers"}, wa{"after PfQ", {}, {}, "line+markers"};
  for (const auto& l : rep.layers) {
    names.push_back(l.name);
    wb.y.push_back(l.max_w_before);
    wa.y.push_back(l.max_w_after);
  }
  if (!names.empty()) {
    plot::Axes ax{"max |w'| of BN-folded weights per layer", "layer", "max |w'|"};
    ax.log_y = true;
    ax.xtick_labels = names;
    io::write_file_atomic(stage_dir(o, "pfq") + "/weight_range.svg", plot::line_chart_svg(ax, {wb, wa}, 960, 480));
  }
  result = {{"checkpoint", path},
            {"removed_channels", rep.removed_total},
            {"kept_constant", rep.kept_constant_total},
            {"params_before", before.total_params},
            {"params_after", after.total_params},
            {"macs_before", before.total_macs},
            {"macs_after", after.total_macs},
            {"top1_before", pretrain.at("top1")},
            {"top1_after", ev.top1}};
  mark_done(o, "pfq", result);
  return result;
}

// Stage 3 (pfq-method.md section 4.3): quantization-aware fine-tuning of the PfQ model with
// BN folded, W/A bits as configured (first conv and last linear at 8 bits).
nlohmann::json run_finetune(const WorkflowOptions& o, const nlohmann::json& pfq_stage) {
  nlohmann::json result;
  if (stage_done(o, "finetune", result)) return result;
  std::fprintf(stderr, "workflow: stage finetune (W%d/A%d, %lld epochs)\n", o.wbits, o.abits, static_cast<long long>(o.finetune_epochs));
  FinetuneOptions f;
  f.checkpoint = pfq_stage.at("checkpoint").get<std::string>();
  f.out = stage_dir(o, "finetune");
  f.qat.wbits = o.wbits;
  f.qat.abits = o.abits;
  f.epochs = o.finetune_epochs;
  f.lr = o.finetune_lr;
  f.weight_decay = o.weight_decay;
  f.batch_size = o.batch_size;
  f.dataset = o.dataset;
  f.data_dir = o.data_dir;
  f.limit_train = o.limit_train;
  f.limit_test = o.limit_test;
  f.seed = o.seed;
  f.threads = o.threads;
  f.workers = o.workers;
  FinetuneResult r = finetune(f);
  plot_curves(f.out, "quantized fine-tune");
  result = {{"checkpoint", r.checkpoint}, {"curves", f.out + "/curves.svg"}, {"top1", r.top1}, {"top5", r.top5},
            {"diverged", r.diverged}, {"epochs", r.epochs}, {"wbits", o.wbits}, {"abits", o.abits}};
  mark_done(o, "finetune", result);
  return result;
}

// The final table, as Markdown next to results.json.
void write_report(const WorkflowOptions& o, const nlohmann::json& t) {
  char buf[2048];
  std::snprintf(buf, sizeof buf,
                "# pfq workflow report\n\n%s %s (width %.2f) on %s, seed %llu.\n\n"
                "| stage | top-1 (%%) | parameters | multiply-adds | notes |\n|---|---|---|---|---|\n"
                "| float, pretrained | %.2f | %lld | %lld | |\n"
                "| float, after PfQ | %.2f | %lld | %lld | %lld channels removed (%s, border %s) |\n"
                "| W%d/A%d fake-quantized, fine-tuned | %.2f | %lld | %lld | %s |\n\n"
                "![training curves](pretrain/curves.svg)\n\n![weight range before/after PfQ](pfq/weight_range.svg)\n\n"
                "![fine-tuning curves](finetune/curves.svg)\n",
                o.model.c_str(), "", o.width, o.dataset.c_str(), static_cast<unsigned long long>(o.seed),
                t["pretrain"]["top1"].get<double>(), t["pfq"]["params_before"].get<long long>(), t["pfq"]["macs_before"].get<long long>(),
                t["pfq"]["top1_after"].get<double>(), t["pfq"]["params_after"].get<long long>(), t["pfq"]["macs_after"].get<long long>(),
                t["pfq"]["removed_channels"].get<long long>(), o.criterion.c_str(), o.border.c_str(), o.wbits, o.abits,
                t["finetune"]["top1"].get<double>(), t["pfq"]["params_after"].get<long long>(), t["pfq"]["macs_after"].get<long long>(),
                t["finetune"]["diverged"].get<bool>() ? "diverged" : "");
  io::write_file_atomic(o.out + "/report.md", buf);
}

}  // namespace

nlohmann::json run_workflow(const WorkflowOptions& o) {
  std::filesystem::create_directories(o.out);
  const std::string cfg_path = o.out + "/config.json";
  nlohmann::json cfg = o;
  if (std::filesystem::exists(cfg_path)) {
    std::ifstream in(cfg_path);
    nlohmann::json prev = nlohmann::json::parse(in, nullptr, false);
    PFQ_CHECK(!prev.is_discarded(), "workflow: ", cfg_path, " is not valid JSON");
    // Threads and loader workers change speed, not results: they may differ between runs.
    for (const char* k : {"threads", "workers"}) {
      prev.erase(k);
      cfg.erase(k);
    }
    PFQ_CHECK(prev == cfg, "workflow: ", o.out, " holds a run with a different configuration (", cfg_path,
              "); use another --out or delete the folder");
  } else {
    io::write_file_atomic(cfg_path, cfg.dump(2) + "\n");
  }
  nlohmann::json table = nlohmann::json::object();
  table["pretrain"] = run_pretrain(o);
  table["pfq"] = run_pfq(o, table["pretrain"]);
  table["finetune"] = run_finetune(o, table["pfq"]);
  write_report(o, table);
  io::write_file_atomic(o.out + "/results.json", table.dump(2) + "\n");
  return table;
}

}  // namespace pfq::app
