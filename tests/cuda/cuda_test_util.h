// cuda_test_util.h — helpers of the cuda suite: skipping without a GPU (a SKIP line, skip.h),
// seeded random inputs, moving tensors for comparison, and the CUDA-against-CPU closeness check
// with a readable report.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <sstream>
#include <string>

#include "core/device.h"
#include "core/ops.h"
#include "tests/skip.h"

namespace pfq::test {

// True (after printing the SKIP line, skip.h) when this test cannot run for lack of a CUDA build or GPU.
inline bool skip_without_gpu() {
  if (cuda_device_count() > 0) return false;
  if (cuda_compiled()) {
    report_skip("no CUDA GPU present");
  } else {
    report_skip("pfq built without CUDA");
  }
  return true;
}

inline Device gpu() { return Device::cuda(0); }

// A float32 CPU tensor of shape s, uniform in [lo, hi) from Generator(seed).
inline Tensor rnd(const Shape& s, uint64_t seed, double lo = -1, double hi = 1) {
  Generator g(seed);
  return Tensor::rand(s, g, lo, hi, DType::Float32);
}

// A CPU float64 copy (no autograd) of any float tensor on any device.
inline Tensor cpu64(const Tensor& t) { return t.detach().to(Device::cpu()).to(DType::Float64).contiguous(); }

// A leaf copy of `t` with dtype `dt` on `dev` that requires grad (for comparing gradients).
inline Tensor leaf_on(const Tensor& t, DType dt, Device dev) {
  Tensor c = t.detach().to(dt).to(dev).detach();  // a fresh handle even when nothing moved
  c.set_requires_grad(true);
  return c;
}

struct Closeness {
  bool ok = true;
  double max_abs = 0;
  std::string report;
};

// |got - want| <= atol + rtol * |want| everywhere (both compared in float64 on the CPU);
// shapes must match. The report names the first mismatches.
inline Closeness compare(const Tensor& got, const Tensor& want, double atol, double rtol) {
  Closeness r;
  if (got.shape() != want.shape()) {
    r.ok = false;
    r.report = "shape " + shape_str(got.shape()) + " vs " + shape_str(want.shape());
    return r;
  }
  const std::vector<double> g = cpu64(got).to_vector<double>(), w = cpu64(want).to_vector<double>();
  std::ostringstream os;
  int shown = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const double d = std::abs(g[i] - w[i]);
    r.max_abs = std::max(r.max_abs, std::isnan(d) ? INFINITY : d);
    if (!(d <= atol + rtol * std::abs(w[i]))) {
      r.ok = false;
      if (shown++ < 4) os << "  [" << i << "] got " << g[i] << " want " << w[i] << " (|diff| " << d << ")\n";
    }
  }
  os << "  max |diff| " << r.max_abs << " (atol " << atol << ", rtol " << rtol << ")";
  r.report = os.str();
  return r;
}

// The largest |x| of a tensor (at least 1): scales absolute tolerances.
inline double magnitude(const Tensor& t) {
  double m = 1;
  for (double v : cpu64(t).to_vector<double>()) m = std::max(m, std::abs(v));
  return m;
}

}  // namespace pfq::test
