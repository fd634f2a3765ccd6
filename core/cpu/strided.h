// strided.h — iteration over strided tensors for CPU kernels: walks an output shape in
// row-major order and hands the callback runs along the innermost dimension, with each
// operand's element offset and inner stride, so inner loops stay tight and allocation-free.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace pfq::cpu {

// f(std::array<int64_t, K> offsets, std::array<int64_t, K> inner_strides, int64_t run_length)
template <std::size_t K, typename F>
void for_each_run(const std::vector<int64_t>& shape, const std::array<const std::vector<int64_t>*, K>& strides,
                  const std::array<int64_t, K>& base, F&& f) {
  const std::size_t nd = shape.size();
  std::array<int64_t, K> inner{};
  if (nd == 0) {
    f(base, inner, int64_t(1));
    return;
  }
  for (std::size_t k = 0; k < K; ++k) inner[k] = (*strides[k])[nd - 1];
  const int64_t len = shape[nd - 1];
  for (auto s : shape)
    if (s == 0) return;
  std::vector<int64_t> counter(nd, 0);
  std::array<int64_t, K> off = base;
  while (true) {
    f(off, inner, len);
    // advance the outer counters (dimensions nd-2 .. 0)
    int64_t d = static_cast<int64_t>(nd) - 2;
    for (; d >= 0; --d) {
      counter[d]++;
      for (std::size_t k = 0; k < K; ++k) off[k] += (*strides[k])[d];
      if (counter[d] < shape[d]) break;
      for (std::size_t k = 0; k < K; ++k) off[k] -= (*strides[k])[d] * shape[d];
      counter[d] = 0;
    }
    if (d < 0) return;
  }
}

}  // namespace pfq::cpu
