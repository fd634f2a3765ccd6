// kernels.cpp — the CPU backend's Tensor entry points (kernels.h): dtype dispatch onto the
// templated pointer kernels, nothing else.
#include "core/cpu/kernels.h"

#include <cmath>
#include <vector>

#include "core/cpu/conv_backend.h"
#include "core/cpu/gemm.h"
#include "core/cpu/norm_pool.h"
#include "core/cpu/reduce.h"
#include "core/dtype.h"

namespace pfq::cpu {

namespace {
// The data of an optional tensor: nullptr when undefined.
template <typename T> const T* in_or_null(const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; }
template <typename T> T* out_or_null(const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; }
}  // namespace

void bmm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, const Tensor& out) {
  const int64_t batch = a.size(0);
  const int64_t M = trans_a ? a.size(2) : a.size(1), K = trans_a ? a.size(1) : a.size(2), N = trans_b ? b.size(1) : b.size(2);
  const bool shared_b = b.size(0) == 1;
  PFQ_DISPATCH_FLOAT(a.dtype(), "matmul", [&] {
    const scalar_t* pa = a.data<scalar_t>();
    const scalar_t* pb = b.data<scalar_t>();
    scalar_t* po = out.data<scalar_t>();
    for (int64_t i = 0; i < batch; ++i)
      gemm<scalar_t>(trans_a, trans_b, M, N, K, 1, pa + i * M * K, trans_a ? M : K, pb + (shared_b ? 0 : i * K * N), trans_b ? K : N, 0,
                     po + i * M * N, N);
  });
}

void conv2d_forward(const ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y) {
  PFQ_DISPATCH_FLOAT(x.dtype(), "conv2d", [&] {
    conv_forward<scalar_t>(g, x.data<scalar_t>(), w.data<scalar_t>(), in_or_null<scalar_t>(b), y.data<scalar_t>());
  });
}

void conv2d_backward(const ConvGeom& g, const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& dx, const Tensor& dw) {
  PFQ_DISPATCH_FLOAT(dy.dtype(), "conv2d_backward", [&] {
    conv_backward<scalar_t>(g, dy.data<scalar_t>(), in_or_null<scalar_t>(x), in_or_null<scalar_t>(w), out_or_null<scalar_t>(dx), out_or_null<scalar_t>(dw));
  });
}

void batch_norm_act_forward(bool nhwc, bool training, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                            const Tensor& running_mean, const Tensor& running_var, double momentum, double eps, double lo, double hi,
                            const Tensor& y, const Tensor& mean, const Tensor& invstd) {
  const int64_t N = x.size(0), C = x.size(1), S = x.dim() == 4 ? x.size(2) * x.size(3) : 1, M = N * S;
  double* pm = mean.data<double>();
  double* pi = invstd.data<double>();
  PFQ_DISPATCH_FLOAT(x.dtype(), "batch_norm", [&] {
    const scalar_t* pw = in_or_null<scalar_t>(gamma);
    const scalar_t* pb = in_or_null<scalar_t>(beta);
    if (training) {
      std::vector<double> var(C);
      if (nhwc)
        batch_norm_train_forward_nhwc<scalar_t>(M, C, x.data<scalar_t>(), pw, pb, eps, scalar_t(lo), scalar_t(hi), y.data<scalar_t>(), pm,
                                                pi, var.data());
      else
        batch_norm_train_forward<scalar_t>(N, C, S, x.data<scalar_t>(), pw, pb, eps, scalar_t(lo), scalar_t(hi), y.data<scalar_t>(), pm,
                                           pi, var.data());
      if (running_mean.defined() && running_var.defined()) {
        scalar_t* rm = running_mean.data<scalar_t>();
        scalar_t* rv = running_var.data<scalar_t>();
        const double unbias = static_cast<double>(N * S) / static_cast<double>(N * S - 1);
        for (int64_t c = 0; c < C; ++c) {
          rm[c] = static_cast<scalar_t>((1 - momentum) * rm[c] + momentum * pm[c]);
          rv[c] = static_cast<scalar_t>((1 - momentum) * rv[c] + momentum * var[c] * unbias);
        }
      }
    } else {
      Tensor rm = running_mean.contiguous(), rv = running_var.contiguous();
      for (int64_t c = 0; c < C; ++c) {
        pm[c] = rm.data<scalar_t>()[c];
        pi[c] = 1.0 / std::sqrt(static_cast<double>(rv.data<scalar_t>()[c]) + eps);
      }
      if (nhwc)
        batch_norm_apply_nhwc<scalar_t>(M, C, x.data<scalar_t>(), pm, pi, pw, pb, scalar_t(lo), scalar_t(hi), y.data<scalar_t>());
      else
        batch_norm_apply<scalar_t>(N, C, S, x.data<scalar_t>(), pm, pi, pw, pb, scalar_t(lo), scalar_t(hi), y.data<scalar_t>());
    }
  });
}

void batch_norm_act_backward(bool nhwc, bool training, const Tensor& x, const Tensor& dy, const Tensor& y, double lo, double hi,
                             const Tensor& mean, const Tensor& invstd, const Tensor& gamma, const Tensor& dx, const Tensor& dgamma,
                             const Tensor& dbeta) {
  const int64_t N = x.size(0), C = x.size(1), S = x.dim() == 4 ? x.size(2) * x.size(3) : 1;
  PFQ_DISPATCH_FLOAT(x.dtype(), "batch_norm_backward", [&] {
    if (nhwc)
      batch_norm_backward_nhwc<scalar_t>(N * S, C, training, x.data<scalar_t>(), dy.data<scalar_t>(), in_or_null<scalar_t>(y), scalar_t(lo),
                                         scalar_t(hi), mean.data<double>(), invstd.data<double>(), in_or_null<scalar_t>(gamma),
                                         out_or_null<scalar_t>(dx), out_or_null<scalar_t>(dgamma), out_or_null<scalar_t>(dbeta));
    else
      batch_norm_backward<scalar_t>(N, C, S, training, x.data<scalar_t>(), dy.data<scalar_t>(), in_or_null<scalar_t>(y), scalar_t(lo),
                                    scalar_t(hi), mean.data<double>(), invstd.data<double>(), in_or_null<scalar_t>(gamma), out_or_null<scalar_t>(dx),
                                    out_or_null<scalar_t>(dgamma), out_or_null<scalar_t>(dbeta));
  });
}

void max_pool_forward(const PoolGeom& g, bool nhwc, const Tensor& x, const Tensor& y, const Tensor& argmax) {
  int64_t* am = argmax.defined() ? argmax.data<int64_t>() : nullptr;
  PFQ_DISPATCH_FLOAT(x.dtype(), "max_pool2d", [&] {
    if (nhwc) max_pool_forward_nhwc<scalar_t>(g, x.size(1), x.data<scalar_t>(), y.data<scalar_t>(), am);
    else max_pool_forward<scalar_t>(g, x.data<scalar_t>(), y.data<scalar_t>(), am);
  });
}

void max_pool_backward(const PoolGeom& g, bool nhwc, const Tensor& dy, const Tensor& argmax, const Tensor& dx) {
  PFQ_DISPATCH_FLOAT(dy.dtype(), "max_pool2d_backward", [&] {
    if (nhwc) max_pool_backward_nhwc<scalar_t>(g, dx.size(1), dy.data<scalar_t>(), argmax.data<int64_t>(), dx.data<scalar_t>());
    else max_pool_backward<scalar_t>(g, dy.data<scalar_t>(), argmax.data<int64_t>(), dx.data<scalar_t>());
  });
}

void avg_pool_forward(const PoolGeom& g, bool count_include_pad, const Tensor& x, const Tensor& y) {
  PFQ_DISPATCH_FLOAT(x.dtype(), "avg_pool2d", [&] {
    avg_pool_forward<scalar_t>(g, count_include_pad, x.data<scalar_t>(), y.data<scalar_t>());
  });
}

void avg_pool_backward(const PoolGeom& g, bool count_include_pad, const Tensor& dy, const Tensor& dx) {
  PFQ_DISPATCH_FLOAT(dy.dtype(), "avg_pool2d_backward", [&] {
    avg_pool_backward<scalar_t>(g, count_include_pad, dy.data<scalar_t>(), dx.data<scalar_t>());
  });
}

void adaptive_avg_pool_forward(const Tensor& x, const Tensor& y) {
  PFQ_DISPATCH_FLOAT(x.dtype(), "adaptive_avg_pool2d", [&] {
    adaptive_avg_pool_forward<scalar_t>(x.size(0) * x.size(1), x.size(2), x.size(3), y.size(2), y.size(3), x.data<scalar_t>(),
                                        y.data<scalar_t>());
  });
}

void adaptive_avg_pool_backward(const Tensor& dy, const Tensor& dx) {
  PFQ_DISPATCH_FLOAT(dy.dtype(), "adaptive_avg_pool2d_backward", [&] {
    adaptive_avg_pool_backward<scalar_t>(dx.size(0) * dx.size(1), dx.size(2), dx.size(3), dy.size(2), dy.size(3), dy.data<scalar_t>(),
                                         dx.data<scalar_t>());
  });
}

void sum_rows(const Tensor& x, const Tensor& out, int64_t outer, int64_t inner) {
  PFQ_DISPATCH_FLOAT(x.dtype(), "sum", [&] { sum_rows<scalar_t>(x.data<scalar_t>(), out.data<scalar_t>(), outer, inner); });
}

void extreme_rows(const Tensor& x, int64_t outer, int64_t inner, bool is_max, const Tensor& values, const Tensor& indices) {
  PFQ_DISPATCH_FLOAT(x.dtype(), is_max ? "max" : "min", [&] {
    extreme_rows<scalar_t>(x.data<scalar_t>(), outer, inner, is_max, out_or_null<scalar_t>(values), indices.data<int64_t>());
  });
}

void scatter_rows(const Tensor& g, const Tensor& index, const Tensor& flat, int64_t outer, int64_t inner) {
  PFQ_DISPATCH_FLOAT(flat.dtype(), "max_backward", [&] {
    scatter_rows<scalar_t>(g.data<scalar_t>(), index.data<int64_t>(), flat.data<scalar_t>(), outer, inner);
  });
}

void log_softmax_rows(const Tensor& x, const Tensor& out, int64_t R, int64_t K) {
  PFQ_DISPATCH_FLOAT(x.dtype(), "log_softmax", [&] { log_softmax_rows<scalar_t>(x.data<scalar_t>(), out.data<scalar_t>(), R, K); });
}

void cross_entropy_forward(const Tensor& logits, const Tensor& targets, double smoothing, const Tensor& logp, const Tensor& loss) {
  PFQ_DISPATCH_FLOAT(logits.dtype(), "cross_entropy", [&] {
    cross_entropy_forward<scalar_t>(logits.data<scalar_t>(), targets.data<int64_t>(), logits.size(0), logits.size(1), smoothing,
                                    logp.data<scalar_t>(), loss.data<scalar_t>());
  });
}

void cross_entropy_backward(const Tensor& logp, const Tensor& targets, double smoothing, const Tensor& g, const Tensor& dx) {
  const double scale = g.item() / static_cast<double>(logp.size(0));
  PFQ_DISPATCH_FLOAT(logp.dtype(), "cross_entropy_backward", [&] {
    cross_entropy_backward<scalar_t>(logp.data<scalar_t>(), targets.data<int64_t>(), logp.size(0), logp.size(1), smoothing, scale,
                                     dx.data<scalar_t>());
  });
}

}  // namespace pfq::cpu
