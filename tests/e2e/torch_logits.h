// torch_logits.h — how the e2e tests compare pfq's logits with PyTorch's stored ones (the
// tests/fixtures/*.safetensors written by the tools/export_*.py scripts): the model's eval-mode
// forward without a tape, and the largest absolute difference beside the largest |torch logit|
// (the scale a relative error divides by).
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "core/autograd.h"
#include "layers/module.h"

namespace pfq::test {

// {max |logits - want|, max |want|} for logits = model(x) in eval mode; want float32, the
// logits' shape (REQUIREd).
inline std::pair<double, double> logits_vs_torch(Module& model, const Tensor& x, const Tensor& want) {
  model.eval();
  Tensor got;
  {
    NoGradGuard ng;
    got = model.forward(x);
  }
  REQUIRE(got.shape() == want.shape());
  const std::vector<float> g = got.contiguous().to_vector<float>(), w = want.contiguous().to_vector<float>();
  double diff = 0, scale = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(g[i]) - w[i]));
    scale = std::max(scale, std::abs(static_cast<double>(w[i])));
  }
  return {diff, scale};
}

}  // namespace pfq::test
