// gradcheck.h — the test suites' view of the one finite-difference gradient checker (float64,
// core/gradcheck.h, used for every op and module) plus small helpers they share (seeded
// tensors, a scoped OpenMP thread count).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "core/gradcheck.h"
#include "core/ops.h"

namespace pfq::test {

// The checker itself is the library's (core/gradcheck.h); the suites name it pfq::test::.
using ::pfq::gradcheck;
using ::pfq::GradcheckResult;
using ::pfq::max_abs_diff;

// A seeded float64 tensor in [lo, hi) that requires grad.
Tensor rand64(const Shape& shape, uint64_t seed, double lo = -1, double hi = 1, bool requires_grad = true);

// Sets OpenMP's thread count for a scope (threads > 0; 0 leaves it) and restores the count it
// found when the scope ends, also after code inside set it (pfq's --threads options do).
class OmpThreadsScope {
 public:
  explicit OmpThreadsScope(int threads = 0);
  ~OmpThreadsScope();
  OmpThreadsScope(const OmpThreadsScope&) = delete;
  OmpThreadsScope& operator=(const OmpThreadsScope&) = delete;

 private:
  int saved_;
};

}  // namespace pfq::test
