// fake_quant.cpp — the fused fake-quantize op: argument checks, dispatch to the CPU or CUDA
// kernel (quant/fake_quant_kernel.{cpp,cu}) and the straight-through backward closure.
#include "quant/fake_quant.h"

#include "core/layout.h"
#include "core/profiler.h"

namespace pfq::quant {

namespace detail {

Rows as_rows(const Tensor& x, bool per_channel, const char* op) {
  PFQ_CHECK(x.defined(), op, ": undefined input tensor");
  PFQ_CHECK(is_floating(x.dtype()), op, ": expected a float32 or float64 tensor, got ", x.describe());
  Rows r;
  // per tensor, a channels-last x is used as it lies (the kernels see C*K values in any order);
  // outputs and gradients then take its layout (core/layout.h)
  r.x = !per_channel && is_strictly_channels_last(x) ? x.detach() : x.detach().contiguous();
  if (per_channel) {
    PFQ_CHECK(x.dim() >= 1, op, ": per-channel quantization needs a tensor with an axis 0 (output channels), got ",
              x.describe());
    r.C = x.size(0);
  }
  r.K = r.C > 0 ? x.numel() / r.C : 0;
  return r;
}

Tensor check_row_param(const Tensor& p, const Rows& r, const Tensor& x, const char* what, const char* op) {
  PFQ_CHECK(p.defined(), op, ": ", what, " is undefined");
  PFQ_CHECK(p.dtype() == x.dtype() && p.device() == x.device(), op, ": ", what, " is ", p.describe(),
            " but the input is ", x.describe(), " (dtypes and devices must match)");
  PFQ_CHECK(p.numel() == r.C, op, ": ", what, " has ", p.numel(), " elements (", p.describe(), "), expected ", r.C,
            r.C == 1 ? " (per tensor)" : " (one per index of axis 0)");
  return p.detach().contiguous();
}

}  // namespace detail

void check_fake_quant_options(const FakeQuantOptions& opt, const char* who) {
  PFQ_CHECK(opt.bits >= 1 && opt.bits <= 8, who, ": bits must be in 1..8 (1 = binary sign), got ", opt.bits);
  PFQ_CHECK(opt.bits >= 2 || opt.symmetric, who,
            ": 1-bit quantization is the binary sign s * sign(x) for weights and needs symmetric = true");
}

cpu::QuantGrid grid_of(const FakeQuantOptions& opt) { return cpu::quant_grid(opt.bits, opt.symmetric); }

namespace {

// Shared body of fake_quantize / fake_quantize_range; lo/hi are [C] buffers (read when !observe).
FakeQuantResult run(const Tensor& x, const detail::Rows& r, const FakeQuantOptions& opt, bool observe, Tensor lo,
                    Tensor hi) {
  const DType dt = x.dtype();
  const Device dev = x.device();
  FakeQuantResult res;
  res.out = empty_like_layout(r.x);
  res.scale = Tensor::empty({r.C}, dt, dev);
  res.zero_point = Tensor::zeros({r.C}, dt, dev);
  const cpu::QuantGrid g = opt.bits >= 2 ? grid_of(opt) : cpu::QuantGrid{-1, 1};
  const bool binary = opt.bits == 1;
  PFQ_DISPATCH_FLOAT(dt, "fake_quantize", [&] {
    const scalar_t* px = r.x.data<scalar_t>();
    if (dev.is_cuda()) {
      if (binary)
        gpu::binary_forward<scalar_t>(r.C, r.K, px, res.scale.data<scalar_t>(), res.out.data<scalar_t>(), dev.index);
      else
        gpu::fake_quant_forward<scalar_t>(r.C, r.K, px, g, opt.symmetric, observe, lo.data<scalar_t>(), hi.data<scalar_t>(),
                                          res.scale.data<scalar_t>(), res.zero_point.data<scalar_t>(),
                                          res.out.data<scalar_t>(), dev.index);
    } else if (binary)
      cpu::binary_forward<scalar_t>(r.C, r.K, px, res.scale.data<scalar_t>(), res.out.data<scalar_t>());
    else
      cpu::fake_quant_forward<scalar_t>(r.C, r.K, px, g, opt.symmetric, observe, lo.data<scalar_t>(), hi.data<scalar_t>(),
                                        res.scale.data<scalar_t>(), res.zero_point.data<scalar_t>(),
                                        res.out.data<scalar_t>());
  });
  if (!any_requires_grad({x})) return res;
  Tensor xd = r.x, sd = res.scale, zd = res.zero_point;
  const int64_t C = r.C, K = r.K;
  res.out = record("fake_quantize", res.out, {x}, [=](const Tensor& gout) {
    Tensor gc = same_layout_as(gout, xd);
    Tensor dx = empty_like_layout(xd);
    PFQ_DISPATCH_FLOAT(xd.dtype(), "fake_quantize backward", [&] {
      if (xd.device().is_cuda()) {
        const int d = xd.device().index;
        if (binary)
          gpu::binary_backward_x<scalar_t>(C * K, xd.data<scalar_t>(), gc.data<scalar_t>(), dx.data<scalar_t>(), d);
        else
          gpu::fake_quant_backward_x<scalar_t>(C, K, xd.data<scalar_t>(), gc.data<scalar_t>(), sd.data<scalar_t>(),
                                               zd.data<scalar_t>(), g, dx.data<scalar_t>(), d);
      } else if (binary)
        cpu::binary_backward_x<scalar_t>(C * K, xd.data<scalar_t>(), gc.data<scalar_t>(), dx.data<scalar_t>());
      else
        cpu::fake_quant_backward_x<scalar_t>(C, K, xd.data<scalar_t>(), gc.data<scalar_t>(), sd.data<scalar_t>(),
                                             zd.data<scalar_t>(), g, dx.data<scalar_t>());
    });
    return std::vector<Tensor>{dx};
  });
  return res;
}

}  // namespace

FakeQuantResult fake_quantize(const Tensor& x, const FakeQuantOptions& opt) {
  PFQ_PROFILE("fake_quantize");
  check_fake_quant_options(opt, "fake_quantize");
  detail::Rows r = detail::as_rows(x, opt.per_channel, "fake_quantize");
  return run(x, r, opt, true, Tensor::empty({r.C}, x.dtype(), x.device()), Tensor::empty({r.C}, x.dtype(), x.device()));
}

FakeQuantResult fake_quantize_range(const Tensor& x, const Tensor& lo, const Tensor& hi, const FakeQuantOptions& opt) {
  PFQ_PROFILE("fake_quantize");
  check_fake_quant_options(opt, "fake_quantize_range");
  PFQ_CHECK(opt.bits >= 2, "fake_quantize_range: bits must be >= 2 (1-bit sign takes no range; use fake_quantize)");
  detail::Rows r = detail::as_rows(x, opt.per_channel, "fake_quantize_range");
  Tensor l = detail::check_row_param(lo, r, x, "lo", "fake_quantize_range");
  Tensor h = detail::check_row_param(hi, r, x, "hi", "fake_quantize_range");
  return run(x, r, opt, false, l, h);
}

std::pair<Tensor, Tensor> range_qparams(const Tensor& lo, const Tensor& hi, const FakeQuantOptions& opt) {
  check_fake_quant_options(opt, "range_qparams");
  PFQ_CHECK(opt.bits >= 2, "range_qparams: bits must be >= 2, got ", opt.bits);
  PFQ_CHECK(lo.defined() && hi.defined() && lo.shape() == hi.shape() && lo.dim() == 1 && lo.dtype() == hi.dtype() &&
                is_floating(lo.dtype()),
            "range_qparams: lo and hi must be float [C] tensors of one shape and dtype, got ", lo.describe(), " and ",
            hi.describe());
  const Tensor l = lo.to(Device::cpu()).contiguous(), h = hi.to(Device::cpu()).contiguous();
  Tensor scale = Tensor::empty(lo.shape(), lo.dtype()), zp = Tensor::empty(lo.shape(), lo.dtype());
  PFQ_DISPATCH_FLOAT(lo.dtype(), "range_qparams", [&] {
    for (int64_t c = 0; c < lo.numel(); ++c)
      cpu::qparams_from_range(l.data<scalar_t>()[c], h.data<scalar_t>()[c], grid_of(opt), opt.symmetric,
                              scale.data<scalar_t>()[c], zp.data<scalar_t>()[c]);
  });
  return {scale.to(lo.device()), zp.to(lo.device())};
}

std::pair<Tensor, Tensor> observe_range(const Tensor& x, const FakeQuantOptions& opt) {
  PFQ_PROFILE("observe_range");
  detail::Rows r = detail::as_rows(x, opt.per_channel, "observe_range");
  Tensor lo = Tensor::empty({r.C}, x.dtype(), x.device()), hi = Tensor::empty({r.C}, x.dtype(), x.device());
  PFQ_DISPATCH_FLOAT(x.dtype(), "observe_range", [&] {
    if (x.device().is_cuda())
      return gpu::observe_range<scalar_t>(r.C, r.K, r.x.data<scalar_t>(), opt.symmetric, lo.data<scalar_t>(),
                                          hi.data<scalar_t>(), x.device().index);
    cpu::observe_range<scalar_t>(r.C, r.K, r.x.data<scalar_t>(), opt.symmetric, lo.data<scalar_t>(), hi.data<scalar_t>());
  });
  return {lo, hi};
}

}  // namespace pfq::quant
