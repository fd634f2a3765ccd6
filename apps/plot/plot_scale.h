// plot_scale.h — axis arithmetic for apps/plot: "nice" 1-2-5 linear ticks, decade ticks for log
// axes, tick-label formatting, XML escaping and the Okabe-Ito palette. Pure functions, no SVG,
// so the tests can pin exact tick values. Leaves out date/time axes, symlog and label collision
// handling (svg_plot thins crowded labels itself).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace pfq::plot {

struct Ticks {
  double lo = 0, hi = 1;            // axis bounds in data units
  double step = 0;                  // linear: spacing of `major`; log: 0
  std::vector<double> major;        // labelled positions, all within [lo, hi]
  std::vector<std::string> labels;  // one per major; log decades read "10^k"
  std::vector<double> minor;        // unlabelled positions (log: 2..9 x 10^k, skipped decades)
};

// Ticks at multiples of a 1-2-5 step giving about `target` intervals over [lo, hi].
// requires finite lo <= hi. Equal bounds are padded first (v +- 10% |v|, or +-1 around 0).
// ensures: with snap the bounds widen to the outer ticks, otherwise they stay and ticks fall
// inside. Example: (0, 1) -> 0, 0.2, 0.4, 0.6, 0.8, 1.
Ticks linear_ticks(double lo, double hi, int target = 5, bool snap = true);

// Decade ticks for a log axis. requires finite 0 < lo <= hi. With snap the bounds widen to whole
// decades; more than 8 decades label every k-th one. With fewer than 2 decades inside fixed
// bounds the 1-2-5 values are labelled instead.
Ticks log_ticks(double lo, double hi, bool snap = true);

// Shortest label of v on a grid of spacing `step`: 0.2 not 0.20000000001, "0" not "-0",
// %g form beyond 1e6 or below 1e-5.
std::string format_tick(double v, double step);

// Escapes & < > " ' and drops control characters XML 1.0 forbids.
std::string xml_escape(const std::string& s);

// Okabe-Ito colour-blind-safe palette, cycled; yellow comes last (weak on white).
const std::string& palette_color(std::size_t i);

}  // namespace pfq::plot
