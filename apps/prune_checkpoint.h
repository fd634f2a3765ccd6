// prune_checkpoint.h — `pfq prune` as a library function (apps/): PfQ or an L1 / BN-gamma
// baseline (at PfQ's channel count unless a target is given) on a checkpoint, parameters,
// multiply-adds, float accuracy and the largest output change before -> after, the pruned
// checkpoint (training state copied, optimizer state dropped) and its JSON report written.
// Printing the results is apps/cmd_prune.cpp's. Left out: fine-tuning.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "apps/plain_weights.h"
#include "apps/run_options.h"
#include "layers/summary.h"
#include "prune/report.h"

namespace pfq::app {

// The test split of the data group only (limit_test, workers).
struct PruneOptions : DataOptions {
  std::string checkpoint, out, method = "pfq", criterion = "var-below-eps", border = "exact";
  int64_t target = 0;  // baselines: channels to remove (0 = as many as PfQ removes)
  bool no_eval = false;
  bool json = false;  // the report is printed as JSON: no progress bars
  WeightsOptions weights;  // plain weights' architecture (apps/plain_weights.h)
};
void to_json(nlohmann::json& j, const PruneOptions& o);  // the echo of `pfq prune`: its flags

struct PruneOutcome {
  prune::PruneReport report;
  nlohmann::json json;  // the .prune.json report
  ModelSummary before, after;
  Shape input;
  int64_t target = 0;  // channels asked for (PfQ's count when not given)
  double change = 0;   // largest |output difference| before -> after
  std::string report_path;
};

// "runs/x/pruned.safetensors" -> "runs/x/pruned.prune.json"
std::string prune_report_path(const std::string& out);

PruneOutcome prune_checkpoint(const PruneOptions& o);

}  // namespace pfq::app
