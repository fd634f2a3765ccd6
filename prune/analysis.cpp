// analysis.cpp — per-layer BN variance and folded-weight statistics (analysis.h).
#include "prune/analysis.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "prune/graph.h"
#include "prune/surgery.h"

namespace pfq::prune {

const LayerAnalysis* ModelAnalysis::layer(const std::string& name) const {
  for (const auto& l : layers)
    if (l.name == name) return &l;
  return nullptr;
}

ModelAnalysis analyze(const Module& model) {
  // The graph is only read here; build_graph takes a mutable model because the pruners edit it.
  ChannelGraph g = build_graph(const_cast<Module&>(model));
  ModelAnalysis a;
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
      l.var_max = sorted.back();
      const size_t n = sorted.size();
      l.var_median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    }
    const int d = p.sole_depthwise_consumer();
    for (size_t c = 0; c < v.size(); ++c) {
      const auto ci = static_cast<int64_t>(c);
      if (v[c] < l.eps) l.constant_eps.push_back(ci);
      if (v[c] < FLT_MIN) l.constant_zero.push_back(ci);
      if (d >= 0 && vars[d][c] < g.producers[d].bn->eps) l.dead_via_depthwise.push_back(ci);
    }
    l.below_eps = static_cast<int64_t>(l.constant_eps.size());
    l.below_flt_min = static_cast<int64_t>(l.constant_zero.size());
    l.max_w = max_folded_weight(*p.conv, *p.bn);
    l.step4 = quant_step(l.max_w, 4);
    l.step8 = quant_step(l.max_w, 8);
    // Folded range over the channels var-below-eps would leave.
    const std::vector<double> s = bn_scale(*p.bn);
    const std::vector<double> w = p.conv->weight().contiguous().to(DType::Float64).to_vector<double>();
    const size_t per = l.channels ? w.size() / static_cast<size_t>(l.channels) : 0;
    for (size_t i = 0; i < w.size(); ++i)
      if (!(v[i / per] < l.eps)) l.max_w_without_constant = std::max(l.max_w_without_constant, std::abs(s[i / per] * w[i]));
    a.layers.push_back(std::move(l));
  }
  return a;
}

std::string ModelAnalysis::str() const {
  std::ostringstream os;
  char line[512];
  std::snprintf(line, sizeof line, "%-28s %-9s %5s %-29s %5s %5s %5s %10s %10s %10s %10s\n", "layer", "kind", "ch",
                "running_var min/median/max", "<eps", "<FLT", "dead", "max|w'|", "w/o const", "step@4b", "step@8b");
  os << line;
  for (const auto& l : layers) {
    char var[64];
    std::snprintf(var, sizeof var, "%.2g/%.2g/%.2g", l.var_min, l.var_median, l.var_max);
    std::snprintf(line, sizeof line, "%-28s %-9s %5lld %-29s %5lld %5lld %5zu %10.4g %10.4g %10.4g %10.4g%s\n", l.name.c_str(),
                  l.kind.c_str(), static_cast<long long>(l.channels), var, static_cast<long long>(l.below_eps),
                  static_cast<long long>(l.below_flt_min), l.dead_via_depthwise.size(), l.max_w, l.max_w_without_constant,
                  l.step4, l.step8, l.residual ? "  (residual)" : "");
    os << line;
  }
  return os.str();
}

nlohmann::json ModelAnalysis::to_json() const {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& l : layers)
    arr.push_back({{"name", l.name},
                   {"kind", l.kind},
                   {"act", l.act},
                   {"residual", l.residual},
                   {"channels", l.channels},
                   {"eps", l.eps},
                   {"var_min", l.var_min},
                   {"var_median", l.var_median},
                   {"var_max", l.var_max},
                   {"below_eps", l.below_eps},
                   {"below_flt_min", l.below_flt_min},
                   {"constant_var_below_eps", l.constant_eps},
                   {"constant_var_zero", l.constant_zero},
                   {"dead_via_depthwise", l.dead_via_depthwise},
                   {"max_w", l.max_w},
                   {"max_w_without_constant", l.max_w_without_constant},
                   {"step4", l.step4},
                   {"step8", l.step8}});
  return {{"layers", arr}};
}

}  // namespace pfq::prune
