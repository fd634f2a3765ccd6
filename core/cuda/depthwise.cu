// depthwise.cu — see depthwise.h. One thread per output element (forward) or input element
// (backward-input, gathering from the outputs whose windows cover it); the weight gradient is
// one block per (channel, batch slice) holding every tap's partial sum in registers (3x3: nine),
// reduced through the block, then the slices are folded in order by a second kernel. 3x3 kernels
// are compiled with the window unrolled; other sizes take the generic path (one tap per block
// for the weight gradient).
#include <algorithm>
#include <cstdint>

#include "core/cuda/depthwise.h"
#include "core/cuda/launch.cuh"
#include "core/cuda/reduce.cuh"

namespace pfq::cuda {
namespace {

// The geometry as 32-bit ints (one image plane and the channel count fit easily; indices that
// cross images are 64-bit).
struct Geo {
  int C, H, W, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw;
};

Geo geo(const ConvGeom& g) {
  return Geo{static_cast<int>(g.C),  static_cast<int>(g.H),  static_cast<int>(g.W),  static_cast<int>(g.OH),
             static_cast<int>(g.OW), static_cast<int>(g.KH), static_cast<int>(g.KW), static_cast<int>(g.sh),
             static_cast<int>(g.sw), static_cast<int>(g.ph), static_cast<int>(g.pw), static_cast<int>(g.dh),
             static_cast<int>(g.dw)};
}

// I: the index type, int32_t whenever the tensor has fewer than 2^31 elements (64-bit division
// costs several times the 32-bit one, and these kernels do little else).
template <typename T, int KS, typename I>
__global__ void dw_forward_kernel(I total, Geo g, const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ y) {
  const int KH = KS ? KS : g.KH, KW = KS ? KS : g.KW;
  const I stride = static_cast<I>(blockDim.x) * gridDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int ow = static_cast<int>(i % g.OW);
    const int oh = static_cast<int>((i / g.OW) % g.OH);
    const I nc = i / (static_cast<I>(g.OW) * g.OH);
    const int c = static_cast<int>(nc % g.C);
    const T* xp = x + nc * g.H * g.W;
    const T* wp = w + c * KH * KW;
    T acc = 0;
#pragma unroll
    for (int kh = 0; kh < KH; ++kh) {
      const int ih = oh * g.sh - g.ph + kh * g.dh;
      if (ih < 0 || ih >= g.H) continue;
#pragma unroll
      for (int kw = 0; kw < KW; ++kw) {
        const int iw = ow * g.sw - g.pw + kw * g.dw;
        if (iw >= 0 && iw < g.W) acc += xp[ih * g.W + iw] * wp[kh * KW + kw];
      }
    }
    y[i] = acc;
  }
}

template <typename T, int KS, typename I>
__global__ void dw_backward_input_kernel(I total, Geo g, const T* __restrict__ dy, const T* __restrict__ w,
                                         T* __restrict__ dx) {
  const int KH = KS ? KS : g.KH, KW = KS ? KS : g.KW;
  const I stride = static_cast<I>(blockDim.x) * gridDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int iw = static_cast<int>(i % g.W);
    const int ih = static_cast<int>((i / g.W) % g.H);
    const I nc = i / (static_cast<I>(g.W) * g.H);
    const int c = static_cast<int>(nc % g.C);
    const T* gp = dy + nc * g.OH * g.OW;
    const T* wp = w + c * KH * KW;
    T acc = 0;
#pragma unroll
    for (int kh = 0; kh < KH; ++kh) {
      const int th = ih + g.ph - kh * g.dh;  // = oh * sh for the output row whose window has ih at kh
      if (th < 0 || th % g.sh != 0) continue;
      const int oh = th / g.sh;
      if (oh >= g.OH) continue;
#pragma unroll
      for (int kw = 0; kw < KW; ++kw) {
        const int tw = iw + g.pw - kw * g.dw;
        if (tw < 0 || tw % g.sw != 0) continue;
        const int ow = tw / g.sw;
        if (ow < g.OW) acc += gp[oh * g.OW + ow] * wp[kh * KW + kw];
      }
    }
    dx[i] = acc;
  }
}

constexpr int kWgtThreads = 256;

// Block (c, tap group, slice): partial[slice][c][tap] = sum over the slice's images of
// dy * x at that tap. KS > 0: every tap of a KS x KS window in registers (gridDim.y == 1);
// KS == 0: one tap per block, tap = blockIdx.y.
template <typename T, int KS, typename I>
__global__ void dw_backward_weight_partial(int N, int per_slice, Geo g, const T* __restrict__ dy, const T* __restrict__ x,
                                           T* __restrict__ partial) {
  constexpr int kTaps = KS ? KS * KS : 1;
  const int KW = KS ? KS : g.KW;
  const int taps_total = KS ? KS * KS : g.KH * g.KW;
  const int c = blockIdx.x, tap0 = KS ? 0 : static_cast<int>(blockIdx.y), slice = blockIdx.z;
  const int n0 = slice * per_slice, n1 = min(N, n0 + per_slice);
  const int plane = g.OH * g.OW;
  const I work = static_cast<I>(n1 - n0) * plane;
  T acc[kTaps];
#pragma unroll
  for (int t = 0; t < kTaps; ++t) acc[t] = 0;
  for (I e = threadIdx.x; e < work; e += blockDim.x) {
    const int n = n0 + static_cast<int>(e / plane);
    const int r = static_cast<int>(e % plane);
    const int oh = r / g.OW, ow = r % g.OW;
    const I nc = static_cast<I>(n) * g.C + c;
    const T gv = dy[nc * plane + r];
    const T* xp = x + nc * g.H * g.W;
#pragma unroll
    for (int t = 0; t < kTaps; ++t) {
      const int tap = tap0 + t;
      const int kh = tap / KW, kw = tap % KW;
      const int ih = oh * g.sh - g.ph + kh * g.dh, iw = ow * g.sw - g.pw + kw * g.dw;
      if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) acc[t] += gv * xp[ih * g.W + iw];
    }
  }
  __shared__ T warp_sums[kWgtThreads / 32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int t = 0; t < kTaps; ++t) {
    T v = acc[t];
#pragma unroll
    for (int m = 16; m > 0; m >>= 1) v += detail::shfl_xor(v, m);
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    if (warp == 0) {
      v = lane < kWgtThreads / 32 ? warp_sums[lane] : T(0);
#pragma unroll
      for (int m = 16; m > 0; m >>= 1) v += detail::shfl_xor(v, m);
      if (lane == 0) partial[(static_cast<int64_t>(slice) * g.C + c) * taps_total + tap0 + t] = v;
    }
    __syncthreads();
  }
}

template <typename T>
__global__ void dw_fold_slices(int64_t n, int slices, const T* __restrict__ partial, T* __restrict__ dw) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    T s = 0;
    for (int k = 0; k < slices; ++k) s += partial[static_cast<int64_t>(k) * n + i];
    dw[i] = s;
  }
}

bool is_3x3(const ConvGeom& g) { return g.KH == 3 && g.KW == 3; }

bool fits_int32(int64_t n) { return n < (int64_t{1} << 31); }

// Elements of the larger activation tensor (x or y): what the 32-bit index choice must cover.
int64_t largest_tensor(const ConvGeom& g) { return g.N * g.C * std::max(g.H * g.W, g.OH * g.OW); }

// One thread per element of `total` (outputs or inputs), through the 3x3 or the generic
// instance of Kernel (dw_forward_kernel or dw_backward_input_kernel) with 32-bit indices where
// the tensors allow.
template <typename T, template <typename, int, typename> class Kernel>
void launch_per_element(int64_t total, int64_t largest, const ConvGeom& g, const T* a, const T* b, T* out, const char* what) {
  if (total == 0) return;
  const auto grid = detail::blocks_for(total);
  if (fits_int32(largest)) {
    auto* k = is_3x3(g) ? Kernel<T, 3, int32_t>::fn : Kernel<T, 0, int32_t>::fn;
    k<<<grid, detail::kThreads, 0, detail::stream()>>>(static_cast<int32_t>(total), geo(g), a, b, out);
  } else {
    auto* k = is_3x3(g) ? Kernel<T, 3, int64_t>::fn : Kernel<T, 0, int64_t>::fn;
    k<<<grid, detail::kThreads, 0, detail::stream()>>>(total, geo(g), a, b, out);
  }
  PFQ_CUDA_CHECK_LAUNCH(what);
}

template <typename T, int KS, typename I>
struct Forward {
  static constexpr auto fn = dw_forward_kernel<T, KS, I>;
};
template <typename T, int KS, typename I>
struct BackwardInput {
  static constexpr auto fn = dw_backward_input_kernel<T, KS, I>;
};

template <typename T>
void backward_weight_t(const ConvGeom& g, const T* dy, const T* x, T* dw, int device) {
  const int64_t taps = g.KH * g.KW, n_out = g.C * taps;
  if (n_out == 0) return;
  if (g.N == 0) {
    PFQ_CUDA_CHECK(cudaMemsetAsync(dw, 0, static_cast<size_t>(n_out) * sizeof(T), detail::stream()));
    return;
  }
  const bool k3 = is_3x3(g);
  const int64_t tap_blocks = k3 ? 1 : taps;
  const detail::BatchSlices split = detail::batch_slices(g.N, g.C * tap_blocks);
  const int64_t slices = split.count, per_slice = split.per;
  detail::DeviceBuffer partial(static_cast<size_t>(slices * n_out) * sizeof(T), device);
  const dim3 grid(static_cast<unsigned>(g.C), static_cast<unsigned>(tap_blocks), static_cast<unsigned>(slices));
  const bool i32 = fits_int32(largest_tensor(g));
  auto* kernel = k3 ? (i32 ? dw_backward_weight_partial<T, 3, int32_t> : dw_backward_weight_partial<T, 3, int64_t>)
                    : (i32 ? dw_backward_weight_partial<T, 0, int32_t> : dw_backward_weight_partial<T, 0, int64_t>);
  kernel<<<grid, kWgtThreads, 0, detail::stream()>>>(static_cast<int>(g.N), static_cast<int>(per_slice), geo(g), dy, x,
                                                     partial.as<T>());
  PFQ_CUDA_CHECK_LAUNCH("depthwise_backward_weight (partial sums)");
  dw_fold_slices<T><<<detail::blocks_for(n_out), detail::kThreads, 0, detail::stream()>>>(
      n_out, static_cast<int>(slices), partial.as<T>(), dw);
  PFQ_CUDA_CHECK_LAUNCH("depthwise_backward_weight (fold)");
}

void check(DType dtype, const ConvGeom& g, const char* op) {
  PFQ_CHECK(g.is_depthwise(), op, ": not a depthwise convolution (groups ", g.groups, ", C ", g.C, ", OC ", g.OC, ")");
  PFQ_CHECK(dtype == DType::Float32 || dtype == DType::Float64, op, ": expected float32 or float64, got ", dtype_name(dtype));
  PFQ_CHECK(g.H * g.W < (int64_t{1} << 31) && g.C < (int64_t{1} << 31), op, ": image plane too large for 32-bit indices");
}

}  // namespace

void depthwise_forward(DType dtype, int device, const ConvGeom& g, const void* x, const void* w, void* y) {
  check(dtype, g, "depthwise_forward");
  detail::set_device(device);
  PFQ_DISPATCH_FLOAT(dtype, "depthwise_forward", [&] {
    launch_per_element<scalar_t, Forward>(g.N * g.C * g.OH * g.OW, largest_tensor(g), g,
                                          static_cast<const scalar_t*>(x), static_cast<const scalar_t*>(w),
                                          static_cast<scalar_t*>(y), "depthwise_forward");
  });
}

void depthwise_backward_input(DType dtype, int device, const ConvGeom& g, const void* dy, const void* w, void* dx) {
  check(dtype, g, "depthwise_backward_input");
  detail::set_device(device);
  PFQ_DISPATCH_FLOAT(dtype, "depthwise_backward_input", [&] {
    launch_per_element<scalar_t, BackwardInput>(g.N * g.C * g.H * g.W, largest_tensor(g), g,
                                                static_cast<const scalar_t*>(dy), static_cast<const scalar_t*>(w),
                                                static_cast<scalar_t*>(dx), "depthwise_backward_input");
  });
}

void depthwise_backward_weight(DType dtype, int device, const ConvGeom& g, const void* dy, const void* x, void* dw) {
  check(dtype, g, "depthwise_backward_weight");
  detail::set_device(device);
  PFQ_DISPATCH_FLOAT(dtype, "depthwise_backward_weight", [&] {
    backward_weight_t(g, static_cast<const scalar_t*>(dy), static_cast<const scalar_t*>(x), static_cast<scalar_t*>(dw), device);
  });
}

}  // namespace pfq::cuda
