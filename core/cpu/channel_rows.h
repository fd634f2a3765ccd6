// channel_rows.h — per-channel work over the rows of a channels-last [M, C] tensor (M = N*H*W),
// shared by batch norm's and folded batch norm's channels-last kernels: sums (the rows split into
// a fixed number of chunks, independent of the thread count, each chunk summed into its own
// accumulators in parallel and the chunks folded in order, so the result is deterministic) and
// the per-channel affine map with a clamp.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

namespace pfq::cpu {

constexpr int64_t kRowChunks = 64;

// out[k * C + c] = the sum over all rows of body's k-th accumulator of channel c, K per channel.
// body(r0, r1, acc) adds rows [r0, r1) into acc[K * C] (zeroed); it may also write per-row
// outputs of those rows (each row belongs to exactly one call).
template <int K, typename Body>
void reduce_rows(int64_t M, int64_t C, Body body, double* out) {
  const int64_t chunks = std::min<int64_t>(kRowChunks, M), rows = (M + chunks - 1) / chunks;
  std::vector<double> part(static_cast<size_t>(chunks * K * C), 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < chunks; ++k) {
    const int64_t r0 = k * rows, r1 = std::min(M, r0 + rows);
    if (r0 < r1) body(r0, r1, part.data() + k * K * C);
  }
  std::fill(out, out + K * C, 0.0);
  for (int64_t k = 0; k < chunks; ++k)
    for (int64_t i = 0; i < K * C; ++i) out[i] += part[k * K * C + i];
}

// y = clamp(x * scale + shift, lo, hi) per channel (scale, shift [C]; lo/hi -inf/inf: no clamp),
// rows in parallel.
template <typename T>
void affine_rows(int64_t M, int64_t C, const T* x, const T* scale, const T* shift, T lo, T hi, T* y) {
#pragma omp parallel for schedule(static) if (M * C > 32768)
  for (int64_t r = 0; r < M; ++r) {
    const T* p = x + r * C;
    T* o = y + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) o[c] = std::min(std::max(p[c] * scale[c] + shift[c], lo), hi);
  }
}

}  // namespace pfq::cpu
