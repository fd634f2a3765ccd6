// bench_run.h — `pfq bench` as a library function (apps/): the FMA peak, then the timed modes
// of every model (apps/bench_modes.h, apps/bench_loader.h), each row printed as it is measured
// unless o.json, the QAT step over the float step per model, and the whole document returned
// (what --json prints). The flags: apps/cmd_bench.cpp.
#pragma once
#include <nlohmann/json.hpp>

#include "apps/bench_modes.h"

namespace pfq::app {

// Sets o's threads and CPU convolution backend and layout for the process, checks o.device,
// then times every model and mode of `o`.
nlohmann::ordered_json run_bench(const BenchOptions& o);

}  // namespace pfq::app
