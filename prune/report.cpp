// report.cpp — PruneReport printing and JSON (report.h).
#include "prune/report.h"

#include <cmath>
#include <cstdio>
#include <sstream>

namespace pfq::prune {

nlohmann::json num(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

const LayerReport* PruneReport::layer(const std::string& name) const {
  for (const auto& l : layers)
    if (l.name == name) return &l;
  return nullptr;
}

std::string PruneReport::str() const {
  std::ostringstream os;
  os << "method " << method;
  if (method == "pfq") os << ", criterion " << criterion << ", border " << border;
  else os << ", target " << target;
  os << "\n";
  char line[512];
  std::snprintf(line, sizeof line, "%-28s %-9s %11s %21s %21s %s\n", "layer", "kind", "channels", "max|w'|", "4-bit step",
                "notes");
  os << line;
  for (const auto& l : layers) {
    const bool changed = l.channels_before != l.channels_after || !l.kept_constant.empty() || !l.compensation.empty();
    if (!changed) continue;
    std::string notes;
    if (!l.compensation.empty()) notes += "compensated: " + l.compensation;
    if (l.border_error > 0) notes += " (border error <= " + fmt("%.3g", l.border_error) + ")";
    if (!l.kept_constant.empty()) notes += (notes.empty() ? "" : "; ") + std::to_string(l.kept_constant.size()) + " constant kept";
    std::snprintf(line, sizeof line, "%-28s %-9s %5lld->%-5lld %9.3g->%-10.3g %9.3g->%-10.3g %s\n", l.name.c_str(), l.kind.c_str(),
                  static_cast<long long>(l.channels_before), static_cast<long long>(l.channels_after), l.max_w_before,
                  l.max_w_after, l.step4_before, l.step4_after, notes.c_str());
    os << line;
    for (const auto& r : l.removed) {
      os << "    - ch " << r.channel;
      if (std::isfinite(r.value)) os << "  a_c " << fmt("%.4g", r.value) << (r.border_map ? " (border map)" : "");
      os << "  " << (method == "pfq" ? "bound " : "score ") << fmt("%.3g", r.bound) << "  " << r.reason << "\n";
    }
    for (const auto& k : l.kept_constant) os << "    = ch " << k.channel << "  " << k.reason << "\n";
  }
  os << "removed " << removed_total << " channels";
  if (kept_constant_total) os << ", kept " << kept_constant_total << " constant channels";
  if (correction_maps) os << ", " << correction_maps << " conv(s) carry a border-correction map";
  if (border_error > 0) os << ", max border error " << fmt("%.3g", border_error);
  os << "\n";
  return os.str();
}

nlohmann::json PruneReport::to_json() const {
  nlohmann::json layers_j = nlohmann::json::array();
  for (const auto& l : layers) {
    nlohmann::json removed_j = nlohmann::json::array(), kept_j = nlohmann::json::array();
    for (const auto& r : l.removed)
      removed_j.push_back({{"channel", r.channel}, {"value", num(r.value)}, {"bound", num(r.bound)},
                           {"border_map", r.border_map}, {"reason", r.reason}});
    for (const auto& k : l.kept_constant) kept_j.push_back({{"channel", k.channel}, {"reason", k.reason}});
    layers_j.push_back({{"name", l.name},
                        {"kind", l.kind},
                        {"channels_before", l.channels_before},
                        {"channels_after", l.channels_after},
                        {"max_w_before", num(l.max_w_before)},
                        {"max_w_after", num(l.max_w_after)},
                        {"step4_before", num(l.step4_before)},
                        {"step4_after", num(l.step4_after)},
                        {"step8_before", num(l.step8_before)},
                        {"step8_after", num(l.step8_after)},
                        {"removed", removed_j},
                        {"kept_constant", kept_j},
                        {"compensation", l.compensation},
                        {"border_error", l.border_error}});
  }
  nlohmann::json j = {{"method", method},
                      {"removed_total", removed_total},
                      {"kept_constant_total", kept_constant_total},
                      {"correction_maps", correction_maps},
                      {"border_error", border_error},
                      {"layers", layers_j},
                      {"model", config}};
  if (method == "pfq") {
    j["criterion"] = criterion;
    j["border"] = border;
  } else {
    j["target"] = target;
  }
  return j;
}

}  // namespace pfq::prune
