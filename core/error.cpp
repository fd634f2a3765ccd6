// error.cpp — formats pfq::Error messages with the source location.
#include "core/error.h"

namespace pfq::detail {

void throw_error(const char* file, int line, const std::string& msg) {
  std::string f(file);
  auto pos = f.rfind("/core/");
  if (pos == std::string::npos) pos = f.rfind("/layers/");
  if (pos != std::string::npos) f = f.substr(pos + 1);
  throw Error(msg + " [" + f + ":" + std::to_string(line) + "]");
}

}  // namespace pfq::detail
