// metrics.h — per-epoch metrics (and per-step training losses, in a sibling file) written as
// JSON Lines and CSV side by side (appending, so a resumed run continues the same files), and
// read back for reports and plots.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace pfq::app {

class MetricsLog {
 public:
  // Files <dir>/<stem>.jsonl and <dir>/<stem>.csv.
  MetricsLog(const std::string& dir, const std::string& stem);
  // Appends one row (flat JSON object of numbers/strings). The CSV header is the keys of the
  // first row ever written; later rows must have the same keys.
  void append(const nlohmann::ordered_json& row);
  // Appends several rows with one rewrite of the files (per-step rows, once per epoch).
  void append_rows(const std::vector<nlohmann::ordered_json>& rows);
  // Drops rows whose `key` >= value (used when resuming from an earlier checkpoint).
  void truncate_from(const std::string& key, double value);
  std::vector<nlohmann::ordered_json> rows() const;
  // The log <dir>/<stem>.jsonl/.csv beside this one (the epoch loop's steps log next to metrics).
  MetricsLog sibling(const std::string& stem) const { return MetricsLog(dir_, stem); }
  // One number of a row; NaN when the key is missing or null (non-finite values, e.g. the loss of
  // a diverged step, are written as JSON null).
  static double number(const nlohmann::ordered_json& row, const std::string& key);

 private:
  void rewrite(const std::vector<nlohmann::ordered_json>& rows);
  std::string dir_, jsonl_, csv_;
};

}  // namespace pfq::app
