// proto_writer.cpp — typed initializers, packing and nodes of an ONNX graph (proto_writer.h).
#include "onnx/proto_writer.h"

#include <cstring>

#include "core/error.h"

namespace pfq::onnx_export {

Elem int_elem(int bits, bool is_signed) {
  switch (bits) {
    case 4: return is_signed ? Elem::Int4 : Elem::Uint4;
    case 8: return is_signed ? Elem::Int8 : Elem::Uint8;
    case 16: return is_signed ? Elem::Int16 : Elem::Uint16;
    default: PFQ_FAIL("ONNX has no ", bits, "-bit integer type (4, 8 and 16 bits can be exported)");
  }
}

void elem_range(Elem e, int64_t& lo, int64_t& hi) {
  switch (e) {
    case Elem::Int4: lo = -8, hi = 7; return;
    case Elem::Uint4: lo = 0, hi = 15; return;
    case Elem::Int8: lo = -128, hi = 127; return;
    case Elem::Uint8: lo = 0, hi = 255; return;
    case Elem::Int16: lo = -32768, hi = 32767; return;
    case Elem::Uint16: lo = 0, hi = 65535; return;
    case Elem::Int32: lo = INT32_MIN, hi = INT32_MAX; return;
    case Elem::Int64: lo = INT64_MIN, hi = INT64_MAX; return;
    case Elem::Float: break;
  }
  PFQ_FAIL("elem_range: not an integer type");
}

const char* elem_name(Elem e) {
  switch (e) {
    case Elem::Float: return "FLOAT";
    case Elem::Uint8: return "UINT8";
    case Elem::Int8: return "INT8";
    case Elem::Uint16: return "UINT16";
    case Elem::Int16: return "INT16";
    case Elem::Int32: return "INT32";
    case Elem::Int64: return "INT64";
    case Elem::Uint4: return "UINT4";
    case Elem::Int4: return "INT4";
  }
  return "?";
}

std::string ProtoWriter::fresh(const std::string& base) {
  const std::string b = base.empty() ? "t" : base;
  std::string name = b;
  for (int k = 1; used_.count(name); ++k) name = b + "_" + std::to_string(k);
  used_.insert(name);
  return name;
}

namespace {
::onnx::TensorProto* new_initializer(::onnx::GraphProto* g, const std::string& name, Elem e, const std::vector<int64_t>& dims) {
  ::onnx::TensorProto* t = g->add_initializer();
  t->set_name(name);
  t->set_data_type(static_cast<int32_t>(e));
  for (int64_t d : dims) t->add_dims(d);
  return t;
}

int64_t count(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}
}  // namespace

std::string ProtoWriter::init_float(const std::string& base, const std::vector<float>& values, const std::vector<int64_t>& dims,
                                    bool weight) {
  PFQ_CHECK(count(dims) == static_cast<int64_t>(values.size()), "onnx export: initializer '", base, "' has ", values.size(),
            " values for ", count(dims));
  const std::string name = fresh(base);
  ::onnx::TensorProto* t = new_initializer(g_, name, Elem::Float, dims);
  std::string raw(values.size() * sizeof(float), '\0');
  std::memcpy(raw.data(), values.data(), raw.size());  // little-endian, as ONNX requires (x86, ARM)
  if (weight) weight_bytes += static_cast<int64_t>(raw.size());
  t->set_raw_data(std::move(raw));
  return name;
}

std::string ProtoWriter::init_int(const std::string& base, Elem e, const std::vector<int64_t>& values, const std::vector<int64_t>& dims,
                                  bool weight) {
  PFQ_CHECK(count(dims) == static_cast<int64_t>(values.size()), "onnx export: initializer '", base, "' has ", values.size(),
            " values for ", count(dims));
  int64_t lo = 0, hi = 0;
  elem_range(e, lo, hi);
  for (size_t i = 0; i < values.size(); ++i)
    PFQ_CHECK(values[i] >= lo && values[i] <= hi, "onnx export: value ", values[i], " at index ", i, " of '", base,
              "' is outside ", elem_name(e), " [", lo, ", ", hi, "]");
  const std::string name = fresh(base);
  ::onnx::TensorProto* t = new_initializer(g_, name, e, dims);
  std::string raw;
  if (e == Elem::Int4 || e == Elem::Uint4) {
    raw.assign((values.size() + 1) / 2, '\0');
    for (size_t i = 0; i < values.size(); ++i) {
      const auto nib = static_cast<uint8_t>(values[i] & 0xF);  // two's complement nibble for INT4
      raw[i / 2] = static_cast<char>(static_cast<uint8_t>(raw[i / 2]) | (i % 2 ? nib << 4 : nib));
    }
  } else {
    const size_t w = e == Elem::Int8 || e == Elem::Uint8 ? 1 : e == Elem::Int16 || e == Elem::Uint16 ? 2 : e == Elem::Int32 ? 4 : 8;
    raw.assign(values.size() * w, '\0');
    for (size_t i = 0; i < values.size(); ++i) {
      const auto u = static_cast<uint64_t>(values[i]);
      for (size_t b = 0; b < w; ++b) raw[i * w + b] = static_cast<char>((u >> (8 * b)) & 0xFF);  // little-endian
    }
  }
  if (weight) weight_bytes += static_cast<int64_t>(raw.size());
  t->set_raw_data(std::move(raw));
  return name;
}

::onnx::NodeProto* ProtoWriter::node(const std::string& op, const std::vector<std::string>& inputs,
                                     const std::vector<std::string>& outputs, const std::string& name) {
  ::onnx::NodeProto* n = g_->add_node();
  n->set_op_type(op);
  n->set_name(fresh(name));
  for (const auto& i : inputs) n->add_input(i);
  for (const auto& o : outputs) n->add_output(o);
  return n;
}

void ProtoWriter::attr(::onnx::NodeProto* n, const std::string& name, int64_t v) {
  ::onnx::AttributeProto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(::onnx::AttributeProto::INT);
  a->set_i(v);
}

void ProtoWriter::attr(::onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& v) {
  ::onnx::AttributeProto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(::onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}

void ProtoWriter::attr(::onnx::NodeProto* n, const std::string& name, float v) {
  ::onnx::AttributeProto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(::onnx::AttributeProto::FLOAT);
  a->set_f(v);
}

}  // namespace pfq::onnx_export
