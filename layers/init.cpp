// init.cpp — seeded parameter initialisers (init.h).
#include "layers/init.h"

#include <cmath>

#include "core/autograd.h"

namespace pfq::init {

namespace {
int64_t receptive(const Tensor& w) {
  PFQ_CHECK(w.dim() >= 2, "init: fan in/out needs a tensor with at least 2 dimensions, got ", shape_str(w.shape()));
  int64_t r = 1;
  for (int64_t d = 2; d < w.dim(); ++d) r *= w.size(d);
  return r;
}
void assign(Tensor& t, const Tensor& values) {
  NoGradGuard ng;
  t.copy_(values.to(t.device()));
}
}  // namespace

int64_t fan_in(const Tensor& w) { return w.size(1) * receptive(w); }
int64_t fan_out(const Tensor& w) { return w.size(0) * receptive(w); }

void uniform_(Tensor& t, double lo, double hi, Generator& g) { assign(t, Tensor::rand(t.shape(), g, lo, hi, t.dtype())); }

void normal_(Tensor& t, double mean, double std, Generator& g) { assign(t, Tensor::randn(t.shape(), g, mean, std, t.dtype())); }

void constant_(Tensor& t, double value) {
  NoGradGuard ng;
  t.fill_(value);
}

void kaiming_uniform_default_(Tensor& w, Generator& g) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in(w)));
  uniform_(w, -bound, bound, g);
}

void kaiming_normal_fan_out_(Tensor& w, Generator& g) {
  normal_(w, 0.0, std::sqrt(2.0 / static_cast<double>(fan_out(w))), g);
}

}  // namespace pfq::init
