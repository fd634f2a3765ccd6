// summary.cpp — shape-propagated model summaries (summary.h).
#include "layers/summary.h"

#include <array>
#include <cstdio>
#include <sstream>

namespace pfq {

namespace {

void visit(const Module& m, const std::string& name, int depth, const Shape& in, std::vector<SummaryRow>& rows) {
  SummaryRow r;
  r.name = name;
  r.type = m.type_name();
  r.depth = depth;
  r.leaf = m.named_children().empty();
  r.input_shape = in;
  r.output_shape = m.output_shape(in);
  r.params = m.num_parameters();
  r.macs = m.macs(in);
  rows.push_back(r);
  for (const auto& [child, shape] : m.child_input_shapes(in)) visit(*m.child(child), join_name(name, child), depth + 1, shape, rows);
}

std::string with_commas(int64_t v) {
  std::string s = std::to_string(v < 0 ? -v : v), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return v < 0 ? "-" + out : out;
}

std::string pad(const std::string& s, size_t w, bool right = false) {
  if (s.size() >= w) return s;
  return right ? std::string(w - s.size(), ' ') + s : s + std::string(w - s.size(), ' ');
}

}  // namespace

ModelSummary summarize(const Module& model, const Shape& input_shape) {
  ModelSummary s;
  s.input_shape = input_shape;
  visit(model, "", 0, input_shape, s.rows);
  s.output_shape = s.rows.front().output_shape;
  s.total_macs = s.rows.front().macs;
  for (const auto& [n, t] : model.named_parameters()) {
    s.total_params += t.numel();
    if (t.requires_grad()) s.trainable_params += t.numel();
  }
  return s;
}

std::string ModelSummary::str(int max_depth) const {
  std::vector<std::array<std::string, 5>> cells;
  cells.push_back({"Layer", "Type", "Output shape", "Params", "MACs"});
  for (const auto& r : rows) {
    if (r.depth == 0 || (max_depth >= 0 && r.depth > max_depth)) continue;
    cells.push_back({std::string(2 * (r.depth - 1), ' ') + r.name, r.type, shape_str(r.output_shape), with_commas(r.params),
                     with_commas(r.macs)});
  }
  std::array<size_t, 5> w{};
  for (const auto& c : cells)
    for (size_t i = 0; i < 5; ++i) w[i] = std::max(w[i], c[i].size());
  std::ostringstream os;
  size_t total_w = 0;
  for (size_t i = 0; i < 5; ++i) total_w += w[i] + 2;
  for (size_t k = 0; k < cells.size(); ++k) {
    for (size_t i = 0; i < 5; ++i) os << pad(cells[k][i], w[i], i >= 3) << (i < 4 ? "  " : "\n");
    if (k == 0) os << std::string(total_w, '-') << "\n";
  }
  os << std::string(total_w, '-') << "\n";
  os << "Input shape: " << shape_str(input_shape) << "   Output shape: " << shape_str(output_shape) << "\n";
  os << "Total params: " << with_commas(total_params) << " (trainable " << with_commas(trainable_params) << ")\n";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(total_macs) / 1e6);
  os << "Total MACs: " << with_commas(total_macs) << " (" << buf << " M)\n";
  return os.str();
}

nlohmann::json ModelSummary::to_json() const {
  nlohmann::json j;
  j["input_shape"] = input_shape;
  j["output_shape"] = output_shape;
  j["total_params"] = total_params;
  j["trainable_params"] = trainable_params;
  j["total_macs"] = total_macs;
  j["rows"] = nlohmann::json::array();
  for (const auto& r : rows)
    j["rows"].push_back({{"name", r.name}, {"type", r.type}, {"depth", r.depth}, {"leaf", r.leaf}, {"input_shape", r.input_shape},
                         {"output_shape", r.output_shape}, {"params", r.params}, {"macs", r.macs}});
  return j;
}

}  // namespace pfq
