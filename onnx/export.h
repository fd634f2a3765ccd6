// export.h — ONNX export of a pfq model (onnx/): one more walk of the model graph
// (layers/model_graph.h). Float models become Conv (BN folded, or BatchNormalization) / Relu /
// Clip / Add / MaxPool / GlobalAveragePool / Flatten / Gemm graphs at opset 17; QAT models
// become QDQ graphs at opset 21: weights stored as integers at their bit width (INT4/UINT4
// packed two per byte, INT8 otherwise) behind DequantizeLinear (axis 0 per channel), biases as
// float Adds after the Conv/Gemm (or int32 at scale s_x * s_w as its input, Options::int32_bias),
// a QuantizeLinear/DequantizeLinear pair wherever pfq quantizes an
// activation, PfQ output corrections as constant Adds. Written with protobuf and ONNX's own
// schema (meson feature `onnx`); a build without it says so. Leaves out: dynamic spatial size.
#pragma once
#include <cstdint>
#include <string>

#include "layers/module.h"

namespace pfq::onnx_export {

struct Options {
  Shape input_shape;    // [N, C, H, W] of the model input; N is written as the symbolic "N"
  bool fold_bn = true;  // float models: BN folded into the conv before it; false: BatchNormalization
  bool int32_bias = false;  // QAT: biases int32 at scale s_x * s_w into the Conv/Gemm, else a float32 Add after it
  std::string producer_version;  // written as producer_version ("pfq <version>")
};

struct Result {
  int opset = 0;
  int64_t nodes = 0, initializers = 0;
  int64_t quantize_pairs = 0;  // QuantizeLinear/DequantizeLinear activation pairs
  int64_t bytes = 0;           // file size
  int64_t weight_bytes = 0;    // bytes of the weight initializers (their bit width shows here)
  std::string summary() const;
};

// Whether this build can write ONNX (meson feature `onnx`).
bool available();

// Writes `model` (float, or prepared by quant::prepare_qat; switched to eval while exporting)
// to `path` atomically. Throws pfq::Error naming the unit and what ONNX cannot express (a bit
// width other than 4, 8 or 16, an uncalibrated quantizer, a module with no ONNX counterpart)
// before anything is written.
Result export_model(Module& model, const Options& options, const std::string& path);

}  // namespace pfq::onnx_export
