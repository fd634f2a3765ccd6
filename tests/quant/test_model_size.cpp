// test_model_size.cpp — model size accounting (quant/model_size.h) against a hand count for a
// tiny float model and its QAT version (per layer and per channel).
#include <doctest/doctest.h>

#include "layers/layers.h"
#include "quant/model_size.h"
#include "quant/qat.h"

using namespace pfq;
using namespace pfq::quant;

namespace {

// conv 1 -> 2 (3x3, no bias), BN(2), ReLU, global pool, flatten, linear 2 -> 3
ModulePtr tiny() {
  Generator g(0);
  auto m = std::make_shared<Sequential>();
  m->push_back(std::make_shared<Conv2d>(1, 2, 3, Conv2dArgs{.padding = 1, .bias = false}, g));
  m->push_back(std::make_shared<BatchNorm2d>(2));
  m->push_back(std::make_shared<ReLU>());
  m->push_back(std::make_shared<AdaptiveAvgPool2d>(1));
  m->push_back(std::make_shared<Flatten>(1));
  m->push_back(std::make_shared<Linear>(2, 3, true, g));
  return m;
}

}  // namespace

TEST_CASE("model size of a float model: every parameter and BN statistic at 32 bits") {
  ModelSize s = model_size(*tiny());
  // conv 18 weights; BN gamma, beta, mean, var 4 x 2; linear 6 weights + 3 biases
  CHECK(s.total_bits() == (18 + 8 + 6 + 3) * 32);
  CHECK(s.kib() == doctest::Approx(1120.0 / 8 / 1024));
  CHECK(s.float32_kib() == doctest::Approx(s.kib()));
  CHECK(s.weight_elements() == 24);
}

TEST_CASE("model size of a QAT model: weights at their bits, scales/biases/act params at 32") {
  ModulePtr m = tiny();
  QatConfig q;
  q.wbits = 4;
  q.abits = 4;
  q.first_last_bits = 8;  // the only conv is first and the only linear last: both 8-bit
  prepare_qat(*m, q);
  ModelSize s = model_size(*m);
  // conv: 18 x 8 + (1 scale + 2 folded biases) x 32; its input quantizer 2 x 32
  // ReLU quantizer 2 x 32; linear: 6 x 8 + (1 scale + 3 biases) x 32; its input quantizer 2 x 32
  CHECK(s.total_bits() == 144 + 96 + 64 + 64 + 48 + 128 + 64);

  ModulePtr m2 = tiny();
  q.per_channel = true;
  q.first_last_bits = 4;
  prepare_qat(*m2, q);
  // per channel: 2 + 3 scales; 4-bit weights
  CHECK(model_size(*m2).total_bits() == 18 * 4 + (2 + 2) * 32 + 64 + 64 + 6 * 4 + (3 + 3) * 32 + 64);

  ModulePtr m3 = tiny();
  q.per_channel = false;
  q.fold_bn = false;  // BN kept: gamma, beta, mean, var stored; conv has no bias
  prepare_qat(*m3, q);
  CHECK(model_size(*m3).total_bits() == 18 * 4 + 1 * 32 + 8 * 32 + 64 + 64 + 6 * 4 + 4 * 32 + 64);
}
