// reduce.cuh — the deterministic row-reduction engine of pfq's CUDA backend (CUDA builds only).
// reduce_rows(rows, inner, init, load, combine, store) folds load(r, i) over i in [0, inner) for
// each row r and calls store(r, result). Short rows (<= kWarpRowMax) take one warp each; long
// rows are cut into fixed kChunk-element chunks, one block per chunk, and the per-chunk partials
// are folded by a second warp pass. Each lane folds its elements in index order and lanes/warps
// combine through a fixed butterfly tree: no atomics, and chunk size and tree shape do not
// depend on the GPU, so a result is bit-identical from run to run and card to card.
#pragma once
#include <cstdint>

#include "core/cuda/launch.cuh"

namespace pfq::cuda::detail {

constexpr int64_t kWarpRowMax = 2048;  // rows up to this long: one warp per row
constexpr int64_t kChunk = 16384;      // elements per block for longer rows

// A value and the index it came from (max/min with indices).
template <typename T>
struct ValIdx {
  T v;
  int64_t i;
};

__device__ __forceinline__ float shfl_xor(float v, int m) { return __shfl_xor_sync(0xffffffffu, v, m); }
__device__ __forceinline__ double shfl_xor(double v, int m) { return __shfl_xor_sync(0xffffffffu, v, m); }
__device__ __forceinline__ int64_t shfl_xor(int64_t v, int m) {
  return static_cast<int64_t>(__shfl_xor_sync(0xffffffffu, static_cast<long long>(v), m));
}
// Any other trivially copyable accumulator (ValIdx, min/max pairs): shuffled word by word.
template <typename S>
__device__ __forceinline__ S shfl_xor(S s, int m) {
  static_assert(sizeof(S) % sizeof(int) == 0, "shfl_xor: accumulator size must be a multiple of 4 bytes");
  int w[sizeof(S) / sizeof(int)];
  memcpy(w, &s, sizeof(S));
#pragma unroll
  for (size_t k = 0; k < sizeof(S) / sizeof(int); ++k) w[k] = __shfl_xor_sync(0xffffffffu, w[k], m);
  memcpy(&s, w, sizeof(S));
  return s;
}

// All 32 lanes must call; lane 0 holds the fold of the warp.
template <class Acc, class Combine>
__device__ __forceinline__ Acc warp_fold(Acc a, Combine comb) {
#pragma unroll
  for (int m = 16; m >= 1; m >>= 1) a = comb(a, shfl_xor(a, m));
  return a;
}

// All threads of the block (a multiple of 32, at most 1024) must call; thread 0 gets the result.
// Warp 0 folds the per-warp results, padded with `init` (combine(init, x) == x).
template <class Acc, class Combine>
__device__ Acc block_fold(Acc a, Acc init, Combine comb) {
  __shared__ Acc warp_part[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  a = warp_fold(a, comb);
  if (lane == 0) warp_part[warp] = a;
  __syncthreads();
  if (warp == 0) a = warp_fold(lane < nwarps ? warp_part[lane] : init, comb);
  __syncthreads();  // warp_part is reused by the next call
  return a;
}

template <class Acc, class Load, class Combine, class Store>
__global__ void rows_warp_kernel(int64_t rows, int64_t inner, Acc init, Load load, Combine comb, Store store) {
  const int lane = threadIdx.x & 31;
  const int64_t nwarps = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  for (int64_t r = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5; r < rows; r += nwarps) {
    Acc a = init;
    for (int64_t i = lane; i < inner; i += 32) a = comb(a, load(r, i));
    a = warp_fold(a, comb);
    if (lane == 0) store(r, a);
  }
}

template <class Acc, class Load, class Combine, class Store>
__global__ void rows_chunk_kernel(int64_t rows, int64_t inner, int64_t nchunks, Acc init, Load load, Combine comb,
                                  Store store, Acc* partial) {
  for (int64_t t = blockIdx.x; t < rows * nchunks; t += gridDim.x) {
    const int64_t r = t / nchunks, c = t - r * nchunks;
    const int64_t e = (c + 1) * kChunk < inner ? (c + 1) * kChunk : inner;
    Acc a = init;
    for (int64_t i = c * kChunk + threadIdx.x; i < e; i += blockDim.x) a = comb(a, load(r, i));
    a = block_fold(a, init, comb);
    if (threadIdx.x == 0) {
      if (nchunks == 1) store(r, a);
      else partial[t] = a;
    }
  }
}

// See the file comment. load: (int64 r, int64 i) -> Acc; combine: (Acc, Acc) -> Acc, with
// combine(init, x) == x; store: (int64 r, Acc). All three are __device__ callables.
template <class Acc, class Load, class Combine, class Store>
void reduce_rows(int device, int64_t rows, int64_t inner, Acc init, Load load, Combine comb, Store store,
                 const char* name) {
  if (rows == 0) return;
  set_device(device);
  if (inner <= kWarpRowMax) {
    rows_warp_kernel<<<blocks_for(rows, kThreads / 32), kThreads, 0, stream()>>>(rows, inner, init, load, comb, store);
    PFQ_CUDA_CHECK_LAUNCH(name);
    return;
  }
  const int64_t nchunks = (inner + kChunk - 1) / kChunk;
  DeviceBuffer partial(nchunks > 1 ? static_cast<size_t>(rows * nchunks) * sizeof(Acc) : 0, device);
  Acc* part = partial.as<Acc>();
  rows_chunk_kernel<<<blocks_for(rows * nchunks, 1), kThreads, 0, stream()>>>(rows, inner, nchunks, init, load, comb,
                                                                              store, part);
  PFQ_CUDA_CHECK_LAUNCH(name);
  if (nchunks == 1) return;
  rows_warp_kernel<<<blocks_for(rows, kThreads / 32), kThreads, 0, stream()>>>(
      rows, nchunks, init, [=] __device__(int64_t r, int64_t c) { return part[r * nchunks + c]; }, comb, store);
  PFQ_CUDA_CHECK_LAUNCH(name);
}

}  // namespace pfq::cuda::detail
