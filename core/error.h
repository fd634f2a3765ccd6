/// \file
/// error.h — the one exception type of pfq and the PFQ_CHECK macro that throws it.
/// Every user-facing failure (bad shapes, devices, files, flags) goes through here with
/// file:line, what was expected and what was found. No exit()/abort() in library code.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace pfq {

/// The one exception type of pfq: every checked failure (shapes, dtypes, files, flags) throws it with file:line and
/// a message.
class Error : public std::runtime_error {
 public:
  /// An error with message `msg`.
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

namespace detail {
/// Streams any number of arguments into one string.
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
[[noreturn]] void throw_error(const char* file, int line, const std::string& msg);
}  // namespace detail

}  // namespace pfq

// PFQ_CHECK(cond, "op: expected ", x, " got ", y) — throws pfq::Error with file:line.
/// Throws pfq::Error with file:line and the streamed message when `cond` is false.
#define PFQ_CHECK(cond, ...)                                                        \
  do {                                                                              \
    if (!(cond)) ::pfq::detail::throw_error(__FILE__, __LINE__, ::pfq::detail::cat(__VA_ARGS__)); \
  } while (0)

/// Throws pfq::Error with file:line and the streamed message.
#define PFQ_FAIL(...) ::pfq::detail::throw_error(__FILE__, __LINE__, ::pfq::detail::cat(__VA_ARGS__))
