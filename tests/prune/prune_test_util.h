// prune_test_util.h — small models and helpers shared by the prune/ tests: random BN
// statistics (so eval-mode outputs are non-trivial), channels forced constant or dead, a twin
// of a model for before/after comparisons. Header-only, test code only.
#pragma once
#include <doctest/doctest.h>

#include <functional>

#include "layers/layers.h"
#include "layers/models/blocks.h"
#include "layers/models/registry.h"
#include "prune/graph.h"

namespace pfq::test {

// Every BN: gamma U(0.5, 1.5), beta U(-0.2, 0.5), running_mean U(-0.2, 0.2), running_var U(0.5, 2).
inline void randomize_bn(Module& m, uint64_t seed) {
  Generator g(seed);
  for (auto& [name, mod] : m.named_modules())
    if (auto* bn = dynamic_cast<BatchNorm2d*>(mod)) {
      auto fill = [&](Tensor t, double lo, double hi) {
        float* d = t.data<float>();
        for (int64_t i = 0; i < t.numel(); ++i) d[i] = static_cast<float>(g.uniform(lo, hi));
      };
      fill(bn->weight(), 0.5, 1.5);
      fill(bn->bias(), -0.2, 0.5);
      fill(bn->running_mean(), -0.2, 0.2);
      fill(bn->running_var(), 0.5, 2.0);
    }
}

inline void set_at(const Tensor& t, int64_t i, float v) { t.data<float>()[i] = v; }
inline float get_at(const Tensor& t, int64_t i) { return t.data<float>()[i]; }

inline Conv2d& conv_at(Module& m, const std::string& path) {
  auto* c = dynamic_cast<Conv2d*>(&m.submodule(path));
  REQUIRE(c != nullptr);
  return *c;
}
inline BatchNorm2d& bn_at(Module& m, const std::string& path) {
  auto* b = dynamic_cast<BatchNorm2d*>(&m.submodule(path));
  REQUIRE(b != nullptr);
  return *b;
}

// Makes output channel c of conv -> bn exactly constant: zero filter, running mean 0, running
// variance `var` (below eps: the criterion sees it), BN output = beta.
inline void make_constant(Conv2d& conv, BatchNorm2d& bn, int64_t c, float beta, float var = 1e-30f) {
  Tensor w = conv.weight();
  const int64_t per = w.numel() / w.size(0);
  for (int64_t i = 0; i < per; ++i) set_at(w, c * per + i, 0.f);
  if (conv.has_bias()) set_at(conv.bias(), c, 0.f);
  set_at(bn.running_mean(), c, 0.f);
  set_at(bn.running_var(), c, var);
  set_at(bn.bias(), c, beta);
}

// Kills channel c after ReLU with a large running variance of its own: BN output always negative.
inline void make_dead(BatchNorm2d& bn, int64_t c) {
  set_at(bn.running_var(), c, 4.f);
  set_at(bn.bias(), c, -100.f);
}

// A fresh model from `make` holding a copy of `src`'s state.
inline ModulePtr twin(const std::function<ModulePtr()>& make, const Module& src) {
  ModulePtr m = make();
  NamedTensors sd;
  for (auto& [n, t] : src.state_dict()) sd.emplace_back(n, t.clone());
  m->load_state_dict(sd, true);
  return m;
}

inline Tensor test_input(const Shape& s, uint64_t seed) {
  Generator g(seed);
  return Tensor::randn(s, g);
}

// stem ConvBNAct(3 -> 8, 3x3, ReLU), DepthwiseSeparable(8 -> 16, stride 2),
// DepthwiseSeparable(16 -> 16), global pool, flatten, Linear(16, 5): a MobileNetV1 in small.
inline ModulePtr tiny_mobilenet(uint64_t seed = 1) {
  Generator g(seed);
  auto m = std::make_shared<Sequential>();
  m->add("stem", std::make_shared<models::ConvBNAct>(3, 8, 3, 1, 1, models::Act::ReLU, g));
  m->add("b1", std::make_shared<models::DepthwiseSeparable>(8, 16, 2, g));
  m->add("b2", std::make_shared<models::DepthwiseSeparable>(16, 16, 1, g));
  m->add("pool", std::make_shared<AdaptiveAvgPool2d>(1));
  m->add("flatten", std::make_shared<Flatten>());
  m->add("fc", std::make_shared<Linear>(16, 5, true, g));
  randomize_bn(*m, seed + 100);
  return m;
}

// A = ConvBNAct(3 -> 6, 3x3, ReLU) then B = ConvBNAct(6 -> 5, k x k, act) [then pool + fc when
// `head`]: a dense consumer of A, zero-padded when k > 1.
inline ModulePtr two_units(int64_t k, models::Act act, bool head, uint64_t seed = 2) {
  Generator g(seed);
  auto m = std::make_shared<Sequential>();
  m->add("a", std::make_shared<models::ConvBNAct>(3, 6, 3, 1, 1, models::Act::ReLU, g));
  m->add("b", std::make_shared<models::ConvBNAct>(6, 5, k, 1, 1, act, g));
  if (head) {
    m->add("pool", std::make_shared<AdaptiveAvgPool2d>(1));
    m->add("flatten", std::make_shared<Flatten>());
    m->add("fc", std::make_shared<Linear>(5, 4, true, g));
  }
  randomize_bn(*m, seed + 100);
  return m;
}

}  // namespace pfq::test
