// new_op_gradcheck.cpp — teaches how to add an op outside the library and prove its gradient:
// swish(x, beta) = x * sigmoid(beta * x) with a learnable scalar beta, written as a primitive (a
// forward loop on raw memory plus ONE backward closure recorded on the autograd tape with
// pfq::record), checked three ways: its forward against the same function composed from
// existing ops, its gradients against central differences with pfq::gradcheck (float64), and a
// deliberately wrong backward that the checker must reject. No data needed.
//
//   new_op_gradcheck        (exit status 0 when all three checks come out as expected)
#include <cmath>
#include <cstdio>

#include "core/gradcheck.h"
#include "core/ops.h"

using namespace pfq;

namespace {

// x [any shape], beta [1] (same float dtype, CPU) -> y [x's shape]. The forward reads raw
// memory; everything the backward needs (x, beta) is captured detached, never the output.
template <typename T>
Tensor swish_impl(const Tensor& x_in, const Tensor& beta_in, bool wrong_backward) {
  PFQ_CHECK(x_in.device().is_cpu() && beta_in.device().is_cpu(), "swish: CPU tensors only, got ", x_in.describe(),
            " and ", beta_in.describe());
  PFQ_CHECK(beta_in.numel() == 1, "swish: beta must hold one value, got ", beta_in.describe());
  const Tensor x = x_in.detach().contiguous(), beta = beta_in.detach().contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  const T b = beta.data<T>()[0];
  const T* px = x.data<T>();
  T* py = y.data<T>();
  for (int64_t i = 0; i < x.numel(); ++i) py[i] = px[i] / (T(1) + std::exp(-b * px[i]));

  // dy/dx = s + beta x s (1 - s),  dy/dbeta = x^2 s (1 - s),  s = sigmoid(beta x).
  // The closure maps grad_out to one gradient per input, in the order of record's input list.
  return record("swish", y, {x_in, beta_in}, [x, beta, wrong_backward](const Tensor& grad_out) -> std::vector<Tensor> {
    const Tensor g = grad_out.contiguous();
    Tensor dx = Tensor::empty(x.shape(), x.dtype()), dbeta = Tensor::zeros({1}, x.dtype());
    const T b = beta.data<T>()[0];
    const T *px = x.data<T>(), *pg = g.data<T>();
    T *pdx = dx.data<T>(), *pdb = dbeta.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      const T s = T(1) / (T(1) + std::exp(-b * px[i]));
      // The wrong variant forgets the second term of dy/dx (the kind of slip gradcheck exists for).
      pdx[i] = pg[i] * (wrong_backward ? s : s + b * px[i] * s * (T(1) - s));
      pdb[0] += pg[i] * px[i] * px[i] * s * (T(1) - s);  // beta was broadcast: its gradient sums
    }
    return {dx, dbeta};
  });
}

Tensor swish(const Tensor& x, const Tensor& beta, bool wrong_backward = false) {
  PFQ_CHECK(x.dtype() == beta.dtype(), "swish: x and beta must share a dtype, got ", x.describe(), " and ",
            beta.describe());
  if (x.dtype() == DType::Float32) return swish_impl<float>(x, beta, wrong_backward);
  PFQ_CHECK(x.dtype() == DType::Float64, "swish: float32 or float64 expected, got ", x.describe());
  return swish_impl<double>(x, beta, wrong_backward);
}

}  // namespace

int main() {
  Generator gen(7);
  // gradcheck perturbs float64 leaves that require grad, one element at a time.
  Tensor x = Tensor::randn({2, 3, 4}, gen, 0, 2, DType::Float64);
  Tensor beta = Tensor::full({1}, 1.3, DType::Float64);
  x.set_requires_grad(true);
  beta.set_requires_grad(true);
  int failures = 0;

  // 1. Forward: the primitive against the same function composed from existing ops.
  Tensor composed;
  {
    NoGradGuard no_grad;
    composed = mul(x, sigmoid(mul(x, beta)));
  }
  const double fwd_err = max_abs_diff(swish(x, beta), composed);
  std::printf("forward vs composed ops: max |diff| = %.3g\n", fwd_err);
  failures += fwd_err > 1e-12;

  // 2. The correct backward passes the finite-difference check.
  auto f = [](const std::vector<Tensor>& in) { return swish(in[0], in[1]); };
  GradcheckResult ok = gradcheck(f, {x, beta});
  std::printf("gradcheck(swish): %s, max |analytic - numeric| = %.3g\n", ok.ok ? "pass" : "FAIL", ok.max_abs_err);
  if (!ok.ok) std::printf("%s", ok.report.c_str());
  failures += !ok.ok;

  // 3. A wrong backward is caught, and the report says where.
  auto f_wrong = [](const std::vector<Tensor>& in) { return swish(in[0], in[1], /*wrong_backward=*/true); };
  GradcheckResult bad = gradcheck(f_wrong, {x, beta});
  std::printf("gradcheck(swish with a wrong dx): %s (expected to fail)\n%s", bad.ok ? "pass" : "fail",
              bad.report.c_str());
  failures += bad.ok;

  // 4. Used like any op: a float32 tensor through the tape, beta's gradient by backward().
  Tensor x32 = Tensor::randn({8}, gen);
  Tensor beta32 = Tensor::full({1}, 1.0);
  beta32.set_requires_grad(true);
  sum(swish(x32, beta32)).backward();
  std::printf("float32: d sum(swish(x)) / d beta = %.4f\n", beta32.grad().item());

  std::printf("%s\n", failures == 0 ? "all checks as expected" : "CHECKS FAILED");
  return failures == 0 ? 0 : 1;
}
