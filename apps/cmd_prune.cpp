// cmd_prune.cpp — `pfq prune`: PfQ (or an L1 / BN-gamma baseline at matched size) on a
// checkpoint. Prints the per-layer table, float accuracy, parameters and multiply-adds before
// -> after and the max output change on a test batch; writes the pruned checkpoint (training
// state copied, optimizer state dropped) and a JSON report next to it. Leaves out: fine-tuning.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "apps/checkpoint.h"
#include "apps/commands.h"
#include "apps/model_loading.h"
#include "apps/trainer.h"
#include "core/io/atomic_file.h"
#include "layers/summary.h"
#include "prune/baselines.h"
#include "prune/pfq.h"

namespace pfq::app {

namespace {

struct PruneOpts : DataOptions {  // the test split of the data group only
  std::string checkpoint, out, method = "pfq", criterion = "var-below-eps", border = "exact";
  int64_t target = 0;
  bool no_eval = false, json = false;
};

void to_json(nlohmann::json& j, const PruneOpts& o) {
  j = {{"checkpoint", o.checkpoint}, {"out", o.out},         {"method", o.method},        {"criterion", o.criterion},
       {"border", o.border},         {"target", o.target},   {"dataset", o.dataset},      {"data_dir", o.data_dir},
       {"limit_test", o.limit_test}, {"workers", o.workers}, {"no_eval", o.no_eval}};
}

// "runs/x/pruned.safetensors" -> "runs/x/pruned.prune.json"
std::string report_path(const std::string& out) {
  std::filesystem::path p(out);
  p.replace_extension(".prune.json");
  return p.string();
}

prune::PruneReport run_method(Module& model, const Checkpoint& ck, const PruneOpts& o, int64_t target) {
  if (o.method == "pfq") {
    prune::PfqOptions po;
    po.criterion = prune::parse_criterion(o.criterion);
    po.border = prune::parse_border(o.border);
    return prune::pfq_prune(model, ck.model, po);
  }
  return prune::baseline_prune(model, ck.model, {prune::parse_baseline(o.method), target});
}

void run_prune(const PruneOpts& o) {
  std::fprintf(stderr, "pfq prune: %s\n", nlohmann::json(o).dump().c_str());
  // Validate the spellings before any work.
  prune::parse_criterion(o.criterion);
  prune::parse_border(o.border);
  Checkpoint ck = load_checkpoint(o.checkpoint);
  ModulePtr before = model_from_checkpoint(ck);
  ModulePtr model = model_from_checkpoint(ck);
  int64_t target = o.target;
  if (o.method != "pfq" && target == 0) {  // matched size: what PfQ removes from this model
    ModulePtr scratch = model_from_checkpoint(ck);
    PruneOpts p = o;
    p.method = "pfq";
    target = run_method(*scratch, ck, p, 0).removed_total;
    std::fprintf(stderr, "pfq prune: --target not given: matching PfQ (%s), %lld channels\n", o.criterion.c_str(),
                 static_cast<long long>(target));
  }
  prune::PruneReport report = run_method(*model, ck, o, target);

  const Shape in_shape{1, ck.model.in_channels, ck.model.input_size, ck.model.input_size};
  const ModelSummary s0 = summarize(*before, in_shape), s1 = summarize(*model, in_shape);
  nlohmann::json j = report.to_json();
  j["checkpoint"] = o.checkpoint;
  j["out"] = o.out;
  j["params_before"] = s0.total_params;
  j["params_after"] = s1.total_params;
  j["macs_before"] = s0.total_macs;
  j["macs_after"] = s1.total_macs;

  double change = 0;
  if (!o.no_eval) {
    auto loader = make_test_loader(o, 0);
    check_checkpoint_fits(ck, "checkpoint " + o.checkpoint, *loader, o.dataset, " (or pass --no-eval)");
    loader->start_epoch(0);
    auto batch = loader->next();
    PFQ_CHECK(batch.has_value(), "pfq prune: the test split of ", o.dataset, " is empty");
    change = prune::max_output_change(*before, *model, batch->images);
    const EvalResult e0 = evaluate(*before, *loader, !o.json, "before"), e1 = evaluate(*model, *loader, !o.json, "after");
    j["accuracy"] = {{"dataset", o.dataset}, {"images", e0.images}, {"top1_before", e0.top1}, {"top1_after", e1.top1},
                     {"loss_before", e0.loss}, {"loss_after", e1.loss}};
    j["output_change_input"] = "first test batch";
  } else {
    Generator g(0);
    change = prune::max_output_change(*before, *model, Tensor::randn({8, in_shape[1], in_shape[2], in_shape[3]}, g));
    j["output_change_input"] = "8 random N(0, 1) inputs";
  }
  j["max_output_change"] = change;

  TrainState st = ck.train;
  st.extra["pruned_from"] = o.checkpoint;
  st.extra["prune"] = {{"method", report.method}, {"removed_total", report.removed_total}, {"criterion", report.criterion},
                       {"border", report.border}, {"target", report.target}};
  save_checkpoint(o.out, *model, report.config, st, nullptr);
  io::write_file_atomic(report_path(o.out), j.dump(2) + "\n");

  if (o.json) {
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::printf("%s", report.str().c_str());
  std::printf("parameters %lld -> %lld, multiply-adds %lld -> %lld (input %s)\n", static_cast<long long>(s0.total_params),
              static_cast<long long>(s1.total_params), static_cast<long long>(s0.total_macs), static_cast<long long>(s1.total_macs),
              shape_str(in_shape).c_str());
  if (j.contains("accuracy"))
    std::printf("float top1 on %s (%lld images): %.2f%% -> %.2f%%\n", o.dataset.c_str(),
                static_cast<long long>(j["accuracy"]["images"].get<int64_t>()), j["accuracy"]["top1_before"].get<double>(),
                j["accuracy"]["top1_after"].get<double>());
  std::printf("max output change (%s): %.3g\n", j["output_change_input"].get<std::string>().c_str(), change);
  if (report.method != "pfq" && report.removed_total != target)
    std::printf("note: removed %lld of the %lld channels asked for (no smaller candidate fitted)\n",
                static_cast<long long>(report.removed_total), static_cast<long long>(target));
  std::printf("wrote %s and %s\n", o.out.c_str(), report_path(o.out).c_str());
}

}  // namespace

void add_prune_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("prune", "PfQ: remove constant filters without changing the function (or a baseline pruner)");
  auto o = std::make_shared<PruneOpts>();
  cmd->add_option("checkpoint", o->checkpoint, "a .safetensors checkpoint written by pfq")->required()->check(CLI::ExistingFile);
  cmd->add_option("--out", o->out, "pruned checkpoint to write (a .prune.json report goes next to it)")->required();
  cmd->add_option("--method", o->method, "pfq | l1 | bn-gamma")->check(CLI::IsMember({"pfq", "l1", "bn-gamma"}))->capture_default_str();
  cmd->add_option("--criterion", o->criterion, "PfQ: var-below-eps | var-zero | var-below=<t>")->capture_default_str();
  cmd->add_option("--border", o->border, "PfQ: exact | bias | keep")->check(CLI::IsMember({"exact", "bias", "keep"}))->capture_default_str();
  cmd->add_option("--target", o->target, "baselines: channels to remove (0 = as many as PfQ removes)")->check(CLI::NonNegativeNumber);
  add_data_flags(cmd, *o, {.dataset = "evaluation dataset", .limit_train = nullptr, .limit_test = "evaluate only the first N test images",
                           .batch_size = nullptr, .workers_default = false});
  cmd->add_flag("--no-eval", o->no_eval, "skip the accuracy evaluation (output change measured on random inputs)");
  cmd->add_flag("--json", o->json, "print the JSON report instead of the table");
  cmd->callback([o] { run_prune(*o); });
}

}  // namespace pfq::app
