// metrics.cpp — JSONL/CSV metric files.
#include "apps/metrics.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/io/atomic_file.h"

namespace pfq::app {

MetricsLog::MetricsLog(const std::string& dir, const std::string& stem)
    : dir_(dir), jsonl_(dir + "/" + stem + ".jsonl"), csv_(dir + "/" + stem + ".csv") {}

namespace {
std::string csv_cell(const nlohmann::ordered_json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) {
    std::ostringstream os;
    os.precision(8);
    os << v.get<double>();
    return os.str();
  }
  return v.dump();
}
std::string csv_line(const nlohmann::ordered_json& row, bool header) {
  std::string line;
  bool first = true;
  for (auto it = row.begin(); it != row.end(); ++it) {
    line += (first ? "" : ",") + (header ? it.key() : csv_cell(it.value()));
    first = false;
  }
  return line + "\n";
}
}  // namespace

double MetricsLog::number(const nlohmann::ordered_json& row, const std::string& key) {
  auto it = row.find(key);
  return it != row.end() && it->is_number() ? it->get<double>() : std::nan("");
}

std::vector<nlohmann::ordered_json> MetricsLog::rows() const {
  std::vector<nlohmann::ordered_json> out;
  std::ifstream in(jsonl_);
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    try {
      out.push_back(nlohmann::ordered_json::parse(line));
    } catch (const std::exception& e) {
      PFQ_FAIL("metrics file ", jsonl_, " line ", n, ": not valid JSON (", e.what(), ")");
    }
  }
  return out;
}

void MetricsLog::rewrite(const std::vector<nlohmann::ordered_json>& rows) {
  std::string j, c;
  for (size_t i = 0; i < rows.size(); ++i) {
    j += rows[i].dump() + "\n";
    if (i == 0) c += csv_line(rows[i], true);
    c += csv_line(rows[i], false);
  }
  io::write_file_atomic(jsonl_, j);
  io::write_file_atomic(csv_, c);
}

void MetricsLog::append(const nlohmann::ordered_json& row) {
  append_rows({row});
}

void MetricsLog::append_rows(const std::vector<nlohmann::ordered_json>& more) {
  if (more.empty()) return;
  auto all = rows();
  all.insert(all.end(), more.begin(), more.end());
  rewrite(all);
}

void MetricsLog::truncate_from(const std::string& key, double value) {
  auto all = rows();
  std::vector<nlohmann::ordered_json> keep;
  for (auto& r : all)
    if (!r.contains(key) || r[key].get<double>() < value) keep.push_back(r);
  if (keep.size() != all.size()) rewrite(keep);
}

}  // namespace pfq::app
