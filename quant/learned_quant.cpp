// learned_quant.cpp — PACT, LSQ and DoReFa ops: checks, CPU/CUDA kernel dispatch
// (quant/fake_quant_kernel.h) and backward closures that return the formulas documented in
// learned_quant.h.
#include "quant/learned_quant.h"

#include <cmath>

#include "quant/fake_quant.h"
#include "core/layout.h"
#include "core/profiler.h"

namespace pfq::quant {
namespace {

// On CUDA the [C] parameter is copied to the host for the check (a small synchronising copy).
void check_positive(const Tensor& param, const char* what, const char* op) {
  const Tensor p = param.device().is_cpu() ? param : param.to(Device::cpu());
  PFQ_DISPATCH_FLOAT(p.dtype(), op, [&] {
    const scalar_t* d = p.data<scalar_t>();
    for (int64_t i = 0; i < p.numel(); ++i)
      PFQ_CHECK(d[i] > 0, op, ": ", what, "[", i, "] = ", +d[i],
                " must be > 0 (a learning rate too large or a missing lower bound can drive it there)");
  });
}

// x as rows matching a [1] or [C] parameter.
detail::Rows rows_for(const Tensor& x, const Tensor& p, const char* op) {
  PFQ_CHECK(p.defined(), op, ": parameter is undefined");
  return detail::as_rows(x, p.numel() > 1, op);
}

}  // namespace

Tensor pact_quantize(const Tensor& x, const Tensor& alpha, int bits) {
  PFQ_PROFILE("pact_quantize");
  PFQ_CHECK(bits >= 1 && bits <= 8, "pact_quantize: bits must be in 1..8, got ", bits);
  detail::Rows r = rows_for(x, alpha, "pact_quantize");
  Tensor a = detail::check_row_param(alpha, r, x, "alpha", "pact_quantize");
  check_positive(a, "alpha", "pact_quantize");
  const int64_t qmax = (int64_t{1} << bits) - 1;
  Tensor out = empty_like_layout(r.x);
  PFQ_DISPATCH_FLOAT(x.dtype(), "pact_quantize", [&] {
    if (x.device().is_cuda())
      return gpu::pact_forward<scalar_t>(r.C, r.K, r.x.data<scalar_t>(), a.data<scalar_t>(), qmax, out.data<scalar_t>(),
                                         x.device().index);
    cpu::pact_forward<scalar_t>(r.C, r.K, r.x.data<scalar_t>(), a.data<scalar_t>(), qmax, out.data<scalar_t>());
  });
  Tensor xd = r.x;
  const Shape ashape = alpha.shape();
  const int64_t C = r.C, K = r.K;
  return record("pact_quantize", out, {x, alpha}, [=](const Tensor& g) {
    Tensor gc = same_layout_as(g, xd);
    Tensor dx = empty_like_layout(xd), da = Tensor::empty({C}, xd.dtype(), xd.device());
    PFQ_DISPATCH_FLOAT(xd.dtype(), "pact_quantize backward", [&] {
      if (xd.device().is_cuda())
        return gpu::pact_backward<scalar_t>(C, K, xd.data<scalar_t>(), gc.data<scalar_t>(), a.data<scalar_t>(),
                                            dx.data<scalar_t>(), da.data<scalar_t>(), xd.device().index);
      cpu::pact_backward<scalar_t>(C, K, xd.data<scalar_t>(), gc.data<scalar_t>(), a.data<scalar_t>(), dx.data<scalar_t>(),
                                   da.data<scalar_t>());
    });
    return std::vector<Tensor>{dx, reshape(da, ashape)};
  });
}

LsqBounds lsq_bounds(int bits, bool is_signed) {
  PFQ_CHECK(bits >= 2 && bits <= 8, "lsq: bits must be in 2..8, got ", bits);
  if (is_signed) return {int64_t{1} << (bits - 1), (int64_t{1} << (bits - 1)) - 1};
  return {0, (int64_t{1} << bits) - 1};
}

Tensor lsq_quantize(const Tensor& x, const Tensor& step, int bits, bool is_signed) {
  PFQ_PROFILE("lsq_quantize");
  const LsqBounds b = lsq_bounds(bits, is_signed);
  detail::Rows r = rows_for(x, step, "lsq_quantize");
  Tensor s = detail::check_row_param(step, r, x, "step", "lsq_quantize");
  check_positive(s, "step", "lsq_quantize");
  Tensor out = empty_like_layout(r.x);
  PFQ_DISPATCH_FLOAT(x.dtype(), "lsq_quantize", [&] {
    if (x.device().is_cuda())
      return gpu::lsq_forward<scalar_t>(r.C, r.K, r.x.data<scalar_t>(), s.data<scalar_t>(), b.qn, b.qp,
                                        out.data<scalar_t>(), x.device().index);
    cpu::lsq_forward<scalar_t>(r.C, r.K, r.x.data<scalar_t>(), s.data<scalar_t>(), b.qn, b.qp, out.data<scalar_t>());
  });
  Tensor xd = r.x;
  const Shape sshape = step.shape();
  const int64_t C = r.C, K = r.K;
  const double grad_scale = K > 0 ? 1.0 / std::sqrt(static_cast<double>(K) * static_cast<double>(b.qp)) : 0.0;
  return record("lsq_quantize", out, {x, step}, [=](const Tensor& g) {
    Tensor gc = same_layout_as(g, xd);
    Tensor dx = empty_like_layout(xd), ds = Tensor::empty({C}, xd.dtype(), xd.device());
    PFQ_DISPATCH_FLOAT(xd.dtype(), "lsq_quantize backward", [&] {
      if (xd.device().is_cuda())
        return gpu::lsq_backward<scalar_t>(C, K, xd.data<scalar_t>(), gc.data<scalar_t>(), s.data<scalar_t>(), b.qn, b.qp,
                                           grad_scale, dx.data<scalar_t>(), ds.data<scalar_t>(), xd.device().index);
      cpu::lsq_backward<scalar_t>(C, K, xd.data<scalar_t>(), gc.data<scalar_t>(), s.data<scalar_t>(), b.qn, b.qp,
                                  grad_scale, dx.data<scalar_t>(), ds.data<scalar_t>());
    });
    return std::vector<Tensor>{dx, reshape(ds, sshape)};
  });
}

Tensor lsq_init_step(const Tensor& x, int bits, bool is_signed, bool per_channel) {
  const LsqBounds b = lsq_bounds(bits, is_signed);
  detail::Rows r = detail::as_rows(x, per_channel, "lsq_init_step");
  Tensor s = Tensor::empty({r.C}, x.dtype(), x.device());
  PFQ_DISPATCH_FLOAT(x.dtype(), "lsq_init_step", [&] {
    scalar_t* p = s.data<scalar_t>();
    if (x.device().is_cuda()) return gpu::lsq_init_step<scalar_t>(r.C, r.K, r.x.data<scalar_t>(), b.qp, p, x.device().index);
    cpu::row_mean_abs<scalar_t>(r.C, r.K, r.x.data<scalar_t>(), p);
    for (int64_t c = 0; c < r.C; ++c) {
      const scalar_t v = static_cast<scalar_t>(2.0 * static_cast<double>(p[c]) / std::sqrt(static_cast<double>(b.qp)));
      p[c] = v > scalar_t(0) ? v : scalar_t(1);
    }
  });
  return s;
}

Tensor dorefa_quantize(const Tensor& x, int bits, bool per_channel) {
  PFQ_PROFILE("dorefa_quantize");
  PFQ_CHECK(bits >= 1 && bits <= 8, "dorefa_quantize: bits must be in 1..8, got ", bits);
  detail::Rows r = detail::as_rows(x, per_channel, "dorefa_quantize");
  const int64_t n = (int64_t{1} << bits) - 1;
  Tensor out = empty_like_layout(r.x), m = Tensor::empty({r.C}, x.dtype(), x.device());
  PFQ_DISPATCH_FLOAT(x.dtype(), "dorefa_quantize", [&] {
    if (x.device().is_cuda())
      return gpu::dorefa_forward<scalar_t>(r.C, r.K, r.x.data<scalar_t>(), n, m.data<scalar_t>(), out.data<scalar_t>(),
                                           x.device().index);
    cpu::dorefa_forward<scalar_t>(r.C, r.K, r.x.data<scalar_t>(), n, m.data<scalar_t>(), out.data<scalar_t>());
  });
  Tensor xd = r.x;
  const int64_t C = r.C, K = r.K;
  return record("dorefa_quantize", out, {x}, [=](const Tensor& g) {
    Tensor gc = same_layout_as(g, xd);
    Tensor dx = empty_like_layout(xd);
    PFQ_DISPATCH_FLOAT(xd.dtype(), "dorefa_quantize backward", [&] {
      if (xd.device().is_cuda())
        return gpu::dorefa_backward<scalar_t>(C, K, xd.data<scalar_t>(), gc.data<scalar_t>(), m.data<scalar_t>(),
                                              dx.data<scalar_t>(), xd.device().index);
      cpu::dorefa_backward<scalar_t>(C, K, xd.data<scalar_t>(), gc.data<scalar_t>(), m.data<scalar_t>(), dx.data<scalar_t>());
    });
    return std::vector<Tensor>{dx};
  });
}

}  // namespace pfq::quant
