// loss.cu — log-softmax rows and the fused softmax cross-entropy (label smoothing) of
// core/ops/loss.cpp on CUDA (kernels.h). One warp per row: max, then sum of exp(x - max) in
// double (numerically stable), then the row written out; the batch mean of the row losses is a
// deterministic reduce_rows pass. Formulas and precisions follow the CPU kernels
// (core/cpu/loss.cpp).
#include "core/cuda/elementwise.cuh"
#include "core/cuda/kernels.h"
#include "core/cuda/reduce.cuh"

namespace pfq::cuda {
namespace {

// Per row r of x [R, K]: logp[r] = log_softmax(x[r]); with targets, row_loss[r] =
// -(1 - s) logp[r, t_r] - s/K sum_k logp[r, k] (the smoothing term only when s > 0).
template <typename T>
__global__ void log_softmax_rows_kernel(const T* x, T* logp, int64_t R, int64_t K, const int64_t* targets,
                                        double smoothing, double* row_loss) {
  const int lane = threadIdx.x & 31;
  const int64_t nwarps = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  const auto add = [](double a, double b) { return a + b; };
  const auto mx = [](T a, T b) { return a >= b ? a : b; };
  for (int64_t r = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5; r < R; r += nwarps) {
    const T* p = x + r * K;
    T m = p[0];
    for (int64_t k = lane; k < K; k += 32) m = mx(m, p[k]);
    m = detail::warp_fold(m, mx);
    m = __shfl_sync(0xffffffffu, m, 0);
    double s = 0;
    for (int64_t k = lane; k < K; k += 32) s += exp(static_cast<double>(p[k] - m));
    s = detail::warp_fold(s, add);
    s = __shfl_sync(0xffffffffu, s, 0);
    const T lse = static_cast<T>(static_cast<double>(m) + log(s));
    T* o = logp + r * K;
    double lsum = 0;
    for (int64_t k = lane; k < K; k += 32) {
      const T v = p[k] - lse;
      o[k] = v;
      lsum += static_cast<double>(v);
    }
    if (targets) {
      lsum = detail::warp_fold(lsum, add);
      if (lane == 0) {
        const T lt = p[targets[r]] - lse;  // the value written to o[t_r] by its lane
        double row = -(1 - smoothing) * static_cast<double>(lt);
        if (smoothing > 0) row -= smoothing / static_cast<double>(K) * lsum;
        row_loss[r] = row;
      }
    }
  }
}

template <typename T>
void launch_rows(const T* x, T* logp, int64_t R, int64_t K, const int64_t* targets, double smoothing, double* row_loss,
                 int device) {
  if (R == 0 || K == 0) return;
  detail::set_device(device);
  log_softmax_rows_kernel<T><<<detail::blocks_for(R, detail::kThreads / 32), detail::kThreads, 0, detail::stream()>>>(
      x, logp, R, K, targets, smoothing, row_loss);
  PFQ_CUDA_CHECK_LAUNCH("log_softmax_rows_kernel");
}

void check_contig(const Tensor& t, const Tensor& like, int64_t n, DType dt, const char* op, const char* what) {
  PFQ_CHECK(t.device() == like.device() && t.device().is_cuda() && t.is_contiguous() && t.numel() == n && t.dtype() == dt,
            op, ": ", what, " must be a contiguous ", dtype_name(dt), " tensor of ", n, " elements on ",
            like.device().str(), ", got ", t.describe());
}

// rows [N, K] (logits or logp), targets int64 [N] and out [N, K] (of rows' dtype): contiguous, on
// rows' CUDA device.
void check_rows_targets(const char* op, const Tensor& rows, const char* rows_name, const Tensor& targets, const Tensor& out,
                        const char* out_name) {
  PFQ_CHECK(rows.dim() == 2, op, ": ", rows_name, " must be [N, K], got ", rows.describe());
  const int64_t N = rows.size(0), K = rows.size(1);
  check_contig(rows, rows, N * K, rows.dtype(), op, rows_name);
  check_contig(targets, rows, N, DType::Int64, op, "targets");
  check_contig(out, rows, N * K, rows.dtype(), op, out_name);
}

}  // namespace

void log_softmax_rows(const Tensor& x, const Tensor& out, int64_t R, int64_t K) {
  check_contig(x, x, R * K, x.dtype(), "cuda::log_softmax_rows", "x");
  check_contig(out, x, R * K, x.dtype(), "cuda::log_softmax_rows", "out");
  PFQ_DISPATCH_FLOAT(x.dtype(), "cuda::log_softmax_rows", [&] {
    launch_rows<scalar_t>(x.data<scalar_t>(), out.data<scalar_t>(), R, K, nullptr, 0.0, nullptr, x.device().index);
  });
}

void cross_entropy_forward(const Tensor& logits, const Tensor& targets, double smoothing, const Tensor& logp,
                           const Tensor& loss) {
  const char* op = "cuda::cross_entropy_forward";
  check_rows_targets(op, logits, "logits", targets, logp, "logp");
  const int64_t N = logits.size(0), K = logits.size(1);
  check_contig(loss, logits, 1, logits.dtype(), op, "loss");
  PFQ_CHECK(N > 0 && K > 0, op, ": empty logits ", logits.describe());
  const int device = logits.device().index;
  detail::DeviceBuffer row_loss(static_cast<size_t>(N) * sizeof(double), device);
  double* rl = row_loss.as<double>();
  PFQ_DISPATCH_FLOAT(logits.dtype(), op, [&] {
    launch_rows<scalar_t>(logits.data<scalar_t>(), logp.data<scalar_t>(), N, K, targets.data<int64_t>(), smoothing, rl,
                          device);
    scalar_t* pl = loss.data<scalar_t>();
    const double n_rows = static_cast<double>(N);
    detail::reduce_rows(
        device, 1, N, 0.0, [=] __device__(int64_t, int64_t i) { return rl[i]; },
        [] __device__(double a, double b) { return a + b; },
        [=] __device__(int64_t, double total) { *pl = static_cast<scalar_t>(total / n_rows); }, op);
  });
}

void cross_entropy_backward(const Tensor& logp, const Tensor& targets, double smoothing, const Tensor& g,
                            const Tensor& dx) {
  const char* op = "cuda::cross_entropy_backward";
  check_rows_targets(op, logp, "logp", targets, dx, "dx");
  const int64_t N = logp.size(0), K = logp.size(1);
  PFQ_CHECK(g.numel() == 1 && g.dtype() == logp.dtype() && g.device() == logp.device(), op,
            ": upstream gradient must be one ", dtype_name(logp.dtype()), " element on ", logp.device().str(), ", got ",
            g.describe());
  PFQ_DISPATCH_FLOAT(logp.dtype(), op, [&] {
    const scalar_t* lp = logp.data<scalar_t>();
    const scalar_t* pg = g.data<scalar_t>();
    const int64_t* t = targets.data<int64_t>();
    scalar_t* o = dx.data<scalar_t>();
    const double n = static_cast<double>(N), kk = static_cast<double>(K);
    detail::launch_flat(
        logp.device().index, N * K,
        [=] __device__(int64_t j) {
          const int64_t i = j / K, k = j - i * K;
          const double scale = static_cast<double>(*pg) / n;
          const double target = (k == t[i] ? 1 - smoothing : 0) + smoothing / kk;
          o[j] = static_cast<scalar_t>(scale * (exp(static_cast<double>(lp[j])) - target));
        }, op);
  });
}

}  // namespace pfq::cuda
