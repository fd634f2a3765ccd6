// gradcheck.h — the one generic finite-difference gradient checker (float64), used for
// every op and module, plus small helpers shared by the test suites (comparisons, seeded
// tensors, a scoped OpenMP thread count).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "core/ops.h"

namespace pfq::test {

struct GradcheckResult {
  bool ok = true;
  double max_abs_err = 0;
  std::string report;  // first mismatches: input, element, analytic, numeric
};

// Checks d(sum(w * f(inputs)))/d(inputs[i]) for every float64 input with requires_grad,
// with a fixed random weighting w, against central differences with step `eps`.
// Passes when |analytic - numeric| <= atol + rtol * |numeric| everywhere.
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, std::vector<Tensor> inputs,
                          double eps = 1e-6, double atol = 1e-6, double rtol = 1e-4);

// max |a - b| over all elements (same shape; any float dtype, compared in double).
double max_abs_diff(const Tensor& a, const Tensor& b);

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
