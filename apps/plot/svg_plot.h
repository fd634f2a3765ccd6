// svg_plot.h — dependency-free SVG charts for pfq reports (apps/plot): line charts of training
// curves (several runs overlaid), grouped bar charts (per-layer weight ranges, log scale), a grid
// of panels in one SVG, and a file writer. Output is SVG 1.1 that browsers and rsvg render.
// Leaves out log x axes, error bars, stacked bars, interactivity and font-metric-exact layout
// (text widths are estimated from character counts).
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace pfq::plot {

struct Series {
  std::string label;           // legend entry; empty = not listed
  std::vector<double> x, y;    // x empty = 0..n-1; NaN/inf points leave gaps
  std::string style = "line";  // "line" | "markers" | "line+markers" (ignored by bars)
  std::string color;           // empty = Okabe-Ito palette by series index; any SVG colour
};

struct Axes {
  std::string title, xlabel, ylabel;
  bool log_y = false;                     // non-positive y values are skipped and counted in a note
  std::optional<double> ymin, ymax;       // fixed bounds; unset = from data, snapped to ticks
  std::vector<std::string> xtick_labels;  // line charts: categorical labels at x = 0..n-1,
                                          // rotated 45 degrees when they do not fit
};

// Line/marker chart. requires x.size() == y.size() (or x empty) per series, a known style,
// width >= 200, height >= 150, ymin < ymax when both set, ymin > 0 on a log axis.
std::string line_chart_svg(const Axes& axes, const std::vector<Series>& series, int width = 720,
                           int height = 420);

// Grouped bars: one bar per (category, group), groups side by side within a category. Each
// group's y has categories.size() values and x stays empty; axes.xtick_labels is ignored.
// Linear axes draw bars from 0 (always in range), log axes from the axis floor.
std::string bar_chart_svg(const Axes& axes, const std::vector<std::string>& categories,
                          const std::vector<Series>& groups, int width = 720, int height = 420);

// Several charts from this module in one SVG, row-major, `columns` per row; each cell is as
// large as the largest panel. requires non-empty panels whose root <svg> has width and height.
std::string grid_svg(const std::vector<std::string>& panels, int columns);

// Writes svg to path (overwrites). Throws pfq::Error when the file cannot be written.
void write_svg(const std::string& path, const std::string& svg);

}  // namespace pfq::plot
