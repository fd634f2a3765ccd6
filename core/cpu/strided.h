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
// Dimensions of size 1 are dropped and neighbours that are one run for every operand merged
// first (a [OC, IC, 1, 1] weight times a [OC, 1, 1, 1] scale is OC runs of IC, not OC * IC
// runs of 1); the visiting order stays row-major over `shape`.
template <std::size_t K, typename F>
void for_each_run(const std::vector<int64_t>& shape, const std::array<const std::vector<int64_t>*, K>& strides,
                  const std::array<int64_t, K>& base, F&& f) {
  for (auto s : shape)
    if (s == 0) return;
  // coalesced dimensions, innermost first
  std::vector<int64_t> shp;
  std::array<std::vector<int64_t>, K> str;
  for (std::size_t i = shape.size(); i-- > 0;) {
    if (shape[i] == 1) continue;
    bool merge = !shp.empty();
    for (std::size_t k = 0; k < K && merge; ++k) merge = (*strides[k])[i] == str[k].back() * shp.back();
    if (merge) {
      shp.back() *= shape[i];
      continue;
    }
    shp.push_back(shape[i]);
    for (std::size_t k = 0; k < K; ++k) str[k].push_back((*strides[k])[i]);
  }
  std::array<int64_t, K> inner{};
  if (shp.empty()) {  // a single element
    f(base, inner, int64_t(1));
    return;
  }
  const std::size_t nd = shp.size();
  for (std::size_t k = 0; k < K; ++k) inner[k] = str[k][0];
  const int64_t len = shp[0];
  std::vector<int64_t> counter(nd, 0);
  std::array<int64_t, K> off = base;
  while (true) {
    f(off, inner, len);
    // advance the outer counters (coalesced dimensions 1 .. nd-1)
    std::size_t d = 1;
    for (; d < nd; ++d) {
      counter[d]++;
      for (std::size_t k = 0; k < K; ++k) off[k] += str[k][d];
      if (counter[d] < shp[d]) break;
      for (std::size_t k = 0; k < K; ++k) off[k] -= str[k][d] * shp[d];
      counter[d] = 0;
    }
    if (d == nd) return;
  }
}

}  // namespace pfq::cpu
