// reduce.cpp — row sums, row extremes and their gradient scatter over contiguous [outer, inner]
// buffers (reduce.h). Row sums run in double in a fixed order for any thread count.
#include "core/cpu/reduce.h"

#include <algorithm>
#include <numeric>
#include <vector>

namespace pfq::cpu {

template <typename T>
void sum_rows(const T* px, T* po, int64_t outer, int64_t inner) {
  if (outer == 1) {
    // One long sum: fixed chunks summed in order.
    constexpr int64_t kChunk = 4096;
    const int64_t nchunks = (inner + kChunk - 1) / kChunk;
    std::vector<double> part(std::max<int64_t>(nchunks, 1), 0.0);
#pragma omp parallel for schedule(static) if (inner > 65536)
    for (int64_t c = 0; c < nchunks; ++c) {
      double s = 0;
      for (int64_t i = c * kChunk, e = std::min(inner, (c + 1) * kChunk); i < e; ++i) s += px[i];
      part[c] = s;
    }
    po[0] = static_cast<T>(std::accumulate(part.begin(), part.end(), 0.0));
    return;
  }
#pragma omp parallel for schedule(static) if (outer * inner > 65536)
  for (int64_t o = 0; o < outer; ++o) {
    double s = 0;
    const T* q = px + o * inner;
    for (int64_t i = 0; i < inner; ++i) s += q[i];
    po[o] = static_cast<T>(s);
  }
}

template <typename T>
void extreme_rows(const T* px, int64_t outer, int64_t inner, bool is_max, T* pv, int64_t* pi) {
  for (int64_t o = 0; o < outer; ++o) {
    const T* q = px + o * inner;
    int64_t best = 0;
    for (int64_t i = 1; i < inner; ++i)
      if (is_max ? q[i] > q[best] : q[i] < q[best]) best = i;
    pi[o] = best;
    if (pv) pv[o] = q[best];
  }
}

template <typename T>
void scatter_rows(const T* pg, const int64_t* pi, T* pf, int64_t outer, int64_t inner) {
  for (int64_t o = 0; o < outer; ++o) pf[o * inner + pi[o]] = pg[o];
}

#define PFQ_INST(T)                                                                   \
  template void sum_rows<T>(const T*, T*, int64_t, int64_t);                          \
  template void extreme_rows<T>(const T*, int64_t, int64_t, bool, T*, int64_t*);      \
  template void scatter_rows<T>(const T*, const int64_t*, T*, int64_t, int64_t);
PFQ_INST(float)
PFQ_INST(double)
#undef PFQ_INST

}  // namespace pfq::cpu
