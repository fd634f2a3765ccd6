// plot_scale.cpp — tick placement, tick labels, escaping and palette of apps/plot (see
// plot_scale.h). Tick values are computed as k * step, never by accumulation, so labels stay
// exact. Leaves out locale-aware number formatting (always '.' decimals).
#include "apps/plot/plot_scale.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>

#include "core/error.h"

namespace pfq::plot {

namespace {
constexpr double kEps = 1e-9;

// 1, 2, 5 or 10 times a power of ten, the smallest not below raw.
double nice_step(double raw) {
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double norm = raw / mag;
  double f = norm <= 1 + kEps ? 1 : norm <= 2 + kEps ? 2 : norm <= 5 + kEps ? 5 : 10;
  return f * mag;
}
}  // namespace

Ticks linear_ticks(double lo, double hi, int target, bool snap) {
  PFQ_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo <= hi,
            "plot::linear_ticks: expected finite lo <= hi, got [", lo, ", ", hi, "]");
  PFQ_CHECK(target >= 1, "plot::linear_ticks: target intervals must be >= 1, got ", target);
  double scale = std::max({1e-300, std::fabs(lo), std::fabs(hi)});
  if (hi - lo <= 1e-12 * scale) {  // degenerate range: pad around the value
    double pad = lo != 0 ? 0.1 * std::fabs(lo) : 1.0;
    lo -= pad;
    hi += pad;
  }
  Ticks t;
  t.step = nice_step((hi - lo) / target);
  if (snap) {
    lo = std::floor(lo / t.step + kEps) * t.step;
    hi = std::ceil(hi / t.step - kEps) * t.step;
  }
  t.lo = lo;
  t.hi = hi;
  auto k0 = static_cast<long long>(std::ceil(lo / t.step - kEps));
  auto k1 = static_cast<long long>(std::floor(hi / t.step + kEps));
  for (long long k = k0; k <= k1 && t.major.size() < 64; ++k) {
    double v = static_cast<double>(k) * t.step;
    t.major.push_back(v);
    t.labels.push_back(format_tick(v, t.step));
  }
  return t;
}

Ticks log_ticks(double lo, double hi, bool snap) {
  PFQ_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo > 0 && lo <= hi,
            "plot::log_ticks: expected finite 0 < lo <= hi, got [", lo, ", ", hi, "]",
            " (hint: non-positive values cannot be shown on a log axis)");
  int d0 = static_cast<int>(std::floor(std::log10(lo) + kEps));
  int d1 = static_cast<int>(std::ceil(std::log10(hi) - kEps));
  if (d1 == d0) ++d1;  // show at least one whole decade
  Ticks t;
  t.lo = snap ? std::pow(10.0, d0) : lo;
  t.hi = snap ? std::pow(10.0, d1) : hi;
  if (!snap && t.hi / t.lo < 1.0 + 1e-12) {  // fixed but degenerate bounds
    t.lo /= 2;
    t.hi *= 2;
  }
  auto inside = [&](double v) { return v >= t.lo * (1 - kEps) && v <= t.hi * (1 + kEps); };
  int ndec = d1 - d0;
  int every = ndec > 8 ? (ndec + 7) / 8 : 1;
  int decades_in = 0;
  for (int d = d0; d <= d1; ++d) decades_in += inside(std::pow(10.0, d)) ? 1 : 0;
  for (int d = d0; d <= d1; ++d) {
    double base = std::pow(10.0, d);
    if (decades_in >= 2) {
      if (!inside(base)) continue;
      if ((d - d0) % every == 0) {
        t.major.push_back(base);
        t.labels.push_back("10^" + std::to_string(d));
      } else {
        t.minor.push_back(base);
      }
    } else {  // narrow fixed range: label 1, 2, 5 x 10^d
      for (double f : {1.0, 2.0, 5.0}) {
        if (!inside(f * base)) continue;
        t.major.push_back(f * base);
        t.labels.push_back(format_tick(f * base, base));
      }
    }
    if (ndec <= 6) {
      for (int m = 2; m <= 9; ++m) {
        if (decades_in < 2 && (m == 2 || m == 5)) continue;
        if (inside(m * base)) t.minor.push_back(m * base);
      }
    }
  }
  return t;
}

std::string format_tick(double v, double step) {
  char buf[64];
  if (!std::isfinite(v)) return v != v ? "nan" : (v > 0 ? "inf" : "-inf");
  if (step > 0 && std::isfinite(step)) {
    double k = std::round(v / step);
    if (std::fabs(v / step - k) < 1e-6) v = k * step;  // snap away float noise
  }
  if (v == 0 || (step > 0 && std::fabs(v) < step * 1e-9)) return "0";
  int decimals = 0;
  if (step > 0 && std::isfinite(step)) {
    while (decimals < 12) {
      double s = step * std::pow(10.0, decimals);
      if (std::fabs(s - std::round(s)) < 1e-6 * std::max(1.0, s)) break;
      ++decimals;
    }
  }
  if (std::fabs(v) >= 1e6 || decimals > 5 || std::fabs(v) < 1e-5) {
    std::snprintf(buf, sizeof buf, "%.3g", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  }
  std::string s(buf);
  if (s.find('.') != std::string::npos && s.find('e') == std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  if (s == "-0") s = "0";
  return s;
}

std::string xml_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') break;
        out += c;
    }
  }
  return out;
}

const std::string& palette_color(std::size_t i) {
  static const std::array<std::string, 8> kOkabeIto = {"#0072B2", "#D55E00", "#009E73", "#E69F00",
                                                       "#56B4E9", "#CC79A7", "#000000", "#F0E442"};
  return kOkabeIto[i % kOkabeIto.size()];
}

}  // namespace pfq::plot
