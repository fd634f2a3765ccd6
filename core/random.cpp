// random.cpp — Generator state and the normal distribution (own code so results do not depend
// on the standard library's distribution implementation).
#include "core/random.h"

#include <cmath>
#include <sstream>

#include "core/error.h"

namespace pfq {

double Generator::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u1 = 0;
  while (u1 <= 0) u1 = uniform();
  double u2 = uniform();
  double r = std::sqrt(-2.0 * std::log(u1));
  spare_ = r * std::sin(2 * M_PI * u2);
  has_spare_ = true;
  return r * std::cos(2 * M_PI * u2);
}

std::string Generator::state() const {
  std::ostringstream os;
  os << engine_ << ' ' << has_spare_ << ' ';
  os.precision(17);
  os << spare_;
  return os.str();
}

void Generator::set_state(const std::string& s) {
  std::istringstream is(s);
  is >> engine_ >> has_spare_ >> spare_;
  PFQ_CHECK(!is.fail(), "Generator::set_state: malformed generator state string");
}

Generator& default_generator() {
  static Generator g(0);
  return g;
}

void manual_seed(uint64_t seed) { default_generator() = Generator(seed); }

}  // namespace pfq
