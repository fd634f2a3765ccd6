// lr_schedule.cpp — schedule validation and evaluation (see lr_schedule.h).
#include "core/optim/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <sstream>

#include "core/error.h"

namespace pfq::optim {

const char* schedule_kind_name(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::Constant: return "constant";
    case ScheduleKind::Step: return "step";
    case ScheduleKind::MultiStep: return "multistep";
    case ScheduleKind::Cosine: return "cosine";
  }
  return "?";
}

ScheduleKind parse_schedule_kind(const std::string& name) {
  for (ScheduleKind k : {ScheduleKind::Constant, ScheduleKind::Step, ScheduleKind::MultiStep, ScheduleKind::Cosine})
    if (name == schedule_kind_name(k)) return k;
  PFQ_FAIL("unknown lr schedule '", name, "' (expected constant|step|multistep|cosine)");
}

LrSchedule make_schedule(const std::string& name, const ScheduleOptions& options) {
  return LrSchedule(parse_schedule_kind(name), options);
}

double fractional_epoch(int64_t epoch, int64_t iter, int64_t iters_per_epoch) {
  PFQ_CHECK(iters_per_epoch > 0 && epoch >= 0 && iter >= 0 && iter < iters_per_epoch, "fractional_epoch: need epoch >= 0 and 0 <= iter < iters_per_epoch, got epoch ",
            epoch, ", iter ", iter, ", iters_per_epoch ", iters_per_epoch);
  return static_cast<double>(epoch) + static_cast<double>(iter) / static_cast<double>(iters_per_epoch);
}

LrSchedule::LrSchedule(ScheduleKind kind, const ScheduleOptions& options) : kind_(kind), opt_(options) {
  const char* k = schedule_kind_name(kind);
  auto ok = [](double v) { return std::isfinite(v); };
  PFQ_CHECK(ok(opt_.base_lr) && opt_.base_lr >= 0, k, " schedule: base_lr must be >= 0, got ", opt_.base_lr);
  PFQ_CHECK(ok(opt_.warmup) && opt_.warmup >= 0, k, " schedule: warmup must be >= 0 epochs, got ", opt_.warmup);
  PFQ_CHECK(ok(opt_.warmup_start_factor) && opt_.warmup_start_factor >= 0 && opt_.warmup_start_factor <= 1, k,
            " schedule: warmup_start_factor must be in [0, 1], got ", opt_.warmup_start_factor);
  if (kind == ScheduleKind::Step || kind == ScheduleKind::MultiStep)
    PFQ_CHECK(ok(opt_.gamma) && opt_.gamma > 0, k, " schedule: gamma must be > 0, got ", opt_.gamma);
  if (kind == ScheduleKind::Step)
    PFQ_CHECK(ok(opt_.step_size) && opt_.step_size > 0, "step schedule: step_size must be > 0 epochs, got ", opt_.step_size);
  if (kind == ScheduleKind::MultiStep) {
    const auto& ms = opt_.milestones;
    PFQ_CHECK(!ms.empty(), "multistep schedule: needs at least one milestone (use constant for none)");
    for (size_t i = 0; i < ms.size(); ++i) {
      PFQ_CHECK(ok(ms[i]) && ms[i] >= 0, "multistep schedule: milestone ", ms[i], " must be >= 0");
      PFQ_CHECK(i == 0 || ms[i] >= ms[i - 1], "multistep schedule: milestones must be sorted, got ", ms[i - 1], " before ", ms[i]);
    }
  }
  if (kind == ScheduleKind::Cosine) {
    PFQ_CHECK(ok(opt_.total) && opt_.total > 0, "cosine schedule: total must be > 0 epochs, got ", opt_.total,
              " (set it to the number of training epochs)");
    PFQ_CHECK(ok(opt_.eta_min) && opt_.eta_min >= 0, "cosine schedule: eta_min must be >= 0, got ", opt_.eta_min);
  }
}

double LrSchedule::warmup_factor(double t) const {
  if (opt_.warmup == 0 || t >= opt_.warmup) return 1.0;
  const double f = opt_.warmup_start_factor;
  return f + (1 - f) * t / opt_.warmup;
}

double LrSchedule::main_lr(double t) const {
  switch (kind_) {
    case ScheduleKind::Constant: return opt_.base_lr;
    case ScheduleKind::Step: return opt_.base_lr * std::pow(opt_.gamma, std::floor(t / opt_.step_size));
    case ScheduleKind::MultiStep: {
      auto passed = std::upper_bound(opt_.milestones.begin(), opt_.milestones.end(), t) - opt_.milestones.begin();
      return opt_.base_lr * std::pow(opt_.gamma, static_cast<double>(passed));
    }
    case ScheduleKind::Cosine: {
      const double x = std::min(t, opt_.total) / opt_.total;
      return opt_.eta_min + (opt_.base_lr - opt_.eta_min) * (1 + std::cos(std::numbers::pi * x)) / 2;
    }
  }
  return opt_.base_lr;
}

double LrSchedule::operator()(double epoch) const {
  PFQ_CHECK(std::isfinite(epoch) && epoch >= 0, schedule_kind_name(kind_), " schedule: evaluated at epoch ", epoch, "; expected >= 0");
  return main_lr(epoch) * warmup_factor(epoch);
}

std::string LrSchedule::describe() const {
  std::ostringstream os;
  os << schedule_kind_name(kind_) << "(base_lr=" << opt_.base_lr;
  if (kind_ == ScheduleKind::Step) os << ", step_size=" << opt_.step_size << ", gamma=" << opt_.gamma;
  if (kind_ == ScheduleKind::MultiStep) {
    os << ", milestones=[";
    for (size_t i = 0; i < opt_.milestones.size(); ++i) os << (i ? "," : "") << opt_.milestones[i];
    os << "], gamma=" << opt_.gamma;
  }
  if (kind_ == ScheduleKind::Cosine) os << ", total=" << opt_.total << ", eta_min=" << opt_.eta_min;
  os << ")";
  if (opt_.warmup > 0) os << " + warmup(" << opt_.warmup << " epochs from " << opt_.warmup_start_factor << "x)";
  return os.str();
}

}  // namespace pfq::optim
