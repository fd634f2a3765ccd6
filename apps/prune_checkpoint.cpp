// prune_checkpoint.cpp — `pfq prune`'s work (apps/prune_checkpoint.h): the pruners are
// prune/'s, the evaluation apps/epoch_loop.h's.
#include "apps/prune_checkpoint.h"

#include <cstdio>
#include <filesystem>

#include "apps/checkpoint.h"
#include "apps/epoch_loop.h"
#include "apps/model_loading.h"
#include "core/io/atomic_file.h"
#include "prune/baselines.h"
#include "prune/pfq.h"

namespace pfq::app {

void to_json(nlohmann::json& j, const PruneOptions& o) {
  j = {{"checkpoint", o.checkpoint}, {"out", o.out},         {"method", o.method},        {"criterion", o.criterion},
       {"border", o.border},         {"target", o.target},   {"dataset", o.dataset},      {"data_dir", o.data_dir},
       {"limit_test", o.limit_test}, {"workers", o.workers}, {"no_eval", o.no_eval}};
  if (o.weights.any()) j["weights"] = o.weights;
}

std::string prune_report_path(const std::string& out) {
  std::filesystem::path p(out);
  p.replace_extension(".prune.json");
  return p.string();
}

namespace {

prune::PruneReport run_method(Module& model, const Checkpoint& ck, const PruneOptions& o, int64_t target) {
  if (o.method == "pfq") {
    prune::PfqOptions po;
    po.criterion = prune::parse_criterion(o.criterion);
    po.border = prune::parse_border(o.border);
    return prune::pfq_prune(model, ck.model, po);
  }
  return prune::baseline_prune(model, ck.model, {prune::parse_baseline(o.method), target});
}

}  // namespace

PruneOutcome prune_checkpoint(const PruneOptions& o) {
  // Validate the spellings before any work.
  prune::parse_criterion(o.criterion);
  prune::parse_border(o.border);
  Checkpoint ck = load_checkpoint_for_data(o.checkpoint, o.weights, o);
  ModulePtr before = model_from_checkpoint(ck);
  ModulePtr model = model_from_checkpoint(ck);
  int64_t target = o.target;
  if (o.method != "pfq" && target == 0) {  // matched size: what PfQ removes from this model
    ModulePtr scratch = model_from_checkpoint(ck);
    PruneOptions p = o;
    p.method = "pfq";
    target = run_method(*scratch, ck, p, 0).removed_total;
    std::fprintf(stderr, "pfq prune: --target not given: matching PfQ (%s), %lld channels\n", o.criterion.c_str(),
                 static_cast<long long>(target));
  }
  PruneOutcome r;
  r.target = target;
  prune::PruneReport& report = r.report;
  report = run_method(*model, ck, o, target);

  const Shape in_shape{1, ck.model.in_channels, ck.model.input_size, ck.model.input_size};
  r.input = in_shape;
  r.before = summarize(*before, in_shape);
  r.after = summarize(*model, in_shape);
  const ModelSummary &s0 = r.before, &s1 = r.after;
  nlohmann::json& j = r.json;
  j = report.to_json();
  j["checkpoint"] = o.checkpoint;
  j["out"] = o.out;
  j["params_before"] = s0.total_params;
  j["params_after"] = s1.total_params;
  j["macs_before"] = s0.total_macs;
  j["macs_after"] = s1.total_macs;

  double& change = r.change;
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
  r.report_path = prune_report_path(o.out);
  io::write_file_atomic(r.report_path, j.dump(2) + "\n");
  return r;
}

}  // namespace pfq::app
