// gradcheck.cpp — the test suites' helpers around the library's gradient checker.
#include "tests/gradcheck.h"

#include <omp.h>

namespace pfq::test {

Tensor rand64(const Shape& shape, uint64_t seed, double lo, double hi, bool requires_grad) {
  Generator g(seed);
  Tensor t = Tensor::rand(shape, g, lo, hi, DType::Float64);
  if (requires_grad) t.set_requires_grad(true);
  return t;
}

OmpThreadsScope::OmpThreadsScope(int threads) : saved_(omp_get_max_threads()) {
  if (threads > 0) omp_set_num_threads(threads);
}

OmpThreadsScope::~OmpThreadsScope() { omp_set_num_threads(saved_); }

}  // namespace pfq::test
