/// \file
/// model.h — the integer model of a fine-tuned QAT network (quant/, issue #4 item 5/6):
/// int8 weights (per layer or per channel scales, zero point 0), int8 activations with a scale
/// and zero point, int32 accumulation, and requantization by integer multiplier + shift (no
/// float arithmetic between the input quantization and the output logits). Converted from a
/// prepare_qat model (convert_to_integer), run on CPU (forward), exported/loaded as safetensors
/// + JSON graph (docs/integer-format.md is the format's specification). Left out: CUDA.
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "layers/models/model_config.h"
#include "layers/module.h"

namespace pfq::quant {

/// Format tag of .pfqint files.
inline constexpr const char* kIntFormat = "pfq-int-1";

/// One input of a requant node (docs/integer-format.md 4): its value enters as
/// shift_round((v - zero_point) * multiplier[c], shift[c]) + bias[c] + correction[c, oh, ow],
/// all in units of out_scale * 2^-frac_bits.
struct IntTerm {
  std::string input;       ///< name of the node whose value is read
  int32_t zero_point = 0;  ///< the input's zero point (int8 inputs; 0 for int32 accumulators)
  Tensor multiplier;       ///< int32 [C]
  Tensor shift;            ///< int32 [C], 0..62
  Tensor bias;             ///< int32 [C] or undefined (0)
  Tensor correction;       ///< int32 [C, OH, OW] or undefined (0): PfQ border correction
};

/// A node of the graph; which fields matter depends on op:
///   quantize        float input [N, C, H, W] -> int8           (scale, zero_point, qmin, qmax)
///   conv2d          int8 -> int32 accumulators [N, OC, OH, OW] (weight, geometry)
///   linear          int8 [N, K] -> int32 [N, OC]               (weight)
///   global_avgpool  int8 [N, C, H, W] -> int32 [N, C]: sum over H, W of (x - zero point)
///   maxpool         int8 -> int8 [N, C, OH, OW], the input's scale and zero point (kernel, stride, padding)
///   requant         1 or 2 terms -> int8 (terms, frac_bits, scale, zero_point, qmin, qmax)
///   dequantize      int32/int8 [N, C] -> float32 logits        (out_scale, out_bias)
struct IntNode {
  /// Node name and operation ("quantize", "conv", "requant", ...).
  ///@{
  std::string name, op;
  ///@}
  std::vector<std::string> inputs;  ///< quantize: {"input"}; requant: the terms' inputs
  /// int8 output value: real = scale * (q - zero_point), q in [qmin, qmax] (clamps included)
  float scale = 1;
  /// Zero point and code range of the node's output.
  ///@{
  int32_t zero_point = 0, qmin = -128, qmax = 127;
  ///@}
  /// conv2d / linear
  ///@{
  int64_t in_channels = 0, out_channels = 0, groups = 1;
  ///@}
  /// Conv: kernel, stride, padding and dilation per H, W.
  ///@{
  std::array<int64_t, 2> kernel{1, 1}, stride{1, 1}, padding{0, 0}, dilation{1, 1};
  ///@}
  /// Bits of the weight codes.
  int weight_bits = 8;
  Tensor weight;        ///< int8 [OC, IC/groups, KH, KW] or [OC, IC]
  Tensor weight_scale;  ///< float32 [OC]: real weight = weight_scale[oc] * weight (documentation;
                        /// the integer path uses the requant multipliers)
  /// requant
  int frac_bits = 0;
  /// Requant: the weighted inputs summed before rounding.
  std::vector<IntTerm> terms;
  /// dequantize: logits[n, c] = out_scale[c] * (v[n, c] - input_zero_point) + out_bias[c]
  Tensor out_scale;  ///< float32 [C]
  Tensor out_bias;   ///< float32 [C]: the last layer's real bias (float output stage)
  /// Zero point of the node's input.
  int32_t input_zero_point = 0;
};

/// An integer model: int8 weights, int32 accumulation and fixed-point requantization nodes, run by forward() on the
/// CPU.
struct IntModel {
  models::ModelConfig model;  ///< architecture record of the source checkpoint
  nlohmann::json qat;         ///< its QatConfig (informational)
  Shape input_shape;          ///< [C, H, W] the graph was built for (global_avgpool needs H, W)
  std::vector<IntNode> nodes; ///< topological order; the last one is "dequantize"

  /// x float32 [N, C, H, W] -> logits float32 [N, classes]. `reference` uses the naive conv loop.
  /// `trace`, when given, receives the int8 output of every quantize and requant node by name.
  Tensor forward(const Tensor& x, bool reference = false, std::map<std::string, Tensor>* trace = nullptr) const;
  /// Weight and bias bits as stored (int8 at their bit width counted as b bits), for reports.
  std::string summary() const;
  /// The node named `name`; throws pfq::Error when absent.
  const IntNode& node(const std::string& name) const;
};

/// Converts a model prepared by prepare_qat (eval semantics: frozen BN running statistics,
/// calibrated activation quantizers) into the integer graph. Every conv/linear must have a
/// quantized input (an activation quantizer or the input quantizer before it): a layer fed by
/// an unquantized activation is a clear error naming it, as are disabled quantizers,
/// uncalibrated ema observers, minmax activation quantizers (no fixed range) and 8-bit DoReFa
/// weights (9-bit integers). requires: float32 CPU model; cfg.in_channels/input_size as trained.
IntModel convert_to_integer(Module& qat_model, const models::ModelConfig& cfg, const nlohmann::json& qat_config = {});

/// docs/integer-format.md: safetensors with the graph JSON in metadata "pfq_int_graph".
void save_integer_model(const std::string& path, const IntModel& m);
/// Validates format tag, graph (ops, inputs defined before use, fields), every tensor's dtype
/// and shape against the graph; errors name the file and the node.
IntModel load_integer_model(const std::string& path);

}  // namespace pfq::quant
