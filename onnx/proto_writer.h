// proto_writer.h — building an ONNX GraphProto (onnx/): unique names, typed initializers
// (float32, int32/64, and integers at 4, 8 or 16 bits, INT4/UINT4 packed two per byte, low
// nibble first, as the ONNX spec stores them), nodes and their attributes. Knows nothing about
// pfq's models (export.cpp walks them). Leaves out: external data (files above 2 GiB), sparse tensors.
#pragma once
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "onnx.pb.h"

namespace pfq::onnx_export {

// TensorProto.DataType values. INT4 / UINT4 postdate the onnx.proto Debian ships, but the field
// is an int32, so the numbers of ONNX 1.16's schema are written as they are.
enum class Elem : int32_t { Float = 1, Uint8 = 2, Int8 = 3, Uint16 = 4, Int16 = 5, Int32 = 6, Int64 = 7, Uint4 = 21, Int4 = 22 };

// The integer type that holds `bits`-bit values (4, 8 or 16; signed or not) and its range.
Elem int_elem(int bits, bool is_signed);
void elem_range(Elem e, int64_t& lo, int64_t& hi);
const char* elem_name(Elem e);

class ProtoWriter {
 public:
  explicit ProtoWriter(::onnx::GraphProto* graph) : g_(graph) {}

  // `base` made unique among every node, initializer and value name written so far.
  std::string fresh(const std::string& base);

  // `weight`: the bytes count in weight_bytes.
  std::string init_float(const std::string& base, const std::vector<float>& values, const std::vector<int64_t>& dims,
                         bool weight = false);
  // Integer values of type e (checked against its range), packed as ONNX stores them.
  std::string init_int(const std::string& base, Elem e, const std::vector<int64_t>& values, const std::vector<int64_t>& dims,
                       bool weight = false);

  // Appends a node; returns it for attributes. Output names are taken as given (make them fresh).
  ::onnx::NodeProto* node(const std::string& op, const std::vector<std::string>& inputs, const std::vector<std::string>& outputs,
                          const std::string& name);
  static void attr(::onnx::NodeProto* n, const std::string& name, int64_t v);
  static void attr(::onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& v);
  static void attr(::onnx::NodeProto* n, const std::string& name, float v);

  int64_t weight_bytes = 0;  // raw bytes of the initializers written with `weight` = true

 private:
  ::onnx::GraphProto* g_;
  std::set<std::string> used_;
};

}  // namespace pfq::onnx_export
