// random.h — seeded random number generation. Every random fill, shuffle, augmentation and
// dropout mask takes a Generator explicitly or uses the default one (pfq::manual_seed), so the
// same seed and thread count reproduce a run bit for bit. State is serialisable for checkpoints.
#pragma once
#include <cstdint>
#include <random>
#include <string>

namespace pfq {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : engine_(seed) {}
  void seed(uint64_t s) { engine_.seed(s); }
  uint64_t next_u64() { return engine_(); }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return (engine_() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  double normal();  // standard normal (Box-Muller, both values used)
  int64_t randint(int64_t n) { return static_cast<int64_t>(engine_() % static_cast<uint64_t>(n)); }
  std::string state() const;
  void set_state(const std::string& s);

 private:
  std::mt19937_64 engine_;
  bool has_spare_ = false;
  double spare_ = 0;
};

Generator& default_generator();
void manual_seed(uint64_t seed);

}  // namespace pfq
