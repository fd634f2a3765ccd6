// loss.cpp — softmax, log-softmax, the fused softmax cross-entropy (with label smoothing)
// and dropout. Softmax-family kernels work on rows of the last axis (other axes permuted): the
// row kernels of core/cpu/kernels.h or core/cuda/kernel_list.h. Dropout draws its mask on the
// CPU generator on every device, so a seed gives the same mask on CPU and CUDA.
#include <algorithm>

#include "core/cpu/kernels.h"
#include "core/cuda/kernels.h"
#include "core/ops.h"
#include "core/profiler.h"
#include "core/ops/op_util.h"

namespace pfq {
namespace {

// Moves `dim` last and returns a contiguous copy; `inv` restores the order.
Tensor dim_last(const Tensor& x, int64_t dim, std::vector<int64_t>& perm) {
  const int64_t nd = x.dim();
  perm.clear();
  for (int64_t i = 0; i < nd; ++i)
    if (i != dim) perm.push_back(i);
  perm.push_back(dim);
  return permute(x, perm).contiguous();
}

std::vector<int64_t> inverse(const std::vector<int64_t>& perm) {
  std::vector<int64_t> inv(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) inv[perm[i]] = static_cast<int64_t>(i);
  return inv;
}

}  // namespace

Tensor log_softmax(const Tensor& x, int64_t dim) {
  PFQ_CHECK(x.dim() >= 1, "log_softmax: needs at least one dimension");
  const int64_t d = normalize_axis(dim, x.dim(), "log_softmax");
  if (d != x.dim() - 1) {
    std::vector<int64_t> perm;
    Tensor xl = dim_last(x, d, perm);
    return permute(log_softmax(xl, -1), inverse(perm));
  }
  const int64_t K = x.size(-1), R = x.numel() / std::max<int64_t>(K, 1);
  Tensor xc = x.detach().contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.device().is_cuda()) cuda::log_softmax_rows(xc, y, R, K);
  else cpu::log_softmax_rows(xc, y, R, K);
  Tensor yd = y.detach();
  return record("log_softmax", y, {x}, [yd](const Tensor& g) {
    // dx = g - softmax * sum(g)
    return std::vector<Tensor>{sub(g, mul(exp(yd), sum(g, {-1}, true)))};
  });
}

Tensor softmax(const Tensor& x, int64_t dim) { return exp(log_softmax(x, dim)); }

namespace {
// Targets on the host for the range check; on the logits' device for the kernels.
void check_targets(const Tensor& targets_cpu, int64_t K) {
  const int64_t* t = targets_cpu.data<int64_t>();
  for (int64_t i = 0, n = targets_cpu.numel(); i < n; ++i)
    PFQ_CHECK(t[i] >= 0 && t[i] < K, "cross_entropy: target ", t[i], " at batch index ", i, " outside [0, ", K, ")");
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, double smoothing, const Tensor& targets_host) {
  PFQ_PROFILE("cross_entropy");
  PFQ_CHECK(logits.dim() == 2, "cross_entropy: logits must be [N, K], got ", shape_str(logits.shape()));
  PFQ_CHECK(targets.dtype() == DType::Int64 && targets.dim() == 1 && targets.size(0) == logits.size(0),
            "cross_entropy: targets must be int64 [", logits.size(0), "], got ", targets.describe());
  PFQ_CHECK(smoothing >= 0 && smoothing < 1, "cross_entropy: label smoothing ", smoothing, " outside [0, 1)");
  const int64_t N = logits.size(0), K = logits.size(1);
  PFQ_CHECK(N > 0 && K > 0, "cross_entropy: empty logits ", shape_str(logits.shape()));
  if (targets_host.defined())
    PFQ_CHECK(targets_host.device().is_cpu() && targets_host.dtype() == DType::Int64 && targets_host.shape() == targets.shape(),
              "cross_entropy: targets_host must be a CPU int64 copy of targets ", targets.describe(), ", got ", targets_host.describe());
  // Targets may be on the CPU or on the logits' device; validated on the host (for CUDA logits one
  // small device-to-host copy when they live on the GPU, unless the caller has a host copy),
  // then used from the logits' device.
  const Device dev = logits.device();
  const DType dt = logits.dtype();
  PFQ_CHECK(targets.device().is_cpu() || targets.device() == dev, "cross_entropy: targets on ", targets.device().str(),
            " but logits on ", dev.str());
  Tensor t_host = dev.is_cpu() ? targets.contiguous()
                  : targets_host.defined() ? targets_host.contiguous() : targets.detach().to(Device::cpu()).contiguous();
  check_targets(t_host, K);
  Tensor t_dev = dev.is_cpu() ? t_host : targets.device().is_cpu() ? t_host.to(dev) : targets.detach().contiguous();
  Tensor xc = logits.detach().contiguous();
  Tensor logp = Tensor::empty({N, K}, dt, dev);
  Tensor loss = Tensor::empty({}, dt, dev);
  if (dev.is_cuda()) cuda::cross_entropy_forward(xc, t_dev, smoothing, logp, loss);
  else cpu::cross_entropy_forward(xc, t_dev, smoothing, logp, loss);
  return record("cross_entropy", loss, {logits, targets}, [=](const Tensor& g) {
    // g stays on the logits' device: the CUDA kernel reads it there (no host round trip).
    Tensor gd = g.to(dev).contiguous();
    Tensor dx = Tensor::empty({N, K}, dt, dev);
    if (dev.is_cuda()) cuda::cross_entropy_backward(logp, t_dev, smoothing, gd, dx);
    else cpu::cross_entropy_backward(logp, t_dev, smoothing, gd, dx);
    return std::vector<Tensor>{dx, Tensor()};
  });
}

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  PFQ_CHECK(p >= 0 && p < 1, "dropout: probability ", p, " outside [0, 1)");
  if (!training || p == 0) return x;
  // The mask comes from the CPU generator on every device (then copied to x's device): the
  // same seed drops the same elements on CPU and CUDA, at the cost of one host-to-device copy.
  Tensor mask = Tensor::bernoulli(x.shape(), 1 - p, gen, x.dtype());
  mask.mul_(1.0 / (1 - p));
  return mul(x, mask.to(x.device()));
}

}  // namespace pfq
