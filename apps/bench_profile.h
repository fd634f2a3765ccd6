// bench_profile.h — `pfq bench --profile`: runs a few extra steps with the op profiler on
// (core/profiler.h) and breaks the step time down by op (exclusive wall time per forward op,
// per autograd node's backward, gradient accumulation, optimizer), largest first.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

namespace pfq::app {

// Profiles `steps` calls of `step`; returns {"steps", "step_ms" (profiled mean), "ops": [{name,
// ms_per_step, calls_per_step, percent}]}, with "(outside ops)" for the unscoped rest.
nlohmann::ordered_json profile_steps(const std::function<void()>& step, int steps);

// The table for humans: one line an op, rows under 0.5% folded into "(other ops)".
void print_profile(const std::string& title, const nlohmann::ordered_json& profile);

}  // namespace pfq::app
