/// \file
/// random.h — seeded random number generation. Every random fill, shuffle, augmentation and
/// dropout mask takes a Generator explicitly or uses the default one (pfq::manual_seed), so the
/// same seed and thread count reproduce a run bit for bit. State is serialisable for checkpoints.
#pragma once
#include <cstdint>
#include <random>
#include <string>

namespace pfq {

/// A seeded random generator (mt19937_64) whose state can be saved and restored, so runs and resumes are
/// reproducible.
class Generator {
 public:
  /// A generator seeded with `seed`.
  explicit Generator(uint64_t seed = 0) : engine_(seed) {}
  /// Reseeds.
  void seed(uint64_t s) { engine_.seed(s); }
  /// 64 random bits.
  uint64_t next_u64() { return engine_(); }
  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return (engine_() >> 11) * 0x1.0p-53; }
  /// Uniform in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  double normal();  ///< standard normal (Box-Muller, both values used)
  /// Uniform integer in [0, n) (n > 0).
  int64_t randint(int64_t n) { return static_cast<int64_t>(engine_() % static_cast<uint64_t>(n)); }
  /// The full state as text (engine and Box-Muller spare), for checkpoints.
  std::string state() const;
  /// Restores a state from state(); throws pfq::Error on malformed text.
  void set_state(const std::string& s);

 private:
  std::mt19937_64 engine_;
  bool has_spare_ = false;
  double spare_ = 0;
};

/// The process-wide generator that initialisers and the loader use by default.
Generator& default_generator();
/// Reseeds the default generator.
void manual_seed(uint64_t seed);

}  // namespace pfq
