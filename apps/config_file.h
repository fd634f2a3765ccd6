// config_file.h — the --config file of `pfq workflow` and `pfq reproduce`: an options struct
// read from a JSON file with every bad value named by its key, and flags given on the command
// line overriding the file. The flags themselves: apps/run_options.h.
#pragma once
#include <CLI/CLI.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"

namespace pfq::app {

// The JSON object in the file `path`; errors start "--config <path>:" (unreadable, not JSON,
// not an object).
nlohmann::json read_json_object(const std::string& path);

// `j` over O's defaults (O has to_json / from_json). Each error names the file and the key: an
// unknown key, a value of the wrong type, a float where an integer is expected, a value out of
// the option's range (a negative one for an unsigned option). The key "backend" (the kernel
// choices a run recorded, run_options.h with_backend) is a record, not an option: it is ignored,
// so a run's config.json can be given back as --config (kernels are chosen by PFQ_* variables).
template <typename O>
O options_from_json(const nlohmann::json& j_in, const std::string& path) {
  nlohmann::json j = j_in;
  if (j.is_object()) j.erase("backend");
  O o;
  const nlohmann::json defaults = o;
  for (const auto& [key, value] : j.items()) {
    // a float where an integer is expected would not convert safely, a negative number would
    // wrap around in an unsigned option
    PFQ_CHECK(!(defaults.contains(key) && defaults[key].is_number_integer() && value.is_number_float()), "--config ", path,
              ": key '", key, "': expected an integer, got ", value.dump());
    PFQ_CHECK(!(defaults.contains(key) && defaults[key].is_number_unsigned() && value.is_number_integer() &&
                !value.is_number_unsigned()),
              "--config ", path, ": key '", key, "': value ", value.dump(), " is out of range for this option (not negative)");
  }
  try {
    from_json(j, o);
  } catch (const Error& e) {
    PFQ_FAIL("--config ", path, ": ", e.what());
  } catch (const nlohmann::json::exception&) {
    for (const auto& [key, value] : j.items()) {  // name the offending key: convert the keys one at a time
      O probe;
      try {
        from_json(nlohmann::json{{key, value}}, probe);
      } catch (const nlohmann::json::exception& e) {
        PFQ_FAIL("--config ", path, ": key '", key, "': value ", value.dump(), " has the wrong type for this option (",
                 nlohmann::json(probe)[key].type_name(), " expected): ", e.what());
      }
    }
    PFQ_FAIL("--config ", path, ": a value has the wrong type");
  }
  const nlohmann::json got = o;  // integers out of the option's range wrap around: refuse them
  for (const auto& [key, value] : j.items())
    PFQ_CHECK(got[key] == value, "--config ", path, ": key '", key, "': value ", value.dump(), " is out of range for this option");
  return o;
}

// Copies into `merged` the value in `given` (the options the flags were parsed into, as JSON) of
// every flag given on cmd's command line; a flag's key is its long name without "--", dashes as
// underscores, unless `rename` maps that key to another.
void override_with_given_flags(const CLI::App& cmd, const nlohmann::json& given, nlohmann::json& merged,
                               const std::map<std::string, std::string>& rename = {});

}  // namespace pfq::app
