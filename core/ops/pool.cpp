// pool.cpp — max/avg/adaptive-avg pooling ops over [N, C, H, W] and their gradients, on the
// CPU kernels (core/cpu/kernels.h) or the CUDA kernels (core/cuda/kernel_list.h): one body per op,
// one backward closure that runs the backward kernel of the tensors' device.
#include "core/cpu/kernels.h"
#include "core/cuda/kernels.h"
#include "core/layout.h"
#include "core/ops.h"
#include "core/profiler.h"
#include "core/ops/op_util.h"

namespace pfq {
namespace {

PoolGeom pool_geom(const Tensor& x, std::array<int64_t, 2> k, std::array<int64_t, 2> s, std::array<int64_t, 2> p, const char* op) {
  PFQ_CHECK(x.dim() == 4, op, ": input must be [N, C, H, W], got ", shape_str(x.shape()));
  PFQ_CHECK(k[0] > 0 && k[1] > 0 && s[0] > 0 && s[1] > 0, op, ": kernel and stride must be positive");
  PFQ_CHECK(p[0] >= 0 && p[1] >= 0 && 2 * p[0] <= k[0] && 2 * p[1] <= k[1], op, ": padding ", p[0], "x", p[1],
            " must be non-negative and at most half the kernel ", k[0], "x", k[1]);
  PoolGeom g{x.size(0) * x.size(1), x.size(2), x.size(3), 0, 0, k[0], k[1], s[0], s[1], p[0], p[1]};
  g.OH = (g.H + 2 * g.ph - g.kh) / g.sh + 1;
  g.OW = (g.W + 2 * g.pw - g.kw) / g.sw + 1;
  PFQ_CHECK(g.OH > 0 && g.OW > 0, op, ": input ", shape_str(x.shape()), " smaller than the kernel ", k[0], "x", k[1]);
  return g;
}

}  // namespace

Tensor max_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride, std::array<int64_t, 2> padding) {
  PFQ_PROFILE("max_pool2d");
  const PoolGeom g = pool_geom(x, kernel, stride, padding, "max_pool2d");
  const DType dt = x.dtype();
  const Device dev = x.device();
  // channels-last in, channels-last out on the CPU (an NCHW copy each way cost more than the pool)
  const bool nhwc = dev.is_cpu() && is_strictly_channels_last(x);
  const Shape ys{x.size(0), x.size(1), g.OH, g.OW};
  const auto empty = [&](const Shape& s, DType t) { return nhwc ? empty_channels_last(s, t, dev) : Tensor::empty(s, t, dev); };
  Tensor xc = nhwc ? x.detach() : x.detach().contiguous();
  Tensor y = empty(ys, dt);
  // argmax (flat h*W+w of each window's maximum) only when a backward will read it; CUDA always writes it
  const bool grad = any_requires_grad({x});
  Tensor idx = grad || dev.is_cuda() ? empty(ys, DType::Int64) : Tensor();
  if (dev.is_cuda()) cuda::max_pool_forward(g, xc, y, idx);
  else cpu::max_pool_forward(g, nhwc, xc, y, idx);
  if (!grad) return y;
  return record("max_pool2d", y, {x}, [g, idx, nhwc, xs = x.shape(), dt, dev](const Tensor& gy) {
    Tensor dy = nhwc ? channels_last_copy(gy) : gy.contiguous();
    Tensor dx = nhwc ? empty_channels_last(xs, dt, dev) : Tensor::empty(xs, dt, dev);
    if (dev.is_cuda()) cuda::max_pool_backward(g, dy, idx, dx);
    else cpu::max_pool_backward(g, nhwc, dy, idx, dx);
    return one(dx);
  });
}

Tensor avg_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride, std::array<int64_t, 2> padding,
                  bool count_include_pad) {
  PFQ_PROFILE("avg_pool2d");
  const PoolGeom g = pool_geom(x, kernel, stride, padding, "avg_pool2d");
  const bool pad = count_include_pad;
  const DType dt = x.dtype();
  const Device dev = x.device();
  Tensor xc = x.detach().contiguous();
  Tensor y = Tensor::empty({x.size(0), x.size(1), g.OH, g.OW}, dt, dev);
  if (dev.is_cuda()) cuda::avg_pool_forward(g, pad, xc, y);
  else cpu::avg_pool_forward(g, pad, xc, y);
  return record("avg_pool2d", y, {x}, [g, pad, xs = x.shape(), dt, dev](const Tensor& gy) {
    Tensor dy = gy.contiguous();
    Tensor dx = Tensor::empty(xs, dt, dev);
    if (dev.is_cuda()) cuda::avg_pool_backward(g, pad, dy, dx);
    else cpu::avg_pool_backward(g, pad, dy, dx);
    return one(dx);
  });
}

Tensor adaptive_avg_pool2d(const Tensor& x, std::array<int64_t, 2> out) {
  PFQ_PROFILE("adaptive_avg_pool2d");
  PFQ_CHECK(x.dim() == 4, "adaptive_avg_pool2d: input must be [N, C, H, W], got ", shape_str(x.shape()));
  PFQ_CHECK(out[0] > 0 && out[1] > 0, "adaptive_avg_pool2d: output size must be positive");
  const int64_t OH = out[0], OW = out[1];
  const DType dt = x.dtype();
  const Device dev = x.device();
  Tensor xc = x.detach().contiguous();
  Tensor y = Tensor::empty({x.size(0), x.size(1), OH, OW}, dt, dev);
  if (dev.is_cuda()) cuda::adaptive_avg_pool_forward(xc, y);
  else cpu::adaptive_avg_pool_forward(xc, y);
  return record("adaptive_avg_pool2d", y, {x}, [dt, dev, xs = x.shape()](const Tensor& gy) {
    Tensor dy = gy.contiguous();
    Tensor dx = Tensor::empty(xs, dt, dev);
    if (dev.is_cuda()) cuda::adaptive_avg_pool_backward(dy, dx);
    else cpu::adaptive_avg_pool_backward(dy, dx);
    return one(dx);
  });
}

}  // namespace pfq
