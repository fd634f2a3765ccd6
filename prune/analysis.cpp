// analysis.cpp — per-layer BN variance and folded-weight statistics (analysis.h).
#include "prune/analysis.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

#include "prune/graph.h"
#include "prune/report.h"
#include "prune/surgery.h"

namespace pfq::prune {

namespace {
// Quantile p of sorted values, linear interpolation between order statistics (numpy's default).
double quantile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double pos = p * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

// s right-aligned in a field of `width`, after one space.
std::string col(const std::string& s, size_t width) { return " " + std::string(s.size() < width ? width - s.size() : 0, ' ') + s; }
}  // namespace

const LayerAnalysis* ModelAnalysis::layer(const std::string& name) const {
  for (const auto& l : layers)
    if (l.name == name) return &l;
  return nullptr;
}

ModelAnalysis analyze(const Module& model, const AnalysisOptions& options) {
  PFQ_CHECK(options.bits >= 2 && options.bits <= 16, "analyze: bits must be in 2..16, got ", options.bits);
  // The graph is only read here; build_graph takes a mutable model because the pruners edit it.
  ChannelGraph g = build_graph(const_cast<Module&>(model));
  ModelAnalysis a;
  a.options = options;
  std::vector<std::vector<double>> vars;
  for (const auto& p : g.producers) vars.push_back(p.bn->running_var().contiguous().to(DType::Float64).to_vector<double>());
  for (size_t u = 0; u < g.producers.size(); ++u) {
    const Producer& p = g.producers[u];
    LayerAnalysis l;
    l.name = p.name;
    l.kind = p.depthwise() ? "depthwise" : "conv";
    l.act = activation_name(p.act);
    l.residual = !p.residual.empty();
    l.channels = p.conv->out_channels;
    l.eps = p.bn->eps;
    const std::vector<double>& v = vars[u];
    std::vector<double> sorted = v;
    std::sort(sorted.begin(), sorted.end());
    if (!sorted.empty()) {
      l.var_min = sorted.front();
      l.var_q1 = quantile(sorted, 0.25);
      l.var_median = quantile(sorted, 0.5);
      l.var_q3 = quantile(sorted, 0.75);
      l.var_max = sorted.back();
    }
    std::map<int, int64_t> decades;
    for (double x : v) {
      if (x > 0) decades[static_cast<int>(std::floor(std::log10(x)))]++;
      else l.var_nonpositive++;
    }
    l.var_decades.assign(decades.begin(), decades.end());
    const int d = p.sole_depthwise_consumer();
    for (size_t c = 0; c < v.size(); ++c) {
      const auto ci = static_cast<int64_t>(c);
      if (v[c] < l.eps) l.constant_eps.push_back(ci);
      if (v[c] < FLT_MIN) l.constant_zero.push_back(ci);
      if (options.var_threshold >= 0 && v[c] < options.var_threshold) l.constant_t.push_back(ci);
      if (d >= 0 && vars[d][c] < g.producers[d].bn->eps) l.dead_via_depthwise.push_back(ci);
    }
    l.below_eps = static_cast<int64_t>(l.constant_eps.size());
    l.below_flt_min = static_cast<int64_t>(l.constant_zero.size());
    l.below_t = static_cast<int64_t>(l.constant_t.size());
    l.max_w = max_folded_weight(*p.conv, *p.bn);
    l.step4 = quant_step(l.max_w, 4);
    l.step8 = quant_step(l.max_w, 8);
    l.step = quant_step(l.max_w, options.bits);
    // Folded range over the channels var-below-eps would leave.
    const std::vector<double> s = p.bn->fold_scale();
    const std::vector<double> w = p.conv->weight().contiguous().to(DType::Float64).to_vector<double>();
    const size_t per = l.channels ? w.size() / static_cast<size_t>(l.channels) : 0;
    for (size_t i = 0; i < w.size(); ++i)
      if (!(v[i / per] < l.eps)) l.max_w_without_constant = std::max(l.max_w_without_constant, std::abs(s[i / per] * w[i]));
    a.layers.push_back(std::move(l));
  }
  return a;
}

void ModelAnalysis::attach(const PruneReport& r) {
  PFQ_CHECK(r.layers.size() == layers.size(), "ModelAnalysis::attach: the report has ", r.layers.size(), " layers, the analysis ",
            layers.size(), " (not a pass over the analysed model)");
  for (size_t i = 0; i < layers.size(); ++i) {
    const LayerReport& lr = r.layers[i];
    PFQ_CHECK(lr.name == layers[i].name, "ModelAnalysis::attach: layer ", i, " is '", lr.name, "' in the report, '",
              layers[i].name, "' in the analysis");
    layers[i].channels_after = lr.channels_after;
    layers[i].max_w_after = lr.max_w_after;
    layers[i].step_after = quant_step(lr.max_w_after, options.bits);
  }
  pruned_by = r.method;
  if (r.method == "pfq") pruned_by += " (" + r.criterion + ", border " + r.border + ")";
  removed_total = r.removed_total;
  kept_constant_total = r.kept_constant_total;
}

std::string ModelAnalysis::str() const {
  std::ostringstream os;
  const bool t = options.var_threshold >= 0;
  const std::string tcol = t ? "<" + fmt("%g", options.var_threshold) : "";
  char line[512];
  os << "BN running variance per layer; channels constant under var-zero (< FLT_MIN), var-below-eps (< the BN's eps)"
     << (t ? ", var-below=" + fmt("%g", options.var_threshold) : "") << "; dead = rule 3.2 via a depthwise consumer\n";
  std::snprintf(line, sizeof line, "%-26s %-9s %5s %9s %9s %9s %9s %9s %8s %6s %6s%s %5s\n", "layer", "kind", "ch", "min", "q1",
                "median", "q3", "max", "eps", "zero", "<eps", t ? col(tcol, 7).c_str() : "", "dead");
  os << line;
  for (const auto& l : layers) {
    std::snprintf(line, sizeof line, "%-26s %-9s %5lld %9.3g %9.3g %9.3g %9.3g %9.3g %8.2g %6lld %6lld%s %5zu%s\n", l.name.c_str(),
                  l.kind.c_str(), static_cast<long long>(l.channels), l.var_min, l.var_q1, l.var_median, l.var_q3, l.var_max, l.eps,
                  static_cast<long long>(l.below_flt_min), static_cast<long long>(l.below_eps),
                  t ? col(std::to_string(l.below_t), 7).c_str() : "", l.dead_via_depthwise.size(),
                  l.residual ? "  (residual)" : "");
    os << line;
  }
  const bool after = !pruned_by.empty();
  const std::string sb = "step@" + std::to_string(options.bits) + "b";
  os << "\nBN-folded weights w' = gamma * w / sqrt(var + eps): max |w'| and the per-layer " << options.bits
     << "-bit step max|w'| / " << ((1 << (options.bits - 1)) - 1);
  if (after) os << "; after = " << pruned_by;
  os << "\n";
  std::snprintf(line, sizeof line, "%-26s %-9s %10s %10s %10s", "layer", "kind", "max|w'|", sb.c_str(), "w/o <eps");
  os << line;
  if (after) {
    std::snprintf(line, sizeof line, " %11s %10s %10s %7s", "ch after", "max after", (sb + " aft").c_str(), "ratio");
    os << line;
  }
  os << "\n";
  for (const auto& l : layers) {
    std::snprintf(line, sizeof line, "%-26s %-9s %10.4g %10.4g %10.4g", l.name.c_str(), l.kind.c_str(), l.max_w, l.step,
                  l.max_w_without_constant);
    os << line;
    if (after && l.channels_after >= 0) {
      const std::string ch = std::to_string(l.channels) + "->" + std::to_string(l.channels_after);
      std::snprintf(line, sizeof line, " %11s %10.4g %10.4g %7s", ch.c_str(), l.max_w_after, l.step_after,
                    l.max_w_after > 0 ? fmt("%.3gx", l.max_w / l.max_w_after).c_str() : "-");
      os << line;
    }
    os << "\n";
  }
  if (after)
    os << pruned_by << ": removes " << removed_total << " channels"
       << (kept_constant_total ? ", keeps " + std::to_string(kept_constant_total) + " constant" : std::string()) << "\n";
  return os.str();
}

nlohmann::json ModelAnalysis::to_json() const {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& l : layers) {
    nlohmann::json hist = nlohmann::json::array();
    for (const auto& [e, n] : l.var_decades) hist.push_back({{"lo", std::pow(10.0, e)}, {"hi", std::pow(10.0, e + 1)}, {"count", n}});
    nlohmann::json j = {{"name", l.name},
                        {"kind", l.kind},
                        {"act", l.act},
                        {"residual", l.residual},
                        {"channels", l.channels},
                        {"eps", l.eps},
                        {"var_min", num(l.var_min)},
                        {"var_q1", num(l.var_q1)},
                        {"var_median", num(l.var_median)},
                        {"var_q3", num(l.var_q3)},
                        {"var_max", num(l.var_max)},
                        {"var_histogram", hist},
                        {"var_nonpositive", l.var_nonpositive},
                        {"below_eps", l.below_eps},
                        {"below_flt_min", l.below_flt_min},
                        {"constant_var_below_eps", l.constant_eps},
                        {"constant_var_zero", l.constant_zero},
                        {"dead_via_depthwise", l.dead_via_depthwise},
                        {"max_w", num(l.max_w)},
                        {"max_w_without_constant", num(l.max_w_without_constant)},
                        {"step", num(l.step)},
                        {"step4", num(l.step4)},
                        {"step8", num(l.step8)}};
    if (options.var_threshold >= 0) {
      j["below_t"] = l.below_t;
      j["constant_var_below_t"] = l.constant_t;
    }
    if (l.channels_after >= 0) {
      j["channels_after"] = l.channels_after;
      j["max_w_after"] = num(l.max_w_after);
      j["step_after"] = num(l.step_after);
    }
    arr.push_back(j);
  }
  nlohmann::json j = {{"bits", options.bits}, {"layers", arr}};
  if (options.var_threshold >= 0) j["var_threshold"] = options.var_threshold;
  if (!pruned_by.empty()) j["after"] = {{"pruned_by", pruned_by}, {"removed_total", removed_total}, {"kept_constant_total", kept_constant_total}};
  return j;
}

}  // namespace pfq::prune
