// batchnorm_own.cu — pfq's own batch-norm training kernels on NCHW tensors, with the activation
// fused (kernel_list.h: batch_norm_act_train_forward/backward). cuDNN's NCHW float32 kernels reduce
// a channel's N x H x W values with few blocks when C is small and H x W large (MobileNetV1's
// 32x32 layers), and the activation is a separate pass; here each reduction is split over
// (channel, batch slice) blocks and the clamp / gate ride along with the passes that read x.
//
// Forward: stats_partial (per block: the sum and the sum of squares of x - k, k = the channel's
// first value: the shifted-data formula, stable when k is near the mean) -> stats_finalize (one
// thread per channel: the slices folded in double in a fixed order, mean, biased variance,
// 1/sqrt(var + eps), the running-statistics update with the unbiased variance, and the
// channel's scale = gamma * invstd and shift = beta - mean * scale) -> apply (y = clamp(x *
// scale + shift, lo, hi)).
// Backward, g = dy gated by lo < y < hi: grad_partial (sums of g and g * (x - mean)) ->
// grad_finalize (dbeta, dgamma and the coefficients of dx = a g + b x + d) -> grad_apply.
// Deterministic: no atomics; the slicing depends on the shape only.
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "core/cuda/kernels.h"
#include "core/cuda/launch.cuh"
#include "core/cuda/reduce.cuh"

namespace pfq::cuda {
namespace {

constexpr int kBlock = 256;

// n / d and n % d for 0 <= n < 2^31 by a multiply-high and a shift (Granlund and Montgomery's
// round-up method): these kernels do little besides locating each element's channel, and a
// 32-bit division costs about twenty instructions.
struct Divider {
  uint32_t d, magic, shift;
  explicit Divider(uint32_t divisor) : d(divisor), magic(0), shift(0) {
    while (shift < 32 && (uint32_t{1} << shift) < d) ++shift;
    magic = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << shift) - d)) / d + 1);
  }
  __device__ __forceinline__ uint32_t div(uint32_t n) const { return (__umulhi(n, magic) + n) >> shift; }
};

// Sums v over the block into the two outputs of thread 0 (valid there only).
template <typename T>
__device__ void block_sum2(T& a, T& b) {
  __shared__ T sa[kBlock / 32], sb[kBlock / 32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) {
    a += detail::shfl_xor(a, m);
    b += detail::shfl_xor(b, m);
  }
  if (lane == 0) {
    sa[warp] = a;
    sb[warp] = b;
  }
  __syncthreads();
  if (warp == 0) {
    a = lane < kBlock / 32 ? sa[lane] : T(0);
    b = lane < kBlock / 32 ? sb[lane] : T(0);
#pragma unroll
    for (int m = 16; m > 0; m >>= 1) {
      a += detail::shfl_xor(a, m);
      b += detail::shfl_xor(b, m);
    }
  }
}

// Block (c, slice): partial[slice][c] = {sum(x - k), sum((x - k)^2)} over the slice's images.
template <typename T>
__global__ void stats_partial(int N, int C, int S, Divider by_s, int per_slice, const T* __restrict__ x, T* __restrict__ partial) {
  const int c = blockIdx.x, slice = blockIdx.y;
  const int n0 = slice * per_slice, n1 = min(N, n0 + per_slice);
  const T k = x[static_cast<uint32_t>(c) * S];  // image 0's first value of the channel
  T s1 = 0, s2 = 0;
  const uint32_t work = static_cast<uint32_t>(n1 - n0) * S;
  for (uint32_t e = threadIdx.x; e < work; e += kBlock) {
    const uint32_t q = by_s.div(e), n = n0 + q, s = e - q * S;
    const T v = x[(n * C + c) * S + s] - k;
    s1 += v;
    s2 += v * v;
  }
  block_sum2(s1, s2);
  if (threadIdx.x == 0) {
    partial[(static_cast<int64_t>(slice) * C + c) * 2] = s1;
    partial[(static_cast<int64_t>(slice) * C + c) * 2 + 1] = s2;
  }
}

// Channel c's two sums over the batch: its partial pairs folded in slice order, in double.
template <typename T>
__device__ void fold_slices(const T* __restrict__ partial, int slices, int C, int c, double& a, double& b) {
  a = 0;
  b = 0;
  for (int k = 0; k < slices; ++k) {
    const T* p = partial + (static_cast<int64_t>(k) * C + c) * 2;
    a += static_cast<double>(p[0]);
    b += static_cast<double>(p[1]);
  }
}

// One thread per channel. coef[c] = {scale, shift}.
template <typename T>
__global__ void stats_finalize(int C, int slices, int64_t count, const T* __restrict__ partial, const T* __restrict__ x, int S,
                               const T* __restrict__ gamma, const T* __restrict__ beta, double momentum, double eps,
                               T* __restrict__ running_mean, T* __restrict__ running_var, T* __restrict__ save_mean,
                               T* __restrict__ save_invstd, T* __restrict__ coef) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  double s1, s2;
  fold_slices(partial, slices, C, c, s1, s2);
  const double m = static_cast<double>(count);
  const double shift_k = static_cast<double>(x[static_cast<int64_t>(c) * S]);  // stats_partial's k
  const double d = s1 / m;
  const double var = fmax(s2 / m - d * d, 0.0);
  const double mean = shift_k + d;
  const double invstd = 1.0 / sqrt(var + eps);
  save_mean[c] = static_cast<T>(mean);
  save_invstd[c] = static_cast<T>(invstd);
  if (running_mean != nullptr) {
    running_mean[c] = static_cast<T>((1 - momentum) * static_cast<double>(running_mean[c]) + momentum * mean);
    running_var[c] = static_cast<T>((1 - momentum) * static_cast<double>(running_var[c]) + momentum * var * (m / (m - 1)));
  }
  const double scale = static_cast<double>(gamma[c]) * invstd;
  coef[2 * c] = static_cast<T>(scale);
  coef[2 * c + 1] = static_cast<T>(static_cast<double>(beta[c]) - mean * scale);
}

// The channel of flat index i of [N, C, S].
__device__ __forceinline__ uint32_t channel_of(uint32_t i, Divider by_s, Divider by_c) {
  const uint32_t plane = by_s.div(i);
  return plane - by_c.div(plane) * by_c.d;
}

template <typename T>
__global__ void apply(uint32_t total, Divider by_s, Divider by_c, const T* __restrict__ x, const T* __restrict__ coef, T lo, T hi,
                      T* __restrict__ y) {
  const uint32_t stride = blockDim.x * gridDim.x;
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
    const uint32_t c = channel_of(i, by_s, by_c);
    const T v = x[i] * coef[2 * c] + coef[2 * c + 1];
    y[i] = v < lo ? lo : (v > hi ? hi : v);
  }
}

template <typename T, bool Gated>
__device__ __forceinline__ T gated(const T* dy, const T* y, uint32_t i, T lo, T hi) {
  if (!Gated) return dy[i];
  const T v = y[i];
  return (v > lo && v < hi) ? dy[i] : T(0);
}

// Block (c, slice): partial[slice][c] = {sum(g), sum(g * (x - mean))}.
template <typename T, bool Gated>
__global__ void grad_partial(int N, int C, int S, Divider by_s, int per_slice, const T* __restrict__ x, const T* __restrict__ dy,
                             const T* __restrict__ y, T lo, T hi, const T* __restrict__ mean, T* __restrict__ partial) {
  const int c = blockIdx.x, slice = blockIdx.y;
  const int n0 = slice * per_slice, n1 = min(N, n0 + per_slice);
  const T mu = mean[c];
  T sg = 0, sgx = 0;
  const uint32_t work = static_cast<uint32_t>(n1 - n0) * S;
  for (uint32_t e = threadIdx.x; e < work; e += kBlock) {
    const uint32_t q = by_s.div(e), n = n0 + q, s = e - q * S;
    const uint32_t i = (n * C + c) * S + s;
    const T g = gated<T, Gated>(dy, y, i, lo, hi);
    sg += g;
    sgx += g * (x[i] - mu);
  }
  block_sum2(sg, sgx);
  if (threadIdx.x == 0) {
    partial[(static_cast<int64_t>(slice) * C + c) * 2] = sg;
    partial[(static_cast<int64_t>(slice) * C + c) * 2 + 1] = sgx;
  }
}

// One thread per channel: dbeta = sum g, dgamma = sum g xhat, and dx = a g + b x + d with
// a = gamma invstd, b = -a invstd dgamma / M, d = a (mean invstd dgamma - dbeta) / M.
template <typename T>
__global__ void grad_finalize(int C, int slices, int64_t count, const T* __restrict__ partial, const T* __restrict__ gamma,
                              const T* __restrict__ mean, const T* __restrict__ invstd, T* __restrict__ dgamma,
                              T* __restrict__ dbeta, T* __restrict__ coef) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  double sg, sgx;
  fold_slices(partial, slices, C, c, sg, sgx);
  const double is = static_cast<double>(invstd[c]), mu = static_cast<double>(mean[c]), m = static_cast<double>(count);
  const double dg = sgx * is, db = sg;
  if (dgamma != nullptr) dgamma[c] = static_cast<T>(dg);
  if (dbeta != nullptr) dbeta[c] = static_cast<T>(db);
  const double a = static_cast<double>(gamma[c]) * is;
  coef[3 * c] = static_cast<T>(a);
  coef[3 * c + 1] = static_cast<T>(-a * is * dg / m);
  coef[3 * c + 2] = static_cast<T>(a * (mu * is * dg - db) / m);
}

template <typename T, bool Gated>
__global__ void grad_apply(uint32_t total, Divider by_s, Divider by_c, const T* __restrict__ x, const T* __restrict__ dy,
                           const T* __restrict__ y, T lo, T hi, const T* __restrict__ coef, T* __restrict__ dx) {
  const uint32_t stride = blockDim.x * gridDim.x;
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
    const uint32_t c = channel_of(i, by_s, by_c);
    dx[i] = coef[3 * c] * gated<T, Gated>(dy, y, i, lo, hi) + coef[3 * c + 1] * x[i] + coef[3 * c + 2];
  }
}

void check_shape(int64_t N, int64_t C, int64_t S, const char* op) {
  PFQ_CHECK(batch_norm_own_fits(N, C, S), op, ": [", N, ", ", C, ", ", S, "] has 2^31 elements or more (32-bit indices)");
  PFQ_CHECK(N * S > 1, op, ": more than one value per channel needed, got N = ", N, ", H*W = ", S);
}

template <typename T>
void train_forward(int device, int64_t N, int64_t C, int64_t S, const T* x, const T* gamma, const T* beta, double momentum,
                   double eps, T* running_mean, T* running_var, T lo, T hi, T* y, T* save_mean, T* save_invstd) {
  const detail::BatchSlices split = detail::batch_slices(N, C);
  const int64_t slices = split.count, per = split.per;
  detail::DeviceBuffer partial(static_cast<size_t>(slices * C * 2) * sizeof(T), device);
  detail::DeviceBuffer coef(static_cast<size_t>(C * 2) * sizeof(T), device);
  const cudaStream_t st = detail::stream();
  const Divider by_s(static_cast<uint32_t>(S)), by_c(static_cast<uint32_t>(C));
  stats_partial<T><<<dim3(static_cast<unsigned>(C), static_cast<unsigned>(slices)), kBlock, 0, st>>>(
      static_cast<int>(N), static_cast<int>(C), static_cast<int>(S), by_s, static_cast<int>(per), x, partial.as<T>());
  PFQ_CUDA_CHECK_LAUNCH("batch_norm (own kernels) statistics");
  stats_finalize<T><<<detail::blocks_for(C), detail::kThreads, 0, st>>>(
      static_cast<int>(C), static_cast<int>(slices), N * S, partial.as<T>(), x, static_cast<int>(S), gamma, beta, momentum, eps,
      running_mean, running_var, save_mean, save_invstd, coef.as<T>());
  PFQ_CUDA_CHECK_LAUNCH("batch_norm (own kernels) statistics, final");
  const int64_t total = N * C * S;
  apply<T><<<detail::blocks_for(total), detail::kThreads, 0, st>>>(static_cast<uint32_t>(total), by_s, by_c, x, coef.as<T>(), lo, hi, y);
  PFQ_CUDA_CHECK_LAUNCH("batch_norm (own kernels) normalisation");
}

template <typename T, bool Gated>
void train_backward(int device, int64_t N, int64_t C, int64_t S, const T* x, const T* dy, const T* y, T lo, T hi, const T* gamma,
                    const T* mean, const T* invstd, T* dx, T* dgamma, T* dbeta) {
  const detail::BatchSlices split = detail::batch_slices(N, C);
  const int64_t slices = split.count, per = split.per;
  detail::DeviceBuffer partial(static_cast<size_t>(slices * C * 2) * sizeof(T), device);
  detail::DeviceBuffer coef(static_cast<size_t>(C * 3) * sizeof(T), device);
  const cudaStream_t st = detail::stream();
  const Divider by_s(static_cast<uint32_t>(S)), by_c(static_cast<uint32_t>(C));
  grad_partial<T, Gated><<<dim3(static_cast<unsigned>(C), static_cast<unsigned>(slices)), kBlock, 0, st>>>(
      static_cast<int>(N), static_cast<int>(C), static_cast<int>(S), by_s, static_cast<int>(per), x, dy, y, lo, hi, mean,
      partial.as<T>());
  PFQ_CUDA_CHECK_LAUNCH("batch_norm backward (own kernels) sums");
  grad_finalize<T><<<detail::blocks_for(C), detail::kThreads, 0, st>>>(static_cast<int>(C), static_cast<int>(slices), N * S,
                                                                          partial.as<T>(), gamma, mean, invstd, dgamma, dbeta,
                                                                          coef.as<T>());
  PFQ_CUDA_CHECK_LAUNCH("batch_norm backward (own kernels) sums, final");
  if (dx == nullptr) return;
  const int64_t total = N * C * S;
  grad_apply<T, Gated><<<detail::blocks_for(total), detail::kThreads, 0, st>>>(static_cast<uint32_t>(total), by_s, by_c, x, dy, y, lo,
                                                                              hi, coef.as<T>(), dx);
  PFQ_CUDA_CHECK_LAUNCH("batch_norm backward (own kernels) input gradient");
}

}  // namespace

bool batch_norm_own_fits(int64_t N, int64_t C, int64_t S) { return N * C * S < (int64_t{1} << 31); }

void batch_norm_act_train_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, double momentum, double eps,
                                  const Tensor& running_mean, const Tensor& running_var, double lo, double hi, const Tensor& y,
                                  const Tensor& save_mean, const Tensor& save_invstd) {
  const detail::Ncs n = detail::ncs(x);
  const int64_t N = n.N, C = n.C, S = n.S;
  const int device = x.device().index;
  if (N * C * S == 0) return;
  check_shape(N, C, S, "batch_norm (own kernels)");
  PFQ_CHECK(running_mean.defined() == running_var.defined(), "batch_norm (own kernels): give both running statistics or neither");
  detail::set_device(device);
  PFQ_DISPATCH_FLOAT(x.dtype(), "batch_norm (own kernels)", [&] {
    using T = scalar_t;
    train_forward<T>(device, N, C, S, x.data<T>(), gamma.data<T>(), beta.data<T>(), momentum, eps,
                     static_cast<T*>(detail::raw_or_null(running_mean)), static_cast<T*>(detail::raw_or_null(running_var)),
                     static_cast<T>(lo), static_cast<T>(hi), y.data<T>(), save_mean.data<T>(), save_invstd.data<T>());
  });
}

void batch_norm_act_train_backward(const Tensor& x, const Tensor& dy, const Tensor& y, double lo, double hi, const Tensor& gamma,
                                   const Tensor& save_mean, const Tensor& save_invstd, const Tensor& dx, const Tensor& dgamma,
                                   const Tensor& dbeta) {
  const detail::Ncs n = detail::ncs(x);
  const int64_t N = n.N, C = n.C, S = n.S;
  const int device = x.device().index;
  if (N * C * S == 0) return;
  check_shape(N, C, S, "batch_norm backward (own kernels)");
  detail::set_device(device);
  PFQ_DISPATCH_FLOAT(x.dtype(), "batch_norm backward (own kernels)", [&] {
    using T = scalar_t;
    auto run = [&](auto gated) {
      train_backward<T, decltype(gated)::value>(device, N, C, S, x.data<T>(), dy.data<T>(), static_cast<const T*>(detail::raw_or_null(y)),
                                                static_cast<T>(lo), static_cast<T>(hi), gamma.data<T>(), save_mean.data<T>(),
                                                save_invstd.data<T>(), static_cast<T*>(detail::raw_or_null(dx)),
                                                static_cast<T*>(detail::raw_or_null(dgamma)), static_cast<T*>(detail::raw_or_null(dbeta)));
    };
    if (y.defined()) run(std::true_type{});
    else run(std::false_type{});
  });
}

}  // namespace pfq::cuda
