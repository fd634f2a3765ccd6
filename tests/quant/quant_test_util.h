// quant_test_util.h — naive scalar references for the quant/ tests: an independent
// round-half-even, the uniform fake-quantizer written as plain loops, and small helpers.
// Deliberately shares no code with quant/fake_quant_kernel.h.
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <vector>

#include "core/ops.h"

namespace pfq::quant::test {

// max |a - b| / (1 + |b|) over two float32 tensors of one size (REQUIREd).
inline double max_rel_diff(const Tensor& a, const Tensor& b) {
  auto va = a.contiguous().to_vector<float>(), vb = b.contiguous().to_vector<float>();
  REQUIRE(va.size() == vb.size());
  double m = 0;
  for (size_t i = 0; i < va.size(); ++i) m = std::max(m, std::fabs(double(va[i]) - vb[i]) / (1.0 + std::fabs(double(vb[i]))));
  return m;
}

// Round half to even written from floor (not nearbyint, which the kernels use).
template <typename T>
T naive_round(T v) {
  const T f = std::floor(v), d = v - f;
  if (d > T(0.5)) return f + T(1);
  if (d < T(0.5)) return f;
  return std::fmod(f, T(2)) == T(0) ? f : f + T(1);
}

template <typename T>
struct NaiveFq {
  std::vector<T> out, scale, zero_point;
};

// Uniform fake quantization of x viewed as [C, K] rows, range observed per row.
template <typename T>
NaiveFq<T> naive_fake_quant(const std::vector<T>& x, int64_t C, int bits, bool symmetric) {
  const int64_t K = static_cast<int64_t>(x.size()) / C;
  NaiveFq<T> r;
  r.out.resize(x.size());
  for (int64_t c = 0; c < C; ++c) {
    T lo = x[c * K], hi = x[c * K];
    for (int64_t i = 0; i < K; ++i) {
      lo = std::min(lo, x[c * K + i]);
      hi = std::max(hi, x[c * K + i]);
    }
    T s, z = 0, qmin, qmax;
    if (symmetric) {
      qmax = static_cast<T>((1 << (bits - 1)) - 1);
      qmin = -qmax;
      s = std::max(std::fabs(lo), std::fabs(hi)) / qmax;
    } else {
      qmin = 0;
      qmax = static_cast<T>((1 << bits) - 1);
      lo = std::min(lo, T(0));
      hi = std::max(hi, T(0));
      s = (hi - lo) / qmax;
    }
    if (s == T(0)) s = T(1);
    if (!symmetric) z = std::min(std::max(naive_round(-lo / s), qmin), qmax);
    for (int64_t i = 0; i < K; ++i) {
      T q = std::min(std::max(naive_round(x[c * K + i] / s) + z, qmin), qmax);
      r.out[c * K + i] = (q - z) * s;
    }
    r.scale.push_back(s);
    r.zero_point.push_back(z);
  }
  return r;
}

template <typename T>
size_t distinct_values(const std::vector<T>& v, int64_t begin, int64_t end) {
  std::set<T> s(v.begin() + begin, v.begin() + end);
  return s.size();
}

inline Tensor rand_t(const Shape& shape, uint64_t seed, double lo, double hi, DType dt) {
  Generator g(seed);
  return Tensor::rand(shape, g, lo, hi, dt);
}

}  // namespace pfq::quant::test
