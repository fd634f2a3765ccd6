// curves.h — training curves of runs (apps/): a run folder's history read from its metrics
// (metrics.jsonl per epoch, steps.jsonl per optimizer step) and drawn as loss and accuracy
// panels side by side (apps/plot), one run or several overlaid (the workflow's fine-tunes
// without and with PfQ). Per-step values are smoothed so a one-epoch run shows what happened;
// folders written before steps.jsonl existed fall back to the per-epoch training values.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace pfq::app {

// One run's history. x of a step = its fractional epoch (epoch e's last step at x = e + 1, where
// that epoch's evaluation is drawn). Non-finite values (a diverged step: null in the files) are NaN.
struct RunCurves {
  std::vector<double> step_x, step_loss, step_acc;  // per optimizer step; empty for old folders
  std::vector<double> epoch_x, train_loss, train_acc, test_loss, test_top1;  // per epoch
  bool empty() const { return epoch_x.empty() && step_x.empty(); }
};

// Reads <dir>/metrics.jsonl and <dir>/steps.jsonl (either may be missing: empty vectors).
// Throws pfq::Error naming the file and line for a line that is not JSON.
RunCurves read_run_curves(const std::string& dir);

// Trailing exponential moving average over `window` points (weight 1 - 1/window per step back),
// bias-corrected so the first points are averages of what was seen; NaN points stay NaN and do
// not enter the average. window <= 1 returns y.
std::vector<double> smooth(const std::vector<double>& y, double window);

// The smoothing window for n per-step points: about a twentieth of the run, 1 to 50 steps.
double smoothing_window(size_t n);

// Loss and accuracy panels side by side: per run its smoothed per-step training curve (a line)
// and per-epoch test values (markers) in one colour; with one run, the legend says train/test.
// requires: runs not empty.
std::string curves_svg(const std::string& title, const std::vector<std::pair<std::string, RunCurves>>& runs);

// <dir>/curves.svg of the run in `dir` (nothing when it has no metrics yet).
void plot_curves(const std::string& dir, const std::string& title);

}  // namespace pfq::app
