// io.cpp — export and import of the integer model (quant/integer/model.h) in the format
// of docs/integer-format.md: safetensors tensors "<node>.<field>" and the graph as JSON in the
// metadata key "pfq_int_graph". The loader re-derives every value's shape from the graph and
// checks each tensor's dtype, shape and value range against it, and bounds every value the
// integer arithmetic can produce from the file's weights and multipliers: a file whose int32
// accumulators or int64 requantization sums could overflow is refused, naming the tensor.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>

#include "core/io/safetensors.h"
#include "core/ops.h"
#include "quant/integer/model.h"

namespace pfq::quant {

using nlohmann::json;

namespace {

std::string term_key(const std::string& node, size_t i, const char* field) {
  return node + ".term" + std::to_string(i) + "." + field;
}

}  // namespace

void save_integer_model(const std::string& path, const IntModel& m) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  json nodes = json::array();
  for (const IntNode& n : m.nodes) {
    json j = {{"name", n.name}, {"op", n.op}, {"inputs", n.inputs}};
    if (n.op == "quantize" || n.op == "requant" || n.op == "maxpool")
      j.update({{"scale", n.scale}, {"zero_point", n.zero_point}, {"qmin", n.qmin}, {"qmax", n.qmax}});
    if (n.op == "conv2d")
      j.update({{"kernel", n.kernel}, {"stride", n.stride}, {"padding", n.padding}, {"dilation", n.dilation}, {"groups", n.groups}});
    if (n.op == "conv2d" || n.op == "linear") {
      j.update({{"in_channels", n.in_channels}, {"out_channels", n.out_channels}, {"weight_bits", n.weight_bits}});
      tensors.emplace_back(n.name + ".weight", n.weight);
      tensors.emplace_back(n.name + ".weight_scale", n.weight_scale);
    }
    if (n.op == "global_avgpool") j["kernel"] = n.kernel;
    if (n.op == "maxpool") j.update({{"kernel", n.kernel}, {"stride", n.stride}, {"padding", n.padding}});
    if (n.op == "requant") {
      j["frac_bits"] = n.frac_bits;
      json terms = json::array();
      for (size_t i = 0; i < n.terms.size(); ++i) {
        const IntTerm& t = n.terms[i];
        terms.push_back({{"input", t.input}, {"zero_point", t.zero_point}, {"bias", t.bias.defined()},
                         {"correction", t.correction.defined()}});
        tensors.emplace_back(term_key(n.name, i, "multiplier"), t.multiplier);
        tensors.emplace_back(term_key(n.name, i, "shift"), t.shift);
        if (t.bias.defined()) tensors.emplace_back(term_key(n.name, i, "bias"), t.bias);
        if (t.correction.defined()) tensors.emplace_back(term_key(n.name, i, "correction"), t.correction);
      }
      j["terms"] = terms;
    }
    if (n.op == "dequantize") {
      j["input_zero_point"] = n.input_zero_point;
      tensors.emplace_back(n.name + ".scale", n.out_scale);
      tensors.emplace_back(n.name + ".bias", n.out_bias);
    }
    nodes.push_back(j);
  }
  json g = {{"format", kIntFormat}, {"arch", m.model.arch}, {"model", m.model}, {"qat", m.qat}, {"input_shape", m.input_shape},
            {"nodes", nodes}};
  io::save_safetensors(path, tensors, {{"format", kIntFormat}, {"pfq_int_graph", g.dump()}});
}

namespace {

struct Loader {
  const io::SafetensorsFile& f;
  std::set<std::string> used;
  std::string where;  // "node 'x'"

  template <typename... A>
  [[noreturn]] void fail(const A&... a) const {
    PFQ_FAIL("integer model file '", f.path, "': ", where, ": ", a...);
  }
  const Tensor& tensor(const std::string& name, DType dt, const Shape& shape) {
    if (!f.contains(name)) fail("tensor '", name, "' is missing");
    const Tensor& t = f.at(name);
    if (t.dtype() != dt || t.shape() != shape)
      fail("tensor '", name, "' is ", t.describe(), ", expected ", dtype_name(dt), " ", shape_str(shape));
    used.insert(name);
    return t;
  }
  template <typename T>
  T get(const json& j, const char* key) {
    if (!j.contains(key)) fail("missing field '", key, "'");
    try {
      return j.at(key).get<T>();
    } catch (const std::exception& e) {
      fail("field '", key, "' has the wrong type (", e.what(), ")");
    }
  }
};

// Limits on what a file may make inference allocate per image (ImageNet at 224 x 224 needs < 1M).
constexpr int64_t kMaxInputDim = 4096;  // as load_checkpoint bounds input_size
constexpr int64_t kMaxActivationNumel = int64_t{1} << 26;

// The number of values of `s`, or kMaxActivationNumel + 1 as soon as the product passes the limit
// (sizes come from a file and may be anything; the product must not overflow).
int64_t capped_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) return kMaxActivationNumel + 1;
    if (d != 0 && n > kMaxActivationNumel / d) return kMaxActivationNumel + 1;
    n *= d;
  }
  return n;
}

struct ValShape {
  Shape shape;  // [C, H, W] or [C]
  bool i32 = false;
  double max_abs = 128;  // a bound on |value| (int8: 128; accumulators: from the weights)
};

// |x - z_x| for int8 x and an int8 zero point z_x.
constexpr double kMaxInputDiff = 255;
constexpr double kInt32Max = 2147483647.0;
// What int64 intermediates may reach, less a margin for the bounds' double rounding.
constexpr double kInt64Safe = 0x1p63 * (1 - 0x1p-20);

}  // namespace

IntModel load_integer_model(const std::string& path) {
  io::SafetensorsFile f = io::load_safetensors(path);
  Loader L{f, {}, "header"};
  auto it = f.metadata.find("pfq_int_graph");
  if (it == f.metadata.end() || !f.metadata.count("format") || f.metadata.at("format") != kIntFormat)
    L.fail("not a pfq integer model (metadata format \"", kIntFormat, "\" and pfq_int_graph expected; a QAT checkpoint is "
           "turned into one by `pfq export`)");
  json g = json::parse(it->second, nullptr, false);
  if (g.is_discarded() || !g.is_object()) L.fail("pfq_int_graph is not a JSON object");
  IntModel m;
  try {
    m.model = g.at("model").get<models::ModelConfig>();
  } catch (const std::exception& e) {
    L.fail("bad architecture record: ", e.what());
  }
  m.qat = g.value("qat", json::object());
  m.input_shape = L.get<Shape>(g, "input_shape");
  if (m.input_shape.size() != 3) L.fail("input_shape must be [C, H, W]");
  // Bounded before anything is sized from it: activations are not stored in the file, so a forged
  // input_shape would otherwise make inference allocate whatever the header claims.
  const Shape recorded{m.model.in_channels, m.model.input_size, m.model.input_size};
  if (m.input_shape != recorded)
    L.fail("input_shape ", shape_str(m.input_shape), " does not match the architecture record's in_channels/input_size ",
           shape_str(recorded));
  for (int64_t d : m.input_shape)
    if (d < 1 || d > kMaxInputDim) L.fail("input_shape ", shape_str(m.input_shape), ": each size must be in 1..", kMaxInputDim);
  std::map<std::string, ValShape> vals;
  for (const json& j : L.get<json>(g, "nodes")) {
    IntNode n;
    n.name = L.get<std::string>(j, "name");
    L.where = "node '" + n.name + "'";
    n.op = L.get<std::string>(j, "op");
    n.inputs = L.get<std::vector<std::string>>(j, "inputs");
    if (vals.count(n.name) || n.name == "input") L.fail("duplicate node name");
    std::vector<ValShape> in;
    for (const auto& i : n.inputs) {
      if (i == "input" && n.op == "quantize") continue;
      if (!vals.count(i)) L.fail("input '", i, "' is not defined by an earlier node");
      in.push_back(vals.at(i));
    }
    auto act_out = [&] {
      n.scale = L.get<float>(j, "scale");
      n.zero_point = L.get<int32_t>(j, "zero_point");
      n.qmin = L.get<int32_t>(j, "qmin");
      n.qmax = L.get<int32_t>(j, "qmax");
      if (!(n.scale > 0) || !std::isfinite(n.scale)) L.fail("scale ", n.scale, " must be positive");
      if (n.qmin < -128 || n.qmax > 127 || n.qmin > n.qmax || n.zero_point < -128 || n.zero_point > 127)
        L.fail("qmin/qmax/zero_point ", n.qmin, "/", n.qmax, "/", n.zero_point, " must lie in int8 with qmin <= qmax");
    };
    auto need = [&](size_t k, bool i8) {
      if (in.size() != k) L.fail(n.op, " takes ", k, " input(s), got ", in.size());
      for (auto& v : in)
        if (i8 && v.i32) L.fail(n.op, " needs an int8 input");
    };
    ValShape out;
    if (n.op == "quantize") {
      if (n.inputs != std::vector<std::string>{"input"}) L.fail("quantize reads \"input\"");
      act_out();
      out.shape = m.input_shape;
    } else if (n.op == "conv2d" || n.op == "linear") {
      need(1, true);
      n.in_channels = L.get<int64_t>(j, "in_channels");
      n.out_channels = L.get<int64_t>(j, "out_channels");
      n.weight_bits = L.get<int>(j, "weight_bits");
      if (n.weight_bits < 1 || n.weight_bits > 8) L.fail("weight_bits ", n.weight_bits, " must be in 1..8");
      Shape ws{n.out_channels, n.in_channels};
      if (n.op == "conv2d") {
        n.kernel = L.get<std::array<int64_t, 2>>(j, "kernel");
        n.stride = L.get<std::array<int64_t, 2>>(j, "stride");
        n.padding = L.get<std::array<int64_t, 2>>(j, "padding");
        n.dilation = L.get<std::array<int64_t, 2>>(j, "dilation");
        n.groups = L.get<int64_t>(j, "groups");
        const Shape& s = in[0].shape;
        if (s.size() != 3 || s[0] != n.in_channels || n.groups < 1 || n.in_channels % n.groups || n.out_channels % n.groups)
          L.fail("input ", shape_str(s), " does not match in_channels ", n.in_channels, " / groups ", n.groups);
        for (int d = 0; d < 2; ++d)
          if (n.kernel[d] < 1 || n.stride[d] < 1 || n.padding[d] < 0 || n.dilation[d] < 1 || n.kernel[d] > kMaxInputDim ||
              n.stride[d] > kMaxInputDim || n.padding[d] > kMaxInputDim || n.dilation[d] > kMaxInputDim)
            L.fail("bad conv geometry (kernel, stride, dilation in 1..", kMaxInputDim, ", padding in 0..", kMaxInputDim, ")");
        ws = {n.out_channels, n.in_channels / n.groups, n.kernel[0], n.kernel[1]};
        const int64_t oh = conv_out_size(s[1], n.kernel[0], n.stride[0], n.padding[0], n.dilation[0]);
        const int64_t ow = conv_out_size(s[2], n.kernel[1], n.stride[1], n.padding[1], n.dilation[1]);
        if (oh < 1 || ow < 1) L.fail("empty output for input ", shape_str(s));
        out.shape = {n.out_channels, oh, ow};
      } else {
        if (in[0].shape != Shape{n.in_channels}) L.fail("input ", shape_str(in[0].shape), " is not [", n.in_channels, "]");
        out.shape = {n.out_channels};
      }
      n.weight = L.tensor(n.name + ".weight", DType::Int8, ws);
      n.weight_scale = L.tensor(n.name + ".weight_scale", DType::Float32, {n.out_channels});
      const int lim = 1 << (n.weight_bits - 1);
      for (int64_t i = 0; i < n.weight.numel(); ++i) {
        const int v = n.weight.data<int8_t>()[i];
        if (v < -lim || v > lim - 1) L.fail("weight ", i, " = ", v, " is outside the ", n.weight_bits, "-bit range");
      }
      // The int32 accumulator of output channel oc holds sum_k w[oc, k] * (x - z_x), at most
      // sum_k |w[oc, k]| * 255: it must stay below 2^31 (docs/integer-format.md section 4).
      const int64_t K = n.weight.numel() / std::max<int64_t>(n.out_channels, 1);
      out.max_abs = 0;
      for (int64_t oc = 0; oc < n.out_channels; ++oc) {
        double l1 = 0;
        for (int64_t k = 0; k < K; ++k) l1 += std::abs(int{n.weight.data<int8_t>()[oc * K + k]});
        if (l1 * kMaxInputDiff > kInt32Max)
          L.fail("tensor '", n.name, ".weight': output channel ", oc, " sums ", K, " products whose weights add up to |w| = ", l1,
                 "; with 8-bit inputs (|x - z_x| <= 255) its accumulator can reach ", l1 * kMaxInputDiff,
                 ", beyond int32 (2^31 - 1)");
        out.max_abs = std::max(out.max_abs, l1 * kMaxInputDiff);
      }
      out.i32 = true;
    } else if (n.op == "global_avgpool") {
      need(1, true);
      n.kernel = L.get<std::array<int64_t, 2>>(j, "kernel");
      if (in[0].shape.size() != 3 || in[0].shape[1] != n.kernel[0] || in[0].shape[2] != n.kernel[1])
        L.fail("input ", shape_str(in[0].shape), " does not match kernel [", n.kernel[0], ", ", n.kernel[1], "]");
      out.shape = {in[0].shape[0]};
      out.i32 = true;
      out.max_abs = static_cast<double>(n.kernel[0]) * static_cast<double>(n.kernel[1]) * kMaxInputDiff;
      if (out.max_abs > kInt32Max)
        L.fail("kernel [", n.kernel[0], ", ", n.kernel[1], "] sums ", n.kernel[0] * n.kernel[1],
               " 8-bit values per channel: the int32 sum can reach ", out.max_abs, ", beyond int32 (2^31 - 1)");
    } else if (n.op == "maxpool") {
      need(1, true);
      act_out();
      n.kernel = L.get<std::array<int64_t, 2>>(j, "kernel");
      n.stride = L.get<std::array<int64_t, 2>>(j, "stride");
      n.padding = L.get<std::array<int64_t, 2>>(j, "padding");
      const Shape& s = in[0].shape;
      for (int d = 0; d < 2; ++d)
        if (n.kernel[d] < 1 || n.stride[d] < 1 || n.padding[d] < 0 || 2 * n.padding[d] > n.kernel[d] || n.kernel[d] > kMaxInputDim ||
            n.stride[d] > kMaxInputDim)
          L.fail("bad maxpool geometry (kernel, stride in 1..", kMaxInputDim, ", padding at most half the kernel)");
      if (s.size() != 3) L.fail("input ", shape_str(s), " is not [C, H, W]");
      const int64_t oh = conv_out_size(s[1], n.kernel[0], n.stride[0], n.padding[0], 1);
      const int64_t ow = conv_out_size(s[2], n.kernel[1], n.stride[1], n.padding[1], 1);
      if (oh < 1 || ow < 1) L.fail("empty output for input ", shape_str(s));
      out.shape = {s[0], oh, ow};
    } else if (n.op == "requant") {
      if (in.empty() || in.size() > 2) L.fail("requant takes 1 or 2 inputs");
      act_out();
      n.frac_bits = L.get<int>(j, "frac_bits");
      if (n.frac_bits < 0 || n.frac_bits > 30) L.fail("frac_bits ", n.frac_bits, " must be in 0..30");
      const json terms = L.get<json>(j, "terms");
      if (!terms.is_array() || terms.size() != in.size()) L.fail("terms must list one entry per input");
      out.shape = in[0].shape;
      const int64_t C = out.shape[0];
      std::vector<double> u_max(static_cast<size_t>(C), 0);  // bound on |u| per channel (int64 sum)
      for (size_t i = 0; i < in.size(); ++i) {
        if (in[i].shape != out.shape) L.fail("inputs ", shape_str(in[0].shape), " and ", shape_str(in[i].shape), " differ");
        IntTerm t;
        t.input = L.get<std::string>(terms[i], "input");
        if (t.input != n.inputs[i]) L.fail("term ", i, " reads '", t.input, "', inputs[", i, "] is '", n.inputs[i], "'");
        t.zero_point = L.get<int32_t>(terms[i], "zero_point");
        t.multiplier = L.tensor(term_key(n.name, i, "multiplier"), DType::Int32, {C});
        t.shift = L.tensor(term_key(n.name, i, "shift"), DType::Int32, {C});
        for (int64_t c = 0; c < C; ++c)
          if (t.shift.data<int32_t>()[c] < 0 || t.shift.data<int32_t>()[c] > 62) L.fail("term ", i, " shift out of 0..62");
        if (L.get<bool>(terms[i], "bias")) t.bias = L.tensor(term_key(n.name, i, "bias"), DType::Int32, {C});
        if (L.get<bool>(terms[i], "correction")) {
          if (out.shape.size() != 3) L.fail("a correction map needs a [C, H, W] input");
          t.correction = L.tensor(term_key(n.name, i, "correction"), DType::Int32, out.shape);
        }
        // shift_round((v - z) * m, r) + bias + correction in int64: |m| must be a Q31 multiplier
        // (0 or in [2^30, 2^31)) and the product and the sum over terms must fit
        const std::string mname = term_key(n.name, i, "multiplier");
        const int64_t P = capped_numel(out.shape) / std::max<int64_t>(C, 1);
        for (int64_t c = 0; c < C; ++c) {
          const double m = std::abs(static_cast<double>(t.multiplier.data<int32_t>()[c]));
          if (m != 0 && (m < 0x1p30 || m >= 0x1p31))
            L.fail("tensor '", mname, "' [", c, "] = ", t.multiplier.data<int32_t>()[c],
                   ": a multiplier must be 0 or have |m| in [2^30, 2^31) (Q31)");
          const double product = (in[i].max_abs + std::abs(static_cast<double>(t.zero_point))) * m;
          if (product > kInt64Safe)
            L.fail("tensor '", mname, "' [", c, "]: the input (|v| <= ", in[i].max_abs, ", zero_point ", t.zero_point,
                   ") times the multiplier can reach ", product, ", beyond int64");
          double corr = 0;
          if (t.correction.defined())
            for (int64_t p = 0; p < P; ++p)
              corr = std::max(corr, std::abs(static_cast<double>(t.correction.data<int32_t>()[c * P + p])));
          u_max[c] += product / std::ldexp(1.0, t.shift.data<int32_t>()[c]) + 1 + corr +
                      (t.bias.defined() ? std::abs(static_cast<double>(t.bias.data<int32_t>()[c])) : 0);
          if (u_max[c] + std::ldexp(1.0, n.frac_bits) > kInt64Safe)
            L.fail("tensor '", mname, "' [", c, "]: with shift ", t.shift.data<int32_t>()[c],
                   " the requantization sum of channel ", c, " can reach ", u_max[c], ", beyond int64");
        }
        n.terms.push_back(std::move(t));
      }
    } else if (n.op == "dequantize") {
      need(1, false);
      if (in[0].shape.size() != 1) L.fail("dequantize needs an [N, C] input, got [N, ", shape_str(in[0].shape), "]");
      n.input_zero_point = L.get<int32_t>(j, "input_zero_point");
      n.out_scale = L.tensor(n.name + ".scale", DType::Float32, in[0].shape);
      n.out_bias = L.tensor(n.name + ".bias", DType::Float32, in[0].shape);
      out = in[0];
    } else {
      L.fail("unknown op '", n.op, "' (known: quantize, conv2d, linear, global_avgpool, maxpool, requant, dequantize)");
    }
    if (capped_numel(out.shape) > kMaxActivationNumel)
      L.fail("output ", shape_str(out.shape), " has more than ", kMaxActivationNumel,
             " values per image, more than an integer model may ask for");
    vals[n.name] = out;
    m.nodes.push_back(std::move(n));
  }
  L.where = "graph";
  if (m.nodes.empty() || m.nodes.back().op != "dequantize") L.fail("the last node must be a dequantize");
  for (const auto& [name, t] : f.tensors)
    if (!L.used.count(name)) L.fail("tensor '", name, "' is not referenced by any node");
  return m;
}

}  // namespace pfq::quant
