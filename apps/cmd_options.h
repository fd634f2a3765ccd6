// cmd_options.h — what `pfq workflow` and `pfq reproduce` share on their command lines: an
// options struct read from a JSON file (--config) with every bad value named by its key, the
// data and schedule flags both take, and flags given on the command line overriding the file.
#pragma once
#include <CLI/CLI.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "data/factory.h"
#include "layers/models/registry.h"

namespace pfq::app {

// The JSON object in the file `path`; errors start "--config <path>:" (unreadable, not JSON,
// not an object).
nlohmann::json read_json_object(const std::string& path);

// `j` over O's defaults (O has to_json / from_json). Each error names the file and the key: an
// unknown key, a value of the wrong type, a float where an integer is expected, a value out of
// the option's range (a negative one for an unsigned option).
template <typename O>
O options_from_json(const nlohmann::json& j, const std::string& path) {
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

// --dataset, --data-dir, --model, --width, --limit-train, --limit-test into the fields of those names.
template <typename O>
void add_data_flags(CLI::App* cmd, O& o) {
  cmd->add_option("--dataset", o.dataset)->check(CLI::IsMember(data::dataset_names()))->capture_default_str();
  cmd->add_option("--data-dir", o.data_dir);
  cmd->add_option("--model", o.model)->check(CLI::IsMember(models::model_names()))->capture_default_str();
  cmd->add_option("--width", o.width)->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--limit-train", o.limit_train)->check(CLI::NonNegativeNumber);
  cmd->add_option("--limit-test", o.limit_test)->check(CLI::NonNegativeNumber);
}

// The pretraining and PfQ schedule: --pretrain-epochs, --pretrain-lr, --weight-decay,
// --batch-size, --criterion, --border, and --finetune-lr.
template <typename O>
void add_schedule_flags(CLI::App* cmd, O& o) {
  cmd->add_option("--pretrain-epochs", o.pretrain_epochs)->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--pretrain-lr", o.pretrain_lr)->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--weight-decay", o.weight_decay)->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--batch-size", o.batch_size)->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--criterion", o.criterion, "PfQ criterion: var-below-eps | var-zero | var-below=<t>")->capture_default_str();
  cmd->add_option("--border", o.border, "PfQ border mode")->check(CLI::IsMember({"exact", "bias", "keep"}))->capture_default_str();
  cmd->add_option("--finetune-lr", o.finetune_lr)->check(CLI::PositiveNumber)->capture_default_str();
}

// Copies into `merged` the value in `given` (the options the flags were parsed into, as JSON) of
// every flag given on cmd's command line; a flag's key is its long name without "--", dashes as
// underscores, unless `rename` maps that key to another.
void override_with_given_flags(const CLI::App& cmd, const nlohmann::json& given, nlohmann::json& merged,
                               const std::map<std::string, std::string>& rename = {});

}  // namespace pfq::app
