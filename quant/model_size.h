/// \file
/// model_size.h — model size accounting (quant/, docs/method.md 4.4): the bits of every tensor a
/// deployed model stores. Float layers: every parameter and BN statistic at 32 bits. QAT layers:
/// weights at their quantizer's bit width, weight scales (1 or OC) at 32 bits, the bias (folded
/// BN: beta + s * (b - mu), one per output channel) and PfQ correction maps at 32 bits; a folded
/// BN stores nothing of its own; an unfolded BN stores gamma, beta, mean, var. Activation
/// quantizers: scale and zero point at 32 bits each. Training-only state is not counted.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "layers/module.h"

namespace pfq::quant {

/// The storage of one module in a ModelSize.
struct LayerSize {
  /// Module path and type.
  ///@{
  std::string name, type;
  ///@}
  int64_t weights = 0;    ///< weight elements
  int weight_bits = 32;   ///< bits per weight element
  int64_t other32 = 0;    ///< 32-bit elements: scales, biases, BN tensors, correction maps, act qparams
  /// Bits this module stores.
  int64_t bits() const { return weights * weight_bits + other32 * 32; }
};

/// The stored size of a model: quantized weights at their bit width, everything else at 32 bits.
struct ModelSize {
  std::vector<LayerSize> layers;  ///< modules that store something, in module order
  /// Bits of every layer.
  int64_t total_bits() const;
  /// total_bits() in KiB.
  double kib() const { return static_cast<double>(total_bits()) / 8.0 / 1024.0; }
  /// Weights of conv/linear layers (elements) and the 32-bit size of the same model for comparison.
  int64_t weight_elements() const;
  /// The same model with every stored element at 32 bits, in KiB.
  double float32_kib() const;
  std::string str() const;  ///< per-layer table + total
  /// The layers and totals as JSON (model_size.json).
  nlohmann::json to_json() const;
};

/// Float models (Conv2d, Linear, BatchNorm2d, other parameters at 32 bits) and prepare_qat models
/// (QatConv2d, QatLinear, FoldedBatchNorm2d, FakeQuantize) alike.
ModelSize model_size(const Module& model);

}  // namespace pfq::quant
