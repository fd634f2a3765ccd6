// test_qat_gradients.cpp — float64 finite-difference gradients of the BN-folded QAT conv
// (quant/qat.h, QatConv2d) with the weight quantizer off, for both sources of the batch
// statistics (bn_stats float / quantized), in training and with frozen statistics; with a
// conv bias and an output-correction map so every term of the folded formula is exercised.
// BN momentum 0 keeps the running statistics (and so s) fixed across the checker's evaluations.
#include <doctest/doctest.h>

#include "layers/layers.h"
#include "quant/folded_bn.h"
#include "quant/qat.h"
#include "tests/gradcheck.h"

using namespace pfq;
using namespace pfq::quant;

TEST_CASE("gradcheck: folded QatConv2d (weights unquantized), bn_stats float and quantized, training and frozen") {
  for (BnStats stats : {BnStats::Float, BnStats::Quantized})
    for (bool frozen : {false, true}) {
      CAPTURE(static_cast<int>(stats));
      CAPTURE(frozen);
      Generator g(11);
      auto conv = std::make_shared<Conv2d>(3, 4, 3, Conv2dArgs{.padding = 1, .bias = true}, g);
      auto bn = std::make_shared<BatchNorm2d>(4, BatchNorm2dArgs{.momentum = 0.0});
      conv->set_output_correction(Tensor::randn({4, 5, 5}, g, 0.0, 0.3));
      conv->to(DType::Float64);
      bn->to(DType::Float64);
      bn->weight().copy_(Tensor::rand({4}, g, 0.5, 1.5, DType::Float64));
      bn->weight().data<double>()[1] = -0.8;  // a negative gamma: s < 0
      bn->bias().copy_(Tensor::rand({4}, g, -0.5, 0.5, DType::Float64));
      bn->running_mean().copy_(Tensor::rand({4}, g, -0.5, 0.5, DType::Float64));
      bn->running_var().copy_(Tensor::rand({4}, g, 0.5, 2.0, DType::Float64));
      auto fbn = std::make_shared<FoldedBatchNorm2d>(*bn);
      QatConv2d q(conv, fbn, nullptr);
      q.set_bn_stats(stats);
      q.train();
      q.freeze_bn_stats(frozen);
      std::vector<Tensor> inputs{test::rand64({2, 3, 5, 5}, 12)};
      for (const Tensor& p : q.parameters()) inputs.push_back(p);
      for (const Tensor& p : fbn->parameters()) inputs.push_back(p);
      REQUIRE(inputs.size() == 5);  // x, conv weight and bias, gamma, beta
      const Tensor rv = bn->running_var().clone();
      const auto res = test::gradcheck([&](const std::vector<Tensor>& v) { return q.forward(v[0]); }, inputs);
      INFO(res.report);
      CHECK(res.ok);
      CHECK(res.max_abs_err < 1e-5);
      CHECK(test::max_abs_diff(bn->running_var(), rv) == 0);  // momentum 0: s stayed fixed
    }
}

TEST_CASE("gradcheck: folded_bn_train (fused CPU kernels), per-channel bias and correction map, with zscale") {
  for (bool per_position : {false, true})
    for (bool quantized : {false, true}) {
      CAPTURE(per_position);
      CAPTURE(quantized);
      std::vector<Tensor> in{test::rand64({2, 3, 3, 2}, 21), test::rand64({2, 3, 3, 2}, 22, -2, 2),
                             per_position ? test::rand64({3, 3, 2}, 23) : test::rand64({3, 1, 1}, 23),
                             test::rand64({3}, 24, 0.5, 1.5), test::rand64({3}, 25), test::rand64({3}, 27, 0.5, 2.0)};
      const Tensor sigma_r = test::rand64({3}, 26, 0.5, 2.0, false);
      const auto res = test::gradcheck(
          [&](const std::vector<Tensor>& v) {
            // quantized: the statistics of y itself, scaled (z0 = y, zscale = v[5])
            return folded_bn_train({.y = v[0], .z0 = quantized ? v[0] : v[1], .zscale = quantized ? v[5] : Tensor(),
                                    .bmap = v[2], .gamma = v[3], .beta = v[4], .sigma_r = sigma_r, .running_mean = Tensor(),
                                    .running_var = Tensor(), .momentum = 0.1, .eps = 1e-5});
          },
          in);
      INFO(res.report);
      CHECK(res.ok);
      CHECK(res.max_abs_err < 1e-6);
    }
}

TEST_CASE("gradcheck: folded_bn_train with a fused ReLU / ReLU6 tail (no quantizer)") {
  for (BnAct act : {BnAct::ReLU, BnAct::ReLU6})
    for (bool quantized : {false, true}) {
      CAPTURE(static_cast<int>(act));
      CAPTURE(quantized);
      // beta around 3 and gamma around 3: outputs on both sides of 0 and of 6
      std::vector<Tensor> in{test::rand64({2, 3, 3, 2}, 31), test::rand64({2, 3, 3, 2}, 32, -2, 2), test::rand64({3, 1, 1}, 33),
                             test::rand64({3}, 34, 2.0, 4.0), test::rand64({3}, 35, 2.0, 4.0), test::rand64({3}, 37, 0.5, 2.0)};
      const Tensor sigma_r = test::rand64({3}, 36, 0.5, 2.0, false);
      FoldedBnTail tail;
      tail.act = act;
      const auto res = test::gradcheck(
          [&](const std::vector<Tensor>& v) {
            return folded_bn_train({.y = v[0], .z0 = quantized ? v[0] : v[1], .zscale = quantized ? v[5] : Tensor(),
                                    .bmap = v[2], .gamma = v[3], .beta = v[4], .sigma_r = sigma_r, .running_mean = Tensor(),
                                    .running_var = Tensor(), .momentum = 0.1, .eps = 1e-5},
                                   tail);
          },
          in);
      INFO(res.report);
      CHECK(res.ok);
      CHECK(res.max_abs_err < 1e-6);
    }
}
