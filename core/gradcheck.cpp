// gradcheck.cpp — central-difference gradient checking in float64 (core/gradcheck.h).
#include "core/gradcheck.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace pfq {

double max_abs_diff(const Tensor& a, const Tensor& b) {
  PFQ_CHECK(a.shape() == b.shape(), "max_abs_diff: shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()));
  std::vector<double> x = a.detach().to(DType::Float64).to_vector<double>();
  std::vector<double> y = b.detach().to(DType::Float64).to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, std::vector<Tensor> inputs, double eps,
                          double atol, double rtol) {
  GradcheckResult res;
  std::ostringstream rep;
  Tensor out0;
  {
    NoGradGuard ng;
    out0 = f(inputs);
  }
  Generator g(1234);
  Tensor w = Tensor::rand(out0.shape(), g, 0.5, 1.5, DType::Float64);
  auto objective = [&](const std::vector<Tensor>& in) { return sum(mul(f(in), w)); };
  for (auto& t : inputs)
    if (t.defined() && t.requires_grad()) t.set_grad(Tensor());
  objective(inputs).backward();
  int reported = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor& x = inputs[i];
    if (!x.defined() || !x.requires_grad()) continue;
    PFQ_CHECK(x.dtype() == DType::Float64 && x.is_contiguous(), "gradcheck: input ", i, " must be contiguous float64");
    Tensor analytic = x.grad().defined() ? x.grad() : Tensor::zeros(x.shape(), DType::Float64);
    std::vector<double> an = analytic.to_vector<double>();
    double* px = x.data<double>();
    for (int64_t k = 0; k < x.numel(); ++k) {
      const double orig = px[k];
      double fp, fm;
      {
        NoGradGuard ng;
        px[k] = orig + eps;
        fp = objective(inputs).item();
        px[k] = orig - eps;
        fm = objective(inputs).item();
        px[k] = orig;
      }
      const double num = (fp - fm) / (2 * eps);
      const double err = std::abs(an[k] - num);
      res.max_abs_err = std::max(res.max_abs_err, err);
      if (err > atol + rtol * std::abs(num)) {
        res.ok = false;
        if (reported++ < 5) rep << "input " << i << " element " << k << ": analytic " << an[k] << " numeric " << num << "\n";
      }
    }
  }
  res.report = rep.str();
  return res;
}

}  // namespace pfq
