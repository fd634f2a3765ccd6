// svg_plot.cpp — the public charts of apps/plot (line, grouped bar, grid) and the SVG writer.
// Data points are validated and filtered here (NaN/inf = gap, non-positive on log = skipped
// and noted); the frame (svg_frame.h) draws everything else. Leaves out atomic file writes
// (the caller may swap in its own writer) and per-point annotations.
#include "apps/plot/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <fstream>

#include "apps/plot/svg_frame.h"
#include "core/error.h"

namespace pfq::plot {

namespace {
using detail::num;
using Range = std::optional<std::pair<double, double>>;

void extend(Range& r, double v) {
  r = r ? std::pair<double, double>{std::min(r->first, v), std::max(r->second, v)}
        : std::pair<double, double>{v, v};
}

std::string color_of(const Series& s, std::size_t i) {
  return s.color.empty() ? palette_color(i) : xml_escape(s.color);
}

std::string skipped_note(std::size_t n) {
  return std::to_string(n) + " non-positive value" + (n == 1 ? "" : "s") + " not shown (log scale)";
}
}  // namespace

std::string line_chart_svg(const Axes& axes, const std::vector<Series>& series, int width, int height) {
  detail::Frame frame(axes, width, height);
  Range xr, yr;
  std::size_t skipped = 0, shown = 0;
  for (std::size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    PFQ_CHECK(s.x.empty() || s.x.size() == s.y.size(), "plot::line_chart_svg: series ", i, " '", s.label,
              "' has ", s.x.size(), " x values but ", s.y.size(), " y values");
    PFQ_CHECK(s.style == "line" || s.style == "markers" || s.style == "line+markers",
              "plot::line_chart_svg: series ", i, " '", s.label, "' has unknown style '", s.style,
              "' (expected line, markers or line+markers)");
    for (std::size_t k = 0; k < s.y.size(); ++k) {
      double x = s.x.empty() ? static_cast<double>(k) : s.x[k], y = s.y[k];
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      if (axes.log_y && y <= 0) {
        ++skipped;
        continue;
      }
      extend(xr, x);
      extend(yr, y);
      ++shown;
    }
    if (!s.label.empty()) {
      bool line = s.style != "markers";
      frame.add_legend({s.label, color_of(s, i), false, line, s.style != "line", static_cast<int>(i)});
    }
  }
  if (axes.xtick_labels.empty()) {
    frame.set_x_numeric(xr);
  } else {
    frame.set_x_categories(axes.xtick_labels);
  }
  frame.set_y(yr, false);
  if (skipped > 0) frame.add_note(skipped_note(skipped));
  if (shown == 0) frame.add_note("no finite data to plot");
  frame.layout();

  std::string data;
  for (std::size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    std::string color = color_of(s, i);
    bool line = s.style != "markers", markers = s.style != "line";
    // Runs of valid points; an invalid point ends the run, leaving a gap.
    std::vector<std::vector<std::pair<double, double>>> runs(1);
    for (std::size_t k = 0; k < s.y.size(); ++k) {
      double x = s.x.empty() ? static_cast<double>(k) : s.x[k], y = s.y[k];
      bool ok = std::isfinite(x) && std::isfinite(y) && (!axes.log_y || y > 0);
      if (!ok) {
        if (!runs.back().empty()) runs.emplace_back();
        continue;
      }
      runs.back().push_back({frame.x(x), frame.y(y)});
    }
    std::string d, dots;
    for (const auto& run : runs) {
      if (run.empty()) continue;
      if (line && run.size() >= 2) {
        d += "M" + num(run[0].first) + "," + num(run[0].second);
        for (std::size_t k = 1; k < run.size(); ++k) {
          d += k == 1 ? 'L' : ' ';  // not "L" + std::string: GCC 12's -Wrestrict false positive
          d += num(run[k].first) + "," + num(run[k].second);
        }
      }
      // A lone point of a plain line would be invisible: draw it as a dot.
      if (markers || run.size() == 1)
        for (auto [px, py] : run)
          dots += detail::marker_svg(markers ? static_cast<int>(i) : 0, px, py, markers ? 3.5 : 3.0, color);
    }
    data += "<g class=\"series\">\n";
    if (!d.empty())
      data += "<path d=\"" + d + "\" fill=\"none\" stroke=\"" + color +
              "\" stroke-width=\"2\" stroke-linejoin=\"round\" stroke-linecap=\"round\"/>\n";
    data += dots + "</g>\n";
  }
  return frame.render(data);
}

std::string bar_chart_svg(const Axes& axes, const std::vector<std::string>& categories,
                          const std::vector<Series>& groups, int width, int height) {
  PFQ_CHECK(!categories.empty(), "plot::bar_chart_svg: no categories given");
  detail::Frame frame(axes, width, height);
  Range yr;
  std::size_t skipped = 0, shown = 0;
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const Series& s = groups[g];
    PFQ_CHECK(s.y.size() == categories.size(), "plot::bar_chart_svg: group ", g, " '", s.label, "' has ",
              s.y.size(), " values for ", categories.size(), " categories");
    PFQ_CHECK(s.x.empty(), "plot::bar_chart_svg: group ", g, " '", s.label,
              "' has x values; bars sit at their category, leave x empty");
    for (double y : s.y) {
      if (!std::isfinite(y)) continue;
      if (axes.log_y && y <= 0) {
        ++skipped;
        continue;
      }
      // On a log axis a value exactly on a decade would give a zero-height bar at the floor.
      extend(yr, axes.log_y ? y * 0.999 : y);
      extend(yr, y);
      ++shown;
    }
    if (!s.label.empty()) frame.add_legend({s.label, color_of(s, g), true, false, false, 0});
  }
  if (yr && !axes.log_y) {  // headroom so the longest bar does not touch the frame
    double pad = 0.04 * (std::max(yr->second, 0.0) - std::min(yr->first, 0.0));
    if (yr->second > 0) {
      yr->second += pad;
    } else {
      yr->first -= pad;
    }
  }
  frame.set_x_categories(categories);
  frame.set_y(yr, true);
  if (skipped > 0) frame.add_note(skipped_note(skipped));
  if (shown == 0) frame.add_note("no finite data to plot");
  frame.layout();

  std::string data;
  double slot = frame.slot(), group_w = 0.8 * slot;
  double bar_w = group_w / std::max<std::size_t>(1, groups.size());
  // Linear bars start at 0 (always inside the axis); log bars at the axis floor.
  double base = frame.log_y() ? frame.bottom() : std::clamp(frame.y(0), frame.top(), frame.bottom());
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const Series& s = groups[g];
    data += "<g class=\"series\" fill=\"" + color_of(s, g) + "\" stroke=\"white\" stroke-width=\"" +
            num(bar_w > 6 ? 0.8 : 0.3) + "\">\n";
    for (std::size_t c = 0; c < categories.size(); ++c) {
      double y = s.y[c];
      if (!std::isfinite(y) || (axes.log_y && y <= 0)) continue;
      double x0 = frame.x(static_cast<double>(c)) - group_w / 2 + g * bar_w;
      double py = frame.y(y);
      // Clamp far-off values so the clip path, not a huge number, cuts the bar.
      py = std::clamp(py, frame.top() - 10, frame.bottom() + 10);
      data += "<rect x=\"" + num(x0) + "\" y=\"" + num(std::min(py, base)) + "\" width=\"" + num(bar_w) +
              "\" height=\"" + num(std::fabs(base - py)) + "\"/>\n";
    }
    data += "</g>\n";
  }
  return frame.render(data);
}

std::string grid_svg(const std::vector<std::string>& panels, int columns) {
  PFQ_CHECK(!panels.empty(), "plot::grid_svg: no panels given");
  PFQ_CHECK(columns >= 1, "plot::grid_svg: columns must be >= 1, got ", columns);
  auto attr = [](const std::string& tag, const std::string& name, std::size_t p) {
    auto a = tag.find(" " + name + "=\"");
    PFQ_CHECK(a != std::string::npos, "plot::grid_svg: panel ", p, " has no ", name,
              " attribute on its root <svg> (hint: pass charts made by pfq::plot)");
    a += name.size() + 3;
    return std::stod(tag.substr(a, tag.find('"', a) - a));
  };
  std::vector<std::string> bodies;
  std::vector<std::pair<double, double>> sizes;
  double cell_w = 0, cell_h = 0;
  for (std::size_t p = 0; p < panels.size(); ++p) {
    std::string s = panels[p];
    auto start = s.find("<svg");
    PFQ_CHECK(start != std::string::npos, "plot::grid_svg: panel ", p, " is not an SVG document");
    s = s.substr(start);  // drops an XML declaration: not allowed mid-document
    std::string tag = s.substr(0, s.find('>'));
    sizes.push_back({attr(tag, "width", p), attr(tag, "height", p)});
    cell_w = std::max(cell_w, sizes.back().first);
    cell_h = std::max(cell_h, sizes.back().second);
    bodies.push_back(s);
  }
  std::size_t cols = std::min<std::size_t>(columns, panels.size());
  std::size_t rows = (panels.size() + cols - 1) / cols;
  double total_w = cols * cell_w, total_h = rows * cell_h;
  std::string out = "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" + num(total_w) +
                    "\" height=\"" + num(total_h) + "\" viewBox=\"0 0 " + num(total_w) + " " + num(total_h) +
                    "\">\n<rect width=\"" + num(total_w) + "\" height=\"" + num(total_h) +
                    "\" fill=\"white\"/>\n";
  for (std::size_t p = 0; p < bodies.size(); ++p) {
    double x = (p % cols) * cell_w + (cell_w - sizes[p].first) / 2;
    double y = static_cast<double>(p / cols) * cell_h + (cell_h - sizes[p].second) / 2;
    out += "<svg x=\"" + num(x) + "\" y=\"" + num(y) + "\"" + bodies[p].substr(4);
    if (out.back() != '\n') out += '\n';
  }
  return out + "</svg>\n";
}

void write_svg(const std::string& path, const std::string& svg) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  PFQ_CHECK(f.is_open(), "plot::write_svg: cannot open '", path,
            "' for writing (hint: does the folder exist?)");
  f << svg;
  f.flush();
  PFQ_CHECK(f.good(), "plot::write_svg: writing '", path, "' failed (disk full?)");
}

}  // namespace pfq::plot
