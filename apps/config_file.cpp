// config_file.cpp — the non-template half of apps/config_file.h.
#include "apps/config_file.h"

#include <algorithm>
#include <fstream>

namespace pfq::app {

nlohmann::json read_json_object(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  PFQ_CHECK(in, "--config ", path, ": cannot open");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    PFQ_FAIL("--config ", path, ": not valid JSON (error at byte ", e.byte, "): ", e.what());
  } catch (const nlohmann::json::exception& e) {
    PFQ_FAIL("--config ", path, ": not valid JSON: ", e.what());
  }
  PFQ_CHECK(j.is_object(), "--config ", path, ": expected a JSON object of options, got ", j.type_name());
  return j;
}

void override_with_given_flags(const CLI::App& cmd, const nlohmann::json& given, nlohmann::json& merged,
                               const std::map<std::string, std::string>& rename) {
  for (const auto* opt : cmd.get_options()) {
    if (opt->count() == 0) continue;
    std::string key = opt->get_name().substr(2);
    std::replace(key.begin(), key.end(), '-', '_');
    if (auto r = rename.find(key); r != rename.end()) key = r->second;
    if (given.contains(key)) merged[key] = given[key];  // --config, --help and the like are no options' keys
  }
}

}  // namespace pfq::app
