// pfq_plots.cpp — PfQ report charts (pfq_plots.h).
#include "apps/pfq_plots.h"

#include <algorithm>
#include <limits>

#include "apps/plot/svg_plot.h"
#include "core/error.h"

namespace pfq::app {

namespace {
constexpr const char* kDepthwiseColor = "#CC79A7";
const double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string tick(const std::string& name, const std::string& kind) { return kind == "depthwise" ? name + " [dw]" : name; }

// Markers at the depthwise layers' values of `y` (NaN elsewhere: nothing drawn).
plot::Series depthwise_marks(const std::string& label, const std::vector<std::string>& kinds, const std::vector<double>& y) {
  plot::Series s{label, {}, {}, "markers", kDepthwiseColor};
  for (size_t i = 0; i < y.size(); ++i) s.y.push_back(kinds[i] == "depthwise" ? y[i] : kNaN);
  return s;
}

int chart_width(size_t layers) { return static_cast<int>(std::max<size_t>(720, std::min<size_t>(1600, 180 + 24 * layers))); }
}  // namespace

std::string weight_range_svg(const prune::PruneReport& report) {
  PFQ_CHECK(!report.layers.empty(), "weight_range_svg: the report has no layers");
  plot::Axes ax{"max |w'| of BN-folded weights per layer", "layer", "max |w'|"};
  ax.log_y = true;
  plot::Series before{"before PfQ", {}, {}, "line+markers", ""}, after{"after PfQ", {}, {}, "line+markers", ""};
  std::vector<std::string> kinds;
  for (const auto& l : report.layers) {
    ax.xtick_labels.push_back(tick(l.name, l.kind));
    kinds.push_back(l.kind);
    before.y.push_back(l.max_w_before);
    after.y.push_back(l.max_w_after);
  }
  std::vector<plot::Series> series{before, after, depthwise_marks("depthwise layer", kinds, before.y),
                                   depthwise_marks("", kinds, after.y)};
  return plot::line_chart_svg(ax, series, chart_width(report.layers.size()), 480);
}

std::string bn_variance_svg(const prune::ModelAnalysis& a) {
  PFQ_CHECK(!a.layers.empty(), "bn_variance_svg: the analysis has no layers");
  plot::Axes ax{"BN running variance per layer", "layer", "running_var"};
  ax.log_y = true;
  plot::Series mn{"min", {}, {}, "line+markers", ""}, med{"median", {}, {}, "line+markers", ""}, mx{"max", {}, {}, "line+markers", ""},
      eps{"BN eps", {}, {}, "line", "#000000"};
  std::vector<std::string> kinds;
  for (const auto& l : a.layers) {
    ax.xtick_labels.push_back(tick(l.name, l.kind));
    kinds.push_back(l.kind);
    mn.y.push_back(l.var_min);
    med.y.push_back(l.var_median);
    mx.y.push_back(l.var_max);
    eps.y.push_back(l.eps);
  }
  return plot::line_chart_svg(ax, {mn, med, mx, eps, depthwise_marks("depthwise layer", kinds, mn.y)},
                              chart_width(a.layers.size()), 480);
}

}  // namespace pfq::app
