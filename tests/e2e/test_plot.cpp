// test_plot.cpp — apps/plot: tick placement and labels (1-2-5 linear, log decades), XML escaping,
// and the SVG charts: well-formed (checked by a small stack parser below), escaped title/labels/
// legend, NaN gaps as separate path segments, log-axis handling of non-positive values, bars from
// the log floor, grid composition and file writing; run curves (apps/curves.h): per-step
// training lines, smoothing. Leaves out pixel checks (rendered by hand).
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "apps/plot/plot_scale.h"
#include "apps/plot/svg_plot.h"
#include "core/error.h"

using namespace pfq::plot;

namespace {
const double kNaN = std::numeric_limits<double>::quiet_NaN();

bool valid_entities(const std::string& s) {
  for (std::size_t p = s.find('&'); p != std::string::npos; p = s.find('&', p + 1)) {
    bool ok = false;
    for (const char* e : {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"})
      ok |= s.compare(p, std::strlen(e), e) == 0;
    if (!ok) return false;
  }
  return true;
}

// Minimal XML well-formedness: balanced, properly nested tags, quoted attributes, no raw '<' or
// stray '&' in text or values, exactly one root element named svg.
std::string xml_error(const std::string& doc) {
  std::vector<std::string> stack;
  int roots = 0;
  std::size_t p = 0;
  while (p < doc.size()) {
    std::size_t lt = doc.find('<', p);
    std::string text = doc.substr(p, lt == std::string::npos ? std::string::npos : lt - p);
    if (!valid_entities(text)) return "bad entity in text: " + text;
    if (stack.empty() && text.find_first_not_of(" \n\r\t") != std::string::npos) return "text outside root";
    if (lt == std::string::npos) break;
    if (doc.compare(lt, 2, "<?") == 0) {
      p = doc.find("?>", lt);
      if (p == std::string::npos) return "unterminated <?";
      p += 2;
      continue;
    }
    bool closing = doc.compare(lt, 2, "</") == 0;
    std::size_t q = lt + (closing ? 2 : 1), n0 = q;
    while (q < doc.size() &&
           (std::isalnum(static_cast<unsigned char>(doc[q])) || doc[q] == '-' || doc[q] == ':'))
      ++q;
    std::string name = doc.substr(n0, q - n0);
    if (name.empty()) return "empty tag name at " + std::to_string(lt);
    if (closing) {
      if (stack.empty() || stack.back() != name) return "unbalanced </" + name + ">";
      stack.pop_back();
      if (q >= doc.size() || doc[q] != '>') return "bad closing tag " + name;
      p = q + 1;
      continue;
    }
    bool self_close = false;
    while (true) {  // attributes
      while (q < doc.size() && std::isspace(static_cast<unsigned char>(doc[q]))) ++q;
      if (q >= doc.size()) return "unterminated tag " + name;
      if (doc[q] == '>') break;
      if (doc.compare(q, 2, "/>") == 0) {
        self_close = true;
        ++q;
        break;
      }
      std::size_t eq = doc.find('=', q);
      if (eq == std::string::npos || doc[eq + 1] != '"') return "unquoted attribute in " + name;
      std::size_t end = doc.find('"', eq + 2);
      if (end == std::string::npos) return "unterminated attribute in " + name;
      std::string value = doc.substr(eq + 2, end - eq - 2);
      if (value.find('<') != std::string::npos || !valid_entities(value))
        return "bad attribute value " + value;
      q = end + 1;
    }
    if (stack.empty()) {
      ++roots;
      if (name != "svg") return "root is " + name;
    }
    if (!self_close) stack.push_back(name);
    p = q + 1;
  }
  if (!stack.empty()) return "unclosed <" + stack.back() + ">";
  if (roots != 1) return "expected one root, got " + std::to_string(roots);
  return "";
}

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

// Text contents (tags stripped) of the <text> elements inside <g class="cls">.
std::vector<std::string> texts_in(const std::string& svg, const std::string& cls) {
  std::vector<std::string> out;
  std::size_t g = svg.find("<g class=\"" + cls + "\"");
  if (g == std::string::npos) return out;
  std::size_t end = svg.find("</g>", g);
  for (std::size_t t = svg.find("<text", g); t < end; t = svg.find("<text", t + 1)) {
    std::size_t a = svg.find('>', t) + 1, b = svg.find("</text>", a);
    std::string s, inner = svg.substr(a, b - a);
    bool in_tag = false;
    for (char c : inner) {
      if (c == '<') in_tag = true;
      if (!in_tag) s += c;
      if (c == '>') in_tag = false;
    }
    out.push_back(s);
  }
  return out;
}

// d attributes of the <path> elements inside the series groups.
std::vector<std::string> series_paths(const std::string& svg) {
  std::vector<std::string> out;
  for (std::size_t g = svg.find("<g class=\"series\""); g != std::string::npos;
       g = svg.find("<g class=\"series\"", g + 1)) {
    std::size_t end = svg.find("</g>", g), p = svg.find("<path d=\"", g);
    if (p < end && svg.compare(p, 10, "<path d=\"M") == 0 &&
        svg.find("fill=\"none\"", p) < svg.find('>', p)) {
      p += 9;
      out.push_back(svg.substr(p, svg.find('"', p) - p));
    }
  }
  return out;
}

// All the series groups (data layer) concatenated, legend and axes excluded.
std::string series_xml(const std::string& svg) {
  std::string out;
  for (std::size_t g = svg.find("<g class=\"series\""); g != std::string::npos;
       g = svg.find("<g class=\"series\"", g + 1))
    out += svg.substr(g, svg.find("</g>", g) - g);
  return out;
}

double attr_of(const std::string& el, const std::string& name) {
  std::size_t a = el.find(" " + name + "=\"") + name.size() + 3;
  return std::stod(el.substr(a, el.find('"', a) - a));
}

Axes titled(const std::string& title, const std::string& xlabel = "", const std::string& ylabel = "") {
  Axes ax;
  ax.title = title;
  ax.xlabel = xlabel;
  ax.ylabel = ylabel;
  return ax;
}

Series bars(const std::string& label, std::vector<double> y) {
  return Series{label, {}, std::move(y), "line", ""};
}

Series line(const std::string& label, std::vector<double> x, std::vector<double> y,
            std::string style = "line") {
  return Series{label, std::move(x), std::move(y), std::move(style), ""};
}
}  // namespace

TEST_CASE("plot: the well-formedness checker rejects broken documents") {
  CHECK(xml_error("<svg xmlns=\"a\"><g><text>a &amp; b</text></g></svg>") == "");
  CHECK(xml_error("<svg><g></svg>") != "");
  CHECK(xml_error("<svg><text>a < b</text></svg>") != "");
  CHECK(xml_error("<svg><text>a & b</text></svg>") != "");
  CHECK(xml_error("<svg a=b></svg>") != "");
  CHECK(xml_error("<svg></svg><svg></svg>") != "");
}

TEST_CASE("plot: linear ticks use 1-2-5 steps and exact labels") {
  Ticks t = linear_ticks(0, 1);
  CHECK(t.step == doctest::Approx(0.2));
  CHECK(t.labels == std::vector<std::string>{"0", "0.2", "0.4", "0.6", "0.8", "1"});
  CHECK(t.lo == 0);
  CHECK(t.hi == doctest::Approx(1));
  Ticks u = linear_ticks(0.23, 2.3);  // snapped outwards to the step 0.5
  CHECK(u.lo == 0);
  CHECK(u.hi == doctest::Approx(2.5));
  CHECK(u.labels == std::vector<std::string>{"0", "0.5", "1", "1.5", "2", "2.5"});
  Ticks v = linear_ticks(-37, 112, 5, false);  // fixed bounds, ticks inside
  CHECK(v.lo == -37);
  CHECK(v.hi == 112);
  CHECK(v.labels == std::vector<std::string>{"0", "50", "100"});
  Ticks d = linear_ticks(5, 5);  // degenerate: padded around the value
  CHECK(d.lo < 5);
  CHECK(d.hi > 5);
  CHECK(d.major.size() >= 2);
  Ticks z = linear_ticks(0, 0);
  CHECK(z.lo <= -1);
  CHECK(z.hi >= 1);
  CHECK_THROWS_AS(linear_ticks(1, 0), pfq::Error);
  CHECK_THROWS_AS(linear_ticks(0, kNaN), pfq::Error);
}

TEST_CASE("plot: log ticks label decades") {
  Ticks t = log_ticks(1e-3, 1e2);
  CHECK(t.lo == doctest::Approx(1e-3));
  CHECK(t.hi == doctest::Approx(1e2));
  CHECK(t.labels == std::vector<std::string>{"10^-3", "10^-2", "10^-1", "10^0", "10^1", "10^2"});
  CHECK(std::count_if(t.minor.begin(), t.minor.end(), [](double m) { return std::fabs(m - 2e-3) < 1e-12; }) ==
        1);
  Ticks s = log_ticks(0.3, 42);  // snapped to whole decades
  CHECK(s.lo == doctest::Approx(0.1));
  CHECK(s.hi == doctest::Approx(100));
  Ticks w = log_ticks(1e-12, 1e12);  // 24 decades: every 3rd labelled
  CHECK(w.labels.size() <= 9);
  CHECK(w.labels.front() == "10^-12");
  Ticks n = log_ticks(2, 50, false);  // one decade inside fixed bounds: 1-2-5 labels
  CHECK(n.labels == std::vector<std::string>{"2", "5", "10", "20", "50"});
  CHECK_THROWS_AS(log_ticks(0, 1), pfq::Error);
  CHECK_THROWS_AS(log_ticks(-1, 1), pfq::Error);
}

TEST_CASE("plot: tick formatting and escaping") {
  CHECK(format_tick(0.30000000000000004, 0.1) == "0.3");
  CHECK(format_tick(-1e-17, 0.1) == "0");
  CHECK(format_tick(2.5, 0.5) == "2.5");
  CHECK(format_tick(1e7, 1e6) == "1e+07");
  CHECK(format_tick(0.00002, 0.00001) == "0.00002");
  CHECK(format_tick(0.000002, 0.000001) == "2e-06");
  CHECK(xml_escape("a<b & \"c\" 'd'>") == "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;");
  CHECK(xml_escape(std::string("x\x01y")) == "xy");
  CHECK(palette_color(0) != palette_color(1));
  CHECK(palette_color(0) == palette_color(8));
}

TEST_CASE("plot: line chart is well-formed SVG with escaped text, ticks and legend") {
  Axes ax;
  ax.title = "Loss <run 1> & \"best\"";
  ax.xlabel = "epoch";
  ax.ylabel = "acc & loss";
  ax.ymin = 0;
  ax.ymax = 1;
  std::string svg = line_chart_svg(ax, {line("without PfQ", {1, 2, 3}, {0.5, 0.7, 0.8}),
                                        line("with <PfQ>", {1, 2, 3}, {0.4, 0.6, 0.9}, "line+markers")});
  CHECK(xml_error(svg) == "");
  CHECK(svg.find("xmlns=\"http://www.w3.org/2000/svg\"") != std::string::npos);
  CHECK(svg.find("Loss &lt;run 1&gt; &amp; &quot;best&quot;") != std::string::npos);
  CHECK(svg.find("<run 1>") == std::string::npos);
  CHECK(svg.find(">acc &amp; loss<") != std::string::npos);
  CHECK(texts_in(svg, "legend") == std::vector<std::string>{"without PfQ", "with &lt;PfQ&gt;"});
  CHECK(texts_in(svg, "ytick") == std::vector<std::string>{"0", "0.2", "0.4", "0.6", "0.8", "1"});
  CHECK(texts_in(svg, "xtick").front() == "1");
  CHECK(series_paths(svg).size() == 2);
  CHECK(count(svg, "<rect x=") >= 3);  // frame, clip rect, square markers of series 2
  CHECK(count(svg, "<text") >= 2 + 6 + 3);
}

TEST_CASE("plot: NaN points split a line into separate path segments") {
  std::string whole = line_chart_svg(Axes{}, {line("a", {}, {1, 2, 3, 4, 5})});
  std::string gappy = line_chart_svg(Axes{}, {line("a", {}, {1, 2, kNaN, 4, 5})});
  std::string inf_x =
      line_chart_svg(Axes{}, {line("a", {0, 1, INFINITY, 3, 4, kNaN, 6, 7}, {1, 2, 3, 4, 5, 6, 7, 8})});
  CHECK(xml_error(gappy) == "");
  REQUIRE(series_paths(whole).size() == 1);
  REQUIRE(series_paths(gappy).size() == 1);
  REQUIRE(series_paths(inf_x).size() == 1);
  CHECK(count(series_paths(whole)[0], "M") == 1);
  CHECK(count(series_paths(gappy)[0], "M") == 2);
  CHECK(count(series_paths(inf_x)[0], "M") == 3);
  CHECK(gappy.find("nan") == std::string::npos);
}

TEST_CASE("plot: log axis labels decades and skips non-positive values with a note") {
  Axes ax;
  ax.log_y = true;
  std::string svg = line_chart_svg(ax, {line("w", {}, {1e-3, 0.5, 0, -2, 1e2}, "markers")});
  CHECK(xml_error(svg) == "");
  CHECK(texts_in(svg, "ytick") == std::vector<std::string>{"10-3", "10-2", "10-1", "100", "101", "102"});
  CHECK(svg.find(">10<tspan") != std::string::npos);
  CHECK(svg.find("2 non-positive values not shown (log scale)") != std::string::npos);
  CHECK(count(series_xml(svg), "<circle") == 3);
  CHECK(count(svg, "<circle") == 4);  // + the legend swatch
  std::string clean = line_chart_svg(ax, {line("w", {}, {1e-3, 1e2})});
  CHECK(clean.find("not shown") == std::string::npos);
  ax.ymin = 0;
  CHECK_THROWS_AS(line_chart_svg(ax, {line("w", {}, {1, 2})}), pfq::Error);
}

TEST_CASE("plot: degenerate inputs still give valid charts") {
  std::string empty = line_chart_svg(titled("t", "x", "y"), {line("nothing", {}, {})});
  CHECK(xml_error(empty) == "");
  CHECK(empty.find("no finite data to plot") != std::string::npos);
  CHECK(xml_error(line_chart_svg(Axes{}, {})) == "");
  std::string single = line_chart_svg(Axes{}, {line("one", {3}, {5})});
  CHECK(xml_error(single) == "");
  CHECK(count(series_xml(single), "<circle") == 1);  // a lone point is drawn as a dot
  std::string flat = line_chart_svg(Axes{}, {line("flat", {}, {2, 2, 2})});
  CHECK(xml_error(flat) == "");
  auto labels = texts_in(flat, "ytick");
  REQUIRE(labels.size() >= 2);
  CHECK(std::stod(labels.front()) < 2);
  CHECK(std::stod(labels.back()) > 2);
  CHECK_THROWS_AS(line_chart_svg(Axes{}, {line("bad", {1, 2}, {1})}), pfq::Error);
  CHECK_THROWS_AS(line_chart_svg(Axes{}, {line("bad", {}, {1}, "dots")}), pfq::Error);
  CHECK_THROWS_AS(line_chart_svg(Axes{}, {}, 50, 50), pfq::Error);
  Axes inverted;
  inverted.ymin = 2;
  inverted.ymax = 1;
  CHECK_THROWS_AS(line_chart_svg(inverted, {}), pfq::Error);
}

TEST_CASE("plot: categorical labels rotate only when they do not fit") {
  Axes ax;
  ax.xtick_labels = {"a", "b", "c"};
  std::string short_labels = line_chart_svg(ax, {line("s", {}, {1, 2, 3})});
  CHECK(short_labels.find("rotate(-45") == std::string::npos);
  CHECK(texts_in(short_labels, "xtick") == std::vector<std::string>{"a", "b", "c"});
  for (int i = 0; i < 20; ++i) ax.xtick_labels.push_back("layer" + std::to_string(i) + ".0.downsample.0");
  std::string long_labels = line_chart_svg(ax, {line("s", {}, std::vector<double>(23, 1.0))});
  CHECK(xml_error(long_labels) == "");
  CHECK(long_labels.find("rotate(-45") != std::string::npos);
  CHECK(long_labels.find(">layer7.0.downsample.0<") != std::string::npos);
}

TEST_CASE("plot: grouped bars, log bars start at the axis floor") {
  Axes ax;
  ax.log_y = true;
  ax.title = "max |w'|";
  std::vector<std::string> cats = {"conv1", "layer1.0.conv1", "fc<&\">"};
  std::string svg = bar_chart_svg(ax, cats, {bars("before", {30, 100, 2}), bars("after", {0.3, 0, kNaN})});
  CHECK(xml_error(svg) == "");
  CHECK(svg.find("max |w&apos;|") != std::string::npos);
  CHECK(svg.find(">fc&lt;&amp;&quot;&gt;<") != std::string::npos);
  CHECK(svg.find("1 non-positive value not shown (log scale)") != std::string::npos);
  CHECK(texts_in(svg, "legend") == std::vector<std::string>{"before", "after"});
  std::vector<double> bottoms;
  for (std::size_t g = svg.find("<g class=\"series\""); g != std::string::npos;
       g = svg.find("<g class=\"series\"", g + 1)) {
    std::size_t end = svg.find("</g>", g);
    for (std::size_t r = svg.find("<rect", g); r < end; r = svg.find("<rect", r + 1)) {
      std::string el = svg.substr(r, svg.find("/>", r) - r);
      bottoms.push_back(attr_of(el, "y") + attr_of(el, "height"));
    }
  }
  REQUIRE(bottoms.size() == 4);  // 3 before + 1 after (0 and NaN skipped)
  for (double b : bottoms) CHECK(b == doctest::Approx(bottoms[0]).epsilon(0.002));
  CHECK(texts_in(svg, "ytick").front() == "10-1");
  CHECK_THROWS_AS(bar_chart_svg(ax, cats, {bars("short", {1, 2})}), pfq::Error);
  CHECK_THROWS_AS(bar_chart_svg(ax, {}, {}), pfq::Error);
  std::string lin = bar_chart_svg(Axes{}, {"a", "b"}, {bars("", {-1, 3})});
  CHECK(xml_error(lin) == "");
  CHECK(svg.find("class=\"legend\"") != std::string::npos);
  CHECK(lin.find("class=\"legend\"") == std::string::npos);  // unlabelled group: no legend
  CHECK(texts_in(lin, "ytick").front() == "-1");
}

TEST_CASE("plot: grid composes panels and files are written") {
  std::string a = line_chart_svg(titled("loss"), {line("a", {}, {3, 2, 1})});
  std::string b = line_chart_svg(titled("accuracy"), {line("a", {}, {0.1, 0.5, 0.9})}, 400, 300);
  std::string g = grid_svg({a, b, a}, 2);
  CHECK(xml_error(g) == "");
  CHECK(g.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"1440\" height=\"840\"",
                0) == 0);
  CHECK(count(g, "<svg ") == 4);
  CHECK(g.find("<svg x=\"880\" y=\"60\" xmlns=") != std::string::npos);  // 400x300 centred in cell 2
  CHECK(g.find("<svg x=\"0\" y=\"420\" xmlns=") != std::string::npos);
  auto clip_id = [](const std::string& s) {
    std::size_t p = s.find("clipPath id=\"") + 13;
    return s.substr(p, s.find('"', p) - p);
  };
  CHECK(clip_id(a) != clip_id(b));
  CHECK(clip_id(a) == clip_id(line_chart_svg(titled("loss"), {line("a", {}, {3, 2, 1})})));  // deterministic
  CHECK_THROWS_AS(grid_svg({}, 2), pfq::Error);
  CHECK_THROWS_AS(grid_svg({a}, 0), pfq::Error);
  CHECK_THROWS_AS(grid_svg({"<g/>"}, 1), pfq::Error);

  auto dir = std::filesystem::temp_directory_path() / ("pfq-plot-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string path = (dir / "grid.svg").string();
  write_svg(path, g);
  std::ifstream in(path);
  std::stringstream read;
  read << in.rdbuf();
  CHECK(read.str() == g);
  CHECK_THROWS_AS(write_svg((dir / "missing" / "x.svg").string(), g), pfq::Error);
  std::filesystem::remove_all(dir);
}

#include "apps/curves.h"
#include "apps/metrics.h"
#include "apps/workflow.h"

TEST_CASE("plot: curves of a diverged run (non-finite loss written as null) are drawn with a gap") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("pfq-plot-diverged-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  {
    pfq::app::MetricsLog log(dir.string(), "metrics");
    log.append({{"epoch", 1}, {"train_loss", 0.5}, {"train_acc", 80.0}, {"test_loss", 0.4}, {"test_top1", 85.0}});
    log.append({{"epoch", 2}, {"train_loss", kNaN}, {"train_acc", 10.0}, {"test_loss", kNaN}, {"test_top1", 10.0}});
  }
  auto rows = pfq::app::MetricsLog(dir.string(), "metrics").rows();
  REQUIRE(rows.size() == 2);
  CHECK(rows[1]["train_loss"].is_null());  // how nlohmann::json writes NaN
  CHECK(std::isnan(pfq::app::MetricsLog::number(rows[1], "train_loss")));
  CHECK(std::isnan(pfq::app::MetricsLog::number(rows[1], "no_such_key")));
  CHECK(pfq::app::MetricsLog::number(rows[0], "train_loss") == 0.5);
  pfq::app::plot_curves(dir.string(), "diverged");
  CHECK(fs::file_size(dir / "curves.svg") > 0);
  fs::remove_all(dir);
}

TEST_CASE("plot: smoothing is a bias-corrected trailing average that skips NaN") {
  const std::vector<double> y{1, kNaN, 3, 3};
  CHECK(pfq::app::smooth(y, 1).size() == 4);
  CHECK(pfq::app::smooth(y, 1)[2] == 3);  // window <= 1: unchanged
  const std::vector<double> s = pfq::app::smooth(y, 2);  // weight 1/2 per step back
  CHECK(s[0] == 1);
  CHECK(std::isnan(s[1]));
  CHECK(s[2] == doctest::Approx((0.5 * 1 + 3) / 1.5));
  CHECK(s[3] == doctest::Approx((0.25 * 1 + 0.5 * 3 + 3) / 1.75));
  CHECK(pfq::app::smoothing_window(10) == 1);
  CHECK(pfq::app::smoothing_window(400) == 20);
  CHECK(pfq::app::smoothing_window(1000000) == 50);
}

TEST_CASE("plot: a one-epoch run's curves draw every training step (smoothed) with the test point") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("pfq-plot-steps-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  pfq::app::MetricsLog(dir.string(), "metrics")
      .append({{"epoch", 1}, {"train_loss", 1.2}, {"train_acc", 60.0}, {"test_loss", 0.9}, {"test_top1", 70.0}});
  std::vector<nlohmann::ordered_json> steps;
  for (int i = 0; i < 40; ++i)
    steps.push_back({{"step", i + 1}, {"epoch", (i + 1) / 40.0}, {"lr", 0.01}, {"loss", 2.0 - i * 0.04}, {"acc", 20.0 + i}});
  pfq::app::MetricsLog(dir.string(), "steps").append_rows(steps);
  pfq::app::plot_curves(dir.string(), "one epoch");
  std::ifstream in(dir / "curves.svg");
  const std::string svg{std::istreambuf_iterator<char>(in), {}};
  CHECK(xml_error(svg) == "");
  // Loss panel then accuracy panel, each: the training line through the 40 steps ("M x,y Lx,y x,y
  // ..."), then the test series, a single point drawn as a marker (no path).
  const std::vector<std::string> paths = series_paths(svg);
  REQUIRE(paths.size() == 2);
  for (const auto& p : paths) {
    CHECK(count(p, "M") == 1);
    CHECK(count(p, ",") == 40);
  }
  CHECK(svg.find("train (per step, smoothed)") != std::string::npos);
  CHECK(svg.find("test (per epoch)") != std::string::npos);
  // Two runs overlaid (the workflow's comparison): each run's name in the legend, four lines.
  const pfq::app::RunCurves c = pfq::app::read_run_curves(dir.string());
  REQUIRE(c.step_x.size() == 40);
  const std::string both = pfq::app::curves_svg("fine-tune", {{"without PfQ", c}, {"with PfQ", c}});
  CHECK(xml_error(both) == "");
  CHECK(series_paths(both).size() == 4);
  CHECK(both.find("without PfQ: train (per step, smoothed)") != std::string::npos);
  CHECK(both.find("with PfQ: test (per epoch)") != std::string::npos);
  fs::remove_all(dir);
}
