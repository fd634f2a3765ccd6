// curves.cpp — training curves of run folders (curves.h).
#include "apps/curves.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "apps/metrics.h"
#include "apps/plot/svg_plot.h"
#include "core/error.h"
#include "core/io/atomic_file.h"

namespace pfq::app {

RunCurves read_run_curves(const std::string& dir) {
  RunCurves c;
  for (const auto& r : MetricsLog(dir, "metrics").rows()) {  // null (diverged) -> NaN -> a gap
    c.epoch_x.push_back(MetricsLog::number(r, "epoch"));
    c.train_loss.push_back(MetricsLog::number(r, "train_loss"));
    c.train_acc.push_back(MetricsLog::number(r, "train_acc"));
    c.test_loss.push_back(MetricsLog::number(r, "test_loss"));
    c.test_top1.push_back(MetricsLog::number(r, "test_top1"));
  }
  for (const auto& r : MetricsLog(dir, "steps").rows()) {
    c.step_x.push_back(MetricsLog::number(r, "epoch"));
    c.step_loss.push_back(MetricsLog::number(r, "loss"));
    c.step_acc.push_back(MetricsLog::number(r, "acc"));
  }
  return c;
}

double smoothing_window(size_t n) { return std::clamp(static_cast<double>(n) / 20.0, 1.0, 50.0); }

std::vector<double> smooth(const std::vector<double>& y, double window) {
  if (window <= 1) return y;
  const double keep = 1.0 - 1.0 / window;
  std::vector<double> out(y.size());
  double sum = 0, weight = 0;  // sum of keep^k * y and of keep^k over the finite points so far
  for (size_t i = 0; i < y.size(); ++i) {
    if (!std::isfinite(y[i])) {
      out[i] = std::nan("");
      continue;
    }
    sum = keep * sum + y[i];
    weight = keep * weight + 1.0;
    out[i] = sum / weight;
  }
  return out;
}

namespace {

// Okabe-Ito, as apps/plot's default palette: one colour per run when several are overlaid.
const char* const kRunColors[] = {"#D55E00", "#0072B2", "#009E73", "#E69F00", "#CC79A7", "#56B4E9"};

// A run's training series (per step, smoothed; per epoch for folders without steps) and its
// per-epoch test series, for one panel.
void add_run_series(std::vector<plot::Series>& out, const std::string& name, const RunCurves& c, bool loss, bool several, size_t index) {
  const std::string color = several ? kRunColors[index % 6] : "";
  const std::string prefix = several ? name + ": " : "";
  plot::Series train, test;
  if (!c.step_x.empty()) {
    const std::vector<double>& y = loss ? c.step_loss : c.step_acc;
    train = {prefix + "train (per step, smoothed)", c.step_x, smooth(y, smoothing_window(y.size())), "line", color};
  } else {
    train = {prefix + "train (per epoch)", c.epoch_x, loss ? c.train_loss : c.train_acc, "line+markers", color};
  }
  test = {prefix + "test (per epoch)", c.epoch_x, loss ? c.test_loss : c.test_top1, c.epoch_x.size() > 1 ? "line+markers" : "markers",
          color};
  out.push_back(train);
  out.push_back(test);
}

}  // namespace

std::string curves_svg(const std::string& title, const std::vector<std::pair<std::string, RunCurves>>& runs) {
  PFQ_CHECK(!runs.empty(), "curves_svg: no runs to draw");
  std::vector<plot::Series> loss, acc;
  for (size_t i = 0; i < runs.size(); ++i) {
    add_run_series(loss, runs[i].first, runs[i].second, true, runs.size() > 1, i);
    add_run_series(acc, runs[i].first, runs[i].second, false, runs.size() > 1, i);
  }
  const plot::Axes la{title + ": loss", "epoch", "cross-entropy"};
  const plot::Axes aa{title + ": accuracy", "epoch", "top-1 (%)"};
  return plot::grid_svg({plot::line_chart_svg(la, loss), plot::line_chart_svg(aa, acc)}, 2);
}

void plot_curves(const std::string& dir, const std::string& title) {
  RunCurves c = read_run_curves(dir);
  if (c.epoch_x.empty()) return;
  io::write_file_atomic(dir + "/curves.svg", curves_svg(title, {{"", std::move(c)}}));
}

}  // namespace pfq::app
