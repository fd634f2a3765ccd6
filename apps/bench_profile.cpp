// bench_profile.cpp — see bench_profile.h.
#include "apps/bench_profile.h"

#include <chrono>
#include <cstdio>

#include "core/profiler.h"

namespace pfq::app {

nlohmann::ordered_json profile_steps(const std::function<void()>& step, int steps) {
  profiler::reset();
  profiler::set_enabled(true);
  const auto t0 = std::chrono::steady_clock::now();
  for (int s = 0; s < steps; ++s) step();
  const double total_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  profiler::set_enabled(false);
  const auto rows = profiler::rows();
  nlohmann::ordered_json ops = nlohmann::json::array();
  double scoped = 0;
  for (const auto& r : rows) {
    scoped += r.total_ms;
    ops.push_back({{"name", r.name},
                   {"ms_per_step", r.total_ms / steps},
                   {"calls_per_step", static_cast<double>(r.calls) / steps},
                   {"percent", 100 * r.total_ms / total_ms}});
  }
  ops.push_back({{"name", "(outside ops)"},
                 {"ms_per_step", (total_ms - scoped) / steps},
                 {"calls_per_step", 0},
                 {"percent", 100 * (total_ms - scoped) / total_ms}});
  profiler::reset();
  return {{"steps", steps}, {"step_ms", total_ms / steps}, {"ops", ops}};
}

void print_profile(const std::string& title, const nlohmann::ordered_json& profile) {
  std::printf("  profile of %s: %.1f ms per step (mean of %d profiled steps)\n", title.c_str(), profile["step_ms"].get<double>(),
              profile["steps"].get<int>());
  std::printf("    %-36s %10s %8s %7s\n", "op", "ms/step", "calls", "%");
  double other_ms = 0, other_pct = 0;
  for (const auto& op : profile["ops"]) {
    const double pct = op["percent"].get<double>();
    if (pct < 0.5) {
      other_ms += op["ms_per_step"].get<double>();
      other_pct += pct;
      continue;
    }
    std::printf("    %-36s %10.2f %8.0f %6.1f%%\n", op["name"].get<std::string>().c_str(), op["ms_per_step"].get<double>(),
                op["calls_per_step"].get<double>(), pct);
  }
  if (other_pct > 0) std::printf("    %-36s %10.2f %8s %6.1f%%\n", "(other ops, < 0.5% each)", other_ms, "", other_pct);
}

}  // namespace pfq::app
