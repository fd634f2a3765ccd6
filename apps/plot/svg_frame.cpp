// svg_frame.cpp — layout and drawing of the chart frame of apps/plot (see svg_frame.h). Text
// widths are estimated (0.6 em per character, DejaVu Sans-like), so margins err on the wide side.
// Leaves out font metrics, automatic legend placement inside the plot, and log x axes.
#include "apps/plot/svg_frame.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/error.h"

namespace pfq::plot::detail {

namespace {
constexpr double kFont = 12, kTitleFont = 15, kTickFont = 11, kCharW = 0.6;
constexpr double kLegendRow = 18;
constexpr std::size_t kMaxLabelChars = 28;

std::size_t utf8_len(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80 ? 1 : 0;
  return n;
}
double text_w(const std::string& s, double font) { return utf8_len(s) * font * kCharW; }

// Cuts over-long category labels at a code-point boundary and marks the cut.
std::string shorten(const std::string& s) {
  if (utf8_len(s) <= kMaxLabelChars) return s;
  std::size_t n = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && n++ == kMaxLabelChars - 1) break;
  }
  return s.substr(0, i) + "\xE2\x80\xA6";  // U+2026 ellipsis
}

// Tick label text: "10^k" becomes 10 with a superscript exponent.
std::string tick_text(const std::string& label) {
  auto p = label.find('^');
  if (p == std::string::npos) return xml_escape(label);
  return xml_escape(label.substr(0, p)) + "<tspan dy=\"-0.45em\" font-size=\"80%\">" +
         xml_escape(label.substr(p + 1)) + "</tspan>";
}
double tick_w(const std::string& label) {
  auto p = label.find('^');
  if (p == std::string::npos) return text_w(label, kTickFont);
  return text_w(label.substr(0, p), kTickFont) + 0.8 * text_w(label.substr(p + 1), kTickFont);
}

std::string text_el(double x, double y, const std::string& anchor, const std::string& body,
                    const std::string& extra = "") {
  return "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" text-anchor=\"" + anchor + "\"" + extra + ">" +
         body + "</text>\n";
}
std::string line_el(double x1, double y1, double x2, double y2) {
  return "<line x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" + num(x2) + "\" y2=\"" + num(y2) +
         "\"/>\n";
}
}  // namespace

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  std::string s(buf);
  if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
  if (s == "-0") s = "0";
  return s;
}

std::string marker_svg(int shape, double x, double y, double r, const std::string& color) {
  std::string fill = " fill=\"" + color + "\" stroke=\"white\" stroke-width=\"0.8\"/>\n";
  switch (shape % 4) {
    case 0:
      return "<circle cx=\"" + num(x) + "\" cy=\"" + num(y) + "\" r=\"" + num(r) + "\"" + fill;
    case 1: {
      double a = r * 0.9;
      return "<rect x=\"" + num(x - a) + "\" y=\"" + num(y - a) + "\" width=\"" + num(2 * a) +
             "\" height=\"" + num(2 * a) + "\"" + fill;
    }
    case 2: {
      double a = r * 1.2;
      return "<path d=\"M" + num(x) + "," + num(y - a) + "L" + num(x + a) + "," + num(y + 0.7 * a) + "L" +
             num(x - a) + "," + num(y + 0.7 * a) + "Z\"" + fill;
    }
    default: {
      double a = r * 1.25;
      return "<path d=\"M" + num(x) + "," + num(y - a) + "L" + num(x + a) + "," + num(y) + "L" + num(x) +
             "," + num(y + a) + "L" + num(x - a) + "," + num(y) + "Z\"" + fill;
    }
  }
}

Frame::Frame(const Axes& axes, int width, int height) : axes_(axes), width_(width), height_(height) {
  PFQ_CHECK(width >= 200 && height >= 150, "plot: chart size must be at least 200x150, got ", width, "x",
            height);
  PFQ_CHECK(!axes.ymin || std::isfinite(*axes.ymin), "plot: ymin must be finite, got ", *axes.ymin);
  PFQ_CHECK(!axes.ymax || std::isfinite(*axes.ymax), "plot: ymax must be finite, got ", *axes.ymax);
  PFQ_CHECK(!(axes.ymin && axes.ymax) || *axes.ymin < *axes.ymax, "plot: expected ymin < ymax, got ",
            *axes.ymin, " >= ", *axes.ymax);
  PFQ_CHECK(!axes.log_y || !axes.ymin || *axes.ymin > 0, "plot: log y axis needs ymin > 0, got ", *axes.ymin,
            " (hint: leave ymin unset to start at the lowest decade of the data)");
  PFQ_CHECK(!axes.log_y || !axes.ymax || *axes.ymax > 0, "plot: log y axis needs ymax > 0, got ", *axes.ymax);
}

void Frame::set_x_numeric(std::optional<std::pair<double, double>> range) {
  auto [lo, hi] = range.value_or(std::pair<double, double>{0, 1});
  xt_ = linear_ticks(lo, hi, 6, true);
  categories_.clear();
}

void Frame::set_x_categories(const std::vector<std::string>& labels) {
  categories_.clear();
  for (const auto& l : labels) categories_.push_back(shorten(l));
  xt_ = Ticks{};
  xt_.lo = -0.5;
  xt_.hi = static_cast<double>(labels.size()) - 0.5;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    xt_.major.push_back(static_cast<double>(i));
    xt_.labels.push_back(categories_[i]);
  }
}

void Frame::set_y(std::optional<std::pair<double, double>> range, bool include_zero) {
  const auto& mn = axes_.ymin;
  const auto& mx = axes_.ymax;
  if (axes_.log_y) {
    auto [lo, hi] = range.value_or(std::pair<double, double>{1, 10});
    if (mn) hi = std::max(hi, *mn);  // keep lo <= hi when one bound is fixed past the data
    if (mx) lo = std::min(lo, *mx);
    Ticks snapped = log_ticks(lo, hi, true);
    if (!mn && !mx) {
      yt_ = snapped;
      return;
    }
    double a = mn.value_or(snapped.lo), b = mx.value_or(snapped.hi);
    if (b <= a && mx) a = b / 10;  // a fixed bound beyond all the data: one decade of room
    if (b <= a) b = a * 10;
    yt_ = log_ticks(a, b, false);
    return;
  }
  auto [lo, hi] = range.value_or(std::pair<double, double>{0, 1});
  if (include_zero) {
    lo = std::min(lo, 0.0);
    hi = std::max(hi, 0.0);
  }
  if (mn) hi = std::max(hi, *mn);
  if (mx) lo = std::min(lo, *mx);
  Ticks snapped = linear_ticks(lo, hi, 5, true);
  if (!mn && !mx) {
    yt_ = snapped;
    return;
  }
  double a = mn.value_or(snapped.lo), b = mx.value_or(snapped.hi);
  if (b <= a && mx) a = b - snapped.step;  // a fixed bound beyond all the data: one step of room
  if (b <= a) b = a + snapped.step;
  yt_ = linear_ticks(a, b, 5, false);
}

void Frame::add_note(const std::string& note) { note_ += (note_.empty() ? "" : "; ") + note; }

double Frame::legend_height() const {
  double avail = width_ - 20.0, row_w = 0;
  int rows = 0;
  for (const auto& e : legend_) {
    double w = 30 + text_w(e.label, kFont) + 18;
    if (rows == 0 || row_w + w > avail) {
      ++rows;
      row_w = 0;
    }
    row_w += w;
  }
  return rows * kLegendRow;
}

void Frame::layout() {
  top_ = 10 + (axes_.title.empty() ? 0 : 26) + legend_height() + 8;
  ytick_w_ = 0;
  for (const auto& l : yt_.labels) ytick_w_ = std::max(ytick_w_, tick_w(l));
  left_ = 8 + (axes_.ylabel.empty() ? 0 : 22) + ytick_w_ + 9;
  double r_margin = 16;
  if (categories_.empty() && !xt_.labels.empty())
    r_margin = std::max(r_margin, text_w(xt_.labels.back(), kTickFont) / 2 + 4);
  right_ = width_ - r_margin;
  double tick_area = 20;
  if (!categories_.empty()) {
    double slot = (right_ - left_) / std::max<std::size_t>(1, categories_.size()), max_w = 0;
    for (const auto& c : categories_) max_w = std::max(max_w, text_w(c, kTickFont));
    rotate_ = max_w > 0.95 * slot;
    label_every_ = rotate_ ? std::max(1, static_cast<int>(std::ceil(kTickFont * 1.3 / slot))) : 1;
    if (rotate_) {
      tick_area = max_w * 0.71 + kTickFont * 0.71 + 12;
      // The first label runs down-left from its tick: keep it on the canvas.
      left_ = std::max(left_, text_w(categories_[0], kTickFont) * 0.71 - slot / 2 + 6);
    }
  }
  double below = tick_area + (axes_.xlabel.empty() ? 0 : 20) + (note_.empty() ? 0 : 16) + 8;
  bottom_ = height_ - std::min(below, 0.5 * height_);
  PFQ_CHECK(right_ - left_ >= 40 && bottom_ - top_ >= 40, "plot: no room left for the plot area (",
            num(right_ - left_), "x", num(bottom_ - top_), " px) in a ", width_, "x", height_,
            " chart; hint: make the chart larger or the labels/legend shorter");
}

double Frame::x(double v) const { return left_ + (v - xt_.lo) / (xt_.hi - xt_.lo) * (right_ - left_); }

double Frame::y(double v) const {
  double f = axes_.log_y ? (std::log10(v) - std::log10(yt_.lo)) / (std::log10(yt_.hi) - std::log10(yt_.lo))
                         : (v - yt_.lo) / (yt_.hi - yt_.lo);
  return bottom_ - f * (bottom_ - top_);
}

std::string Frame::render_y_axis() const {
  std::string grid, ticks, labels;
  for (double m : yt_.minor) grid += line_el(left_, y(m), right_, y(m));
  std::string minor_grid = grid;
  grid.clear();
  for (std::size_t i = 0; i < yt_.major.size(); ++i) {
    double py = y(yt_.major[i]);
    grid += line_el(left_, py, right_, py);
    ticks += line_el(left_ - 5, py, left_, py);
    labels += text_el(left_ - 8, py + 4, "end", tick_text(yt_.labels[i]));
  }
  std::string out;
  if (!minor_grid.empty()) out += "<g stroke=\"#f0f0f0\" stroke-width=\"1\">\n" + minor_grid + "</g>\n";
  out += "<g stroke=\"#e0e0e0\" stroke-width=\"1\">\n" + grid + "</g>\n";
  if (!axes_.log_y && yt_.lo < 0 && yt_.hi > 0)
    out += "<g stroke=\"#888\" stroke-width=\"1\">\n" + line_el(left_, y(0), right_, y(0)) + "</g>\n";
  out += "<g stroke=\"#444\">\n" + ticks + "</g>\n";
  out += "<g class=\"ytick\" font-size=\"" + num(kTickFont) + "\" fill=\"#222\">\n" + labels + "</g>\n";
  return out;
}

std::string Frame::render_x_axis() const {
  std::string grid, ticks, labels;
  for (std::size_t i = 0; i < xt_.major.size(); ++i) {
    double px = x(xt_.major[i]);
    if (categories_.empty()) grid += line_el(px, top_, px, bottom_);
    ticks += line_el(px, bottom_, px, bottom_ + 5);
    if (static_cast<int>(i) % label_every_ != 0) continue;
    std::string body = xml_escape(xt_.labels[i]);
    if (rotate_) {
      double ty = bottom_ + 10;
      labels +=
          text_el(px + 3, ty, "end", body, " transform=\"rotate(-45 " + num(px + 3) + " " + num(ty) + ")\"");
    } else {
      labels += text_el(px, bottom_ + 17, "middle", body);
    }
  }
  std::string out;
  if (!grid.empty()) out += "<g stroke=\"#e0e0e0\" stroke-width=\"1\">\n" + grid + "</g>\n";
  out += "<g stroke=\"#444\">\n" + ticks + "</g>\n";
  out += "<g class=\"xtick\" font-size=\"" + num(kTickFont) + "\" fill=\"#222\">\n" + labels + "</g>\n";
  return out;
}

std::string Frame::render_legend() const {
  if (legend_.empty()) return "";
  // Rows of entries, each row centred on the chart.
  std::vector<std::vector<std::pair<const LegendEntry*, double>>> rows;
  std::vector<double> row_w;
  double avail = width_ - 20.0;
  for (const auto& e : legend_) {
    double w = 30 + text_w(e.label, kFont) + 18;
    if (rows.empty() || row_w.back() + w > avail) {
      rows.emplace_back();
      row_w.push_back(0);
    }
    rows.back().push_back({&e, w});
    row_w.back() += w;
  }
  std::string out = "<g class=\"legend\">\n";
  double y0 = 10 + (axes_.title.empty() ? 0 : 26) + kLegendRow / 2;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    double cy = y0 + r * kLegendRow, cx = (width_ - (row_w[r] - 18)) / 2;
    for (auto [e, w] : rows[r]) {
      if (e->bar) {
        out += "<rect x=\"" + num(cx + 6) + "\" y=\"" + num(cy - 6) +
               "\" width=\"12\" height=\"12\" fill=\"" + e->color + "\"/>\n";
      } else {
        if (e->line)
          out += "<line x1=\"" + num(cx) + "\" y1=\"" + num(cy) + "\" x2=\"" + num(cx + 24) + "\" y2=\"" +
                 num(cy) + "\" stroke=\"" + e->color + "\" stroke-width=\"2\"/>\n";
        if (e->marker) out += marker_svg(e->shape, cx + 12, cy, 3.5, e->color);
      }
      out += text_el(cx + 30, cy + 4, "start", xml_escape(e->label));
      cx += w;
    }
  }
  return out + "</g>\n";
}

std::string Frame::render(const std::string& data) const {
  std::ostringstream os;
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" << width_ << "\" height=\""
     << height_ << "\" viewBox=\"0 0 " << width_ << " " << height_
     << "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"" << num(kFont) << "\">\n";
  os << "<rect width=\"" << width_ << "\" height=\"" << height_ << "\" fill=\"white\"/>\n";
  // Clip a little outside the frame so markers on the bounds stay whole.
  os << "<defs><clipPath id=\"@CLIP@\"><rect x=\"" << num(left_ - 5) << "\" y=\"" << num(top_ - 5)
     << "\" width=\"" << num(right_ - left_ + 10) << "\" height=\"" << num(bottom_ - top_ + 10)
     << "\"/></clipPath></defs>\n";
  if (!axes_.title.empty())
    os << text_el(width_ / 2.0, 10 + kTitleFont, "middle", xml_escape(axes_.title),
                  " font-size=\"" + num(kTitleFont) + "\" font-weight=\"bold\"");
  os << render_legend() << render_y_axis() << render_x_axis();
  os << "<g clip-path=\"url(#@CLIP@)\">\n" << data << "</g>\n";
  os << "<rect x=\"" << num(left_) << "\" y=\"" << num(top_) << "\" width=\"" << num(right_ - left_)
     << "\" height=\"" << num(bottom_ - top_) << "\" fill=\"none\" stroke=\"#444\"/>\n";
  if (!axes_.xlabel.empty()) {
    double below = height_ - 8 - (note_.empty() ? 0 : 16);
    os << text_el((left_ + right_) / 2, below - 4, "middle", xml_escape(axes_.xlabel));
  }
  if (!axes_.ylabel.empty()) {
    double cx = left_ - 9 - ytick_w_ - 10, cy = (top_ + bottom_) / 2;  // next to the tick labels
    os << text_el(cx, cy, "middle", xml_escape(axes_.ylabel),
                  " transform=\"rotate(-90 " + num(cx) + " " + num(cy) + ")\"");
  }
  if (!note_.empty())
    os << text_el(8, height_ - 8, "start", xml_escape(note_),
                  " class=\"note\" font-size=\"10\" font-style=\"italic\" fill=\"#a33\"");
  os << "</svg>\n";
  // Clip ids are global in a document (grid_svg nests charts): derive the id from the content,
  // so different charts get different ids and the output stays deterministic.
  std::string s = os.str();
  unsigned long long h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  char id[32];
  std::snprintf(id, sizeof id, "pfq-clip-%012llx", h & 0xFFFFFFFFFFFFULL);
  for (auto p = s.find("@CLIP@"); p != std::string::npos; p = s.find("@CLIP@", p)) s.replace(p, 6, id);
  return s;
}

}  // namespace pfq::plot::detail
