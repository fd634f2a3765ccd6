// inspect_checkpoint.h — `pfq inspect` as a library function (apps/): a checkpoint's (or plain
// state dict's) architecture and layer summary, model size, and the PfQ analysis before and
// after an in-memory PfQ pass (prune/analysis.h) with optional SVG charts; and the GPUs this
// build can use. The command (apps/cmd_inspect.cpp) prints what these return.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "apps/plain_weights.h"

namespace pfq::app {

struct InspectOptions {
  std::string checkpoint;
  bool devices = false, json = false, no_analysis = false;
  int bits = 4;
  double var_threshold = -1;
  std::string criterion = "var-below-eps", border = "exact";
  std::string plot, plot_dir;
  WeightsOptions weights;  // plain weights' architecture (default: recognised)
};

struct InspectResult {
  nlohmann::json json;  // what --json prints
  std::string text;     // what the command prints otherwise
};
InspectResult inspect_checkpoint(const InspectOptions& o);

// One line per CUDA GPU this build can use, or why there is none.
std::string describe_devices();

}  // namespace pfq::app
