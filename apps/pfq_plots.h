// pfq_plots.h — the PfQ report charts shared by `pfq inspect` and `pfq workflow` (apps/): the
// per-layer BN-folded weight range before vs after a PfQ pass and the BN running-variance
// spread per layer, as SVG (apps/plot), depthwise layers highlighted. Leaves out activation
// ranges and per-channel views.
#pragma once
#include <string>

#include "prune/analysis.h"
#include "prune/report.h"

namespace pfq::app {

// max |w'| per layer (log y), "before" and "after" the pass in `report`, one point per layer in
// forward order; depthwise layers carry an extra marker and a "[dw]" tick label.
// requires: report.layers not empty.
std::string weight_range_svg(const prune::PruneReport& report);

// running_var min / median / max per layer (log y; zeros are counted in a note) and each
// layer's BN eps, depthwise layers marked as above. requires: a.layers not empty.
std::string bn_variance_svg(const prune::ModelAnalysis& a);

}  // namespace pfq::app
