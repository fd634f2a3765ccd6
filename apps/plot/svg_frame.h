// svg_frame.h — internal to apps/plot: the frame shared by every chart (title, legend, axes,
// ticks, grid, labels, note) with its layout and data-to-pixel mapping. Charts feed it ranges and
// legend entries, call layout(), map their data through x()/y() and hand the data layer to
// render(). Leaves out log x axes and multi-line titles.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "apps/plot/plot_scale.h"
#include "apps/plot/svg_plot.h"

namespace pfq::plot::detail {

struct LegendEntry {
  std::string label, color;
  bool bar = false;     // swatch: filled square instead of line/marker
  bool line = true;     // line swatch (unless bar)
  bool marker = false;  // marker swatch (unless bar)
  int shape = 0;        // marker shape index, see marker_svg
};

// Coordinates with one decimal, "12" rather than "12.0".
std::string num(double v);
// Marker `shape` (0 circle, 1 square, 2 triangle, 3 diamond, cycling) centred at (x, y).
std::string marker_svg(int shape, double x, double y, double r, const std::string& color);

class Frame {
 public:
  Frame(const Axes& axes, int width, int height);
  // Finite data range of x (none = no data) for a numeric x axis.
  void set_x_numeric(std::optional<std::pair<double, double>> range);
  // Categorical x axis: label i sits at x = i, bounds [-0.5, n - 0.5].
  void set_x_categories(const std::vector<std::string>& labels);
  // Finite (log: positive) data range of y, none = no data; applies axes.ymin/ymax.
  void set_y(std::optional<std::pair<double, double>> range, bool include_zero);
  void add_legend(LegendEntry e) { legend_.push_back(std::move(e)); }
  void add_note(const std::string& note);
  // Places everything; call after the setters, before x()/y().
  void layout();
  double x(double v) const;  // data -> pixel
  double y(double v) const;  // data -> pixel; log axes require v > 0
  double left() const { return left_; }
  double top() const { return top_; }
  double right() const { return right_; }
  double bottom() const { return bottom_; }
  double slot() const { return (right_ - left_) / (xt_.hi - xt_.lo); }  // pixels per x unit
  bool log_y() const { return axes_.log_y; }
  double y_lo() const { return yt_.lo; }
  // The complete <svg> document with `data` (SVG elements) clipped to the plot area.
  std::string render(const std::string& data) const;

 private:
  std::string render_x_axis() const;
  std::string render_y_axis() const;
  std::string render_legend() const;
  double legend_height() const;

  Axes axes_;
  int width_, height_;
  Ticks xt_, yt_;
  std::vector<std::string> categories_;
  bool rotate_ = false;
  int label_every_ = 1;
  std::vector<LegendEntry> legend_;
  std::string note_;
  double left_ = 0, top_ = 0, right_ = 0, bottom_ = 0;
  double ytick_w_ = 0;  // widest y tick label, estimated
};

}  // namespace pfq::plot::detail
