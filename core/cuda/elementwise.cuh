// elementwise.cuh — the strided element-wise engine of pfq's CUDA backend (CUDA builds only).
// One kernel family serves every element-wise op, copy and cast: a StridedPlan (passed by value)
// holds the output shape and each operand's element strides, with size-1 dims dropped and
// adjacent dims merged wherever every operand allows, innermost first. When all operands are
// contiguous the flat kernel indexes them directly; otherwise each thread turns its linear index
// into per-operand offsets (32-bit divisions when the shape allows). Broadcasting needs nothing
// special: expand_view gives stride 0. The math is a functor of core/functors.h.
#pragma once
#include <array>
#include <cstdint>

#include "core/cuda/launch.cuh"
#include "core/tensor.h"

namespace pfq::cuda::detail {

constexpr int kMaxDims = 8;

// N operands, operand 0 is the output. Dims are stored innermost first.
template <int N>
struct StridedPlan {
  int ndim = 0;
  bool small = true;  // numel and every size below 2^31: 32-bit index arithmetic
  int64_t sizes[kMaxDims] = {};
  int64_t strides[N][kMaxDims] = {};

  bool contiguous() const {
    if (ndim == 0) return true;
    if (ndim > 1) return false;
    for (int k = 0; k < N; ++k)
      if (strides[k][0] != 1) return false;
    return true;
  }
};

// Builds the plan of `shape` with one stride vector per operand (each of shape's rank).
template <int N>
StridedPlan<N> make_plan(const Shape& shape, const std::array<const Shape*, N>& strides, const char* op) {
  StridedPlan<N> p;
  const int64_t nd = static_cast<int64_t>(shape.size());
  for (int k = 0; k < N; ++k)
    PFQ_CHECK(static_cast<int64_t>(strides[k]->size()) == nd, op, ": operand ", k, " has ", strides[k]->size(),
              " strides for a shape of rank ", nd);
  int64_t merged_sizes[64];
  int64_t merged_strides[N][64];
  int m = 0;
  for (int64_t d = nd - 1; d >= 0; --d) {  // innermost first
    const int64_t sz = shape[d];
    if (sz == 1) continue;
    bool merge = m > 0;
    for (int k = 0; k < N && merge; ++k) merge = (*strides[k])[d] == merged_strides[k][m - 1] * merged_sizes[m - 1];
    if (merge) {
      merged_sizes[m - 1] *= sz;
      continue;
    }
    PFQ_CHECK(m < 64, op, ": shape ", shape_str(shape), " has too many dimensions");
    merged_sizes[m] = sz;
    for (int k = 0; k < N; ++k) merged_strides[k][m] = (*strides[k])[d];
    ++m;
  }
  PFQ_CHECK(m <= kMaxDims, op, ": the CUDA element-wise engine handles at most ", kMaxDims,
            " non-mergeable dimensions, got ", m, " for shape ", shape_str(shape), " (make an operand contiguous first)");
  p.ndim = m;
  const int64_t n = shape_numel(shape);
  p.small = n < (int64_t{1} << 31);
  for (int d = 0; d < m; ++d) {
    p.sizes[d] = merged_sizes[d];
    for (int k = 0; k < N; ++k) p.strides[k][d] = merged_strides[k][d];
  }
  return p;
}

// Element offsets of linear index `i` (row-major over the output shape) for every operand.
template <int N>
__device__ __forceinline__ void plan_offsets(const StridedPlan<N>& p, int64_t i, int64_t (&off)[N]) {
#pragma unroll
  for (int k = 0; k < N; ++k) off[k] = 0;
  if (p.small) {
    uint32_t r = static_cast<uint32_t>(i);
#pragma unroll
    for (int d = 0; d < kMaxDims; ++d) {
      if (d == p.ndim) break;
      const uint32_t sz = static_cast<uint32_t>(p.sizes[d]);
      const uint32_t q = r / sz;
      const int64_t idx = static_cast<int64_t>(r - q * sz);
      r = q;
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += idx * p.strides[k][d];
    }
  } else {
    int64_t r = i;
#pragma unroll
    for (int d = 0; d < kMaxDims; ++d) {
      if (d == p.ndim) break;
      const int64_t q = r / p.sizes[d];
      const int64_t idx = r - q * p.sizes[d];
      r = q;
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += idx * p.strides[k][d];
    }
  }
}

// f(i) for i in [0, n): grid-stride loop over contiguous operands.
template <class F>
__global__ void flat_kernel(int64_t n, F f) {
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) f(i);
}

// f(offsets) for every linear index in [0, n).
template <int N, class F>
__global__ void strided_kernel(int64_t n, StridedPlan<N> plan, F f) {
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    int64_t off[N];
    plan_offsets(plan, i, off);
    f(off);
  }
}

// Launches f(i) for i in [0, n) on `device` (kernels indexing contiguous buffers themselves).
template <class F>
void launch_flat(int device, int64_t n, F f, const char* name) {
  if (n == 0) return;
  set_device(device);
  flat_kernel<<<blocks_for(n, int64_t{kThreads} * 4), kThreads, 0, stream()>>>(n, f);
  PFQ_CUDA_CHECK_LAUNCH(name);
}

// Launches `flat` (contiguous plan) or `strided` over n elements on `device`.
template <int N, class Flat, class Strided>
void launch_elementwise(int device, int64_t n, const StridedPlan<N>& plan, Flat flat, Strided strided, const char* name) {
  if (plan.contiguous()) return launch_flat(device, n, flat, name);
  if (n == 0) return;
  set_device(device);
  strided_kernel<N><<<blocks_for(n, int64_t{kThreads} * 4), kThreads, 0, stream()>>>(n, plan, strided);
  PFQ_CUDA_CHECK_LAUNCH(name);
}

// out = static_cast<TO>(f(x)) element-wise; x and out of one shape on one device.
template <typename TO, typename TI, typename F>
void unary_op(const Tensor& x, const Tensor& out, F f, const char* name) {
  PFQ_CHECK(x.shape() == out.shape() && x.device() == out.device() && out.device().is_cuda(), name,
            ": expected operands of one shape on one CUDA device, got ", x.describe(), " -> ", out.describe());
  const TI* px = x.data<TI>();
  TO* po = out.data<TO>();
  const StridedPlan<2> plan = make_plan<2>(out.shape(), {&out.strides(), &x.strides()}, name);
  launch_elementwise<2>(
      out.device().index, out.numel(), plan, [=] __device__(int64_t i) { po[i] = static_cast<TO>(f(px[i])); },
      [=] __device__(const int64_t(&o)[2]) { po[o[0]] = static_cast<TO>(f(px[o[1]])); }, name);
}

// out = f(a, b) element-wise; a and b already have out's shape (stride 0 where broadcast).
template <typename T, typename F>
void binary_op(const Tensor& a, const Tensor& b, const Tensor& out, F f, const char* name) {
  PFQ_CHECK(a.shape() == out.shape() && b.shape() == out.shape() && a.device() == out.device() &&
                b.device() == out.device() && out.device().is_cuda(),
            name, ": expected operands of one shape on one CUDA device, got ", a.describe(), ", ", b.describe(), " -> ",
            out.describe());
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* po = out.data<T>();
  const StridedPlan<3> plan = make_plan<3>(out.shape(), {&out.strides(), &a.strides(), &b.strides()}, name);
  launch_elementwise<3>(
      out.device().index, out.numel(), plan, [=] __device__(int64_t i) { po[i] = f(pa[i], pb[i]); },
      [=] __device__(const int64_t(&o)[3]) { po[o[0]] = f(pa[o[1]], pb[o[2]]); }, name);
}

}  // namespace pfq::cuda::detail
