/// \file
/// lr_schedule.h — learning-rate schedules as pure functions of a (fractional) epoch
/// (core/optim): constant, step, multistep, cosine, each optionally with linear warmup.
/// The trainer evaluates them every iteration at t = epoch + iter / iters_per_epoch and calls
/// Optimizer::set_lr; with integer t they equal PyTorch's per-epoch closed forms. Left out:
/// warm restarts, one-cycle, plateau (metric-driven) schedules.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pfq::optim {

/// The main learning-rate schedules (see LrSchedule for their formulas).
enum class ScheduleKind { Constant, Step, MultiStep, Cosine };

/// All durations (step_size, milestones, total, warmup) are in epochs and may be fractional.
struct ScheduleOptions {
  /// Learning rate at epoch 0 (before warmup).
  double base_lr = 0.1;
  double step_size = 30;           ///< step: lr * gamma^floor(t / step_size)
  double gamma = 0.1;              ///< step, multistep; > 0
  std::vector<double> milestones = {};  ///< multistep: lr * gamma^(#milestones <= t); sorted, >= 0
  double total = 0;                ///< cosine: length T (> 0); lr reaches eta_min at t = T, stays after
  double eta_min = 0;              ///< cosine: final lr, >= 0
  double warmup = 0;               ///< linear warmup length W in epochs (0 = none)
  double warmup_start_factor = 0.1;  ///< warmup factor at t = 0, in [0, 1]
};

/// lr(t) = main(t) * w(t), w(t) = f + (1 - f) * t / W for t < W, else 1 (f = warmup_start_factor).
/// The main schedule's clock is not shifted by the warmup: milestones and the cosine length are
/// counted from epoch 0, and the warmup multiplies the first W epochs (continuous at t = W).
/// cosine: main(t) = eta_min + (base_lr - eta_min) * (1 + cos(pi * min(t, T) / T)) / 2.
class LrSchedule {
 public:
  LrSchedule(ScheduleKind kind, const ScheduleOptions& options);  ///< validates the options
  double operator()(double epoch) const;  ///< requires epoch >= 0 and finite
  /// The warmup multiplier w(t) at `epoch`.
  double warmup_factor(double epoch) const;
  /// Which main schedule.
  ScheduleKind kind() const { return kind_; }
  /// The validated options.
  const ScheduleOptions& options() const { return opt_; }
  std::string describe() const;  ///< e.g. "cosine(base_lr=0.1, total=90, eta_min=0) + warmup(5 epochs from 0.1x)"

 private:
  double main_lr(double epoch) const;
  ScheduleKind kind_;
  ScheduleOptions opt_;
};

/// "constant" | "step" | "multistep" | "cosine".
const char* schedule_kind_name(ScheduleKind kind);
/// "constant" | "step" | "multistep" | "cosine"; throws pfq::Error naming the bad value.
ScheduleKind parse_schedule_kind(const std::string& name);
/// parse_schedule_kind(name) with `options`, validated.
LrSchedule make_schedule(const std::string& name, const ScheduleOptions& options);

/// The schedule argument for iteration `iter` (0-based) of `epoch` (0-based).
double fractional_epoch(int64_t epoch, int64_t iter, int64_t iters_per_epoch);

}  // namespace pfq::optim
