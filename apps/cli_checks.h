// cli_checks.h — the number checks of pfq's flags, as CLI11 validators whose message a user can
// read: "--lr: must be >= 0, got -1" (CLI11's own NonNegativeNumber answers "Value -1 not in
// range 0.000000 to 1797693..." with the 300-digit largest double as the upper bound).
#pragma once
#include <CLI/CLI.hpp>
#include <sstream>
#include <string>

namespace pfq::app {

// A number >= bound (strict: > bound). `desc` is what the help shows for the check.
inline CLI::Validator number_at_least(double bound, bool strict, const std::string& desc) {
  return CLI::Validator(
      [bound, strict](std::string& in) -> std::string {
        double v = 0;
        if (!CLI::detail::lexical_cast(in, v)) return "expected a number, got '" + in + "'";
        if (strict ? v > bound : v >= bound) return "";
        std::ostringstream os;
        os << "must be " << (strict ? "> " : ">= ") << bound << ", got " << in;
        return os.str();
      },
      desc);
}

inline const CLI::Validator NonNegative = number_at_least(0, false, "NONNEGATIVE");  // >= 0
inline const CLI::Validator Positive = number_at_least(0, true, "POSITIVE");         // > 0

}  // namespace pfq::app
