// export.cpp — pfq model -> ONNX (onnx/export.h): the units of the model graph in forward order,
// each written as the standard ops that compute it. A QAT conv's weights are the integer codes
// the integer model uses (quant/qparams.h), so the exported QDQ graph, pfq's fake-quantized
// model and its integer model quantize identically.
#include "onnx/export.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "core/autograd.h"
#include "core/io/atomic_file.h"
#include "layers/layers.h"
#include "layers/model_graph.h"
#include "onnx/proto_writer.h"
#include "quant/bn_fold.h"
#include "quant/qat.h"
#include "quant/qparams.h"

namespace pfq::onnx_export {

std::string Result::summary() const {
  return "opset " + std::to_string(opset) + ", " + std::to_string(nodes) + " nodes, " + std::to_string(initializers) +
         " initializers, " + std::to_string(quantize_pairs) + " activation Q/DQ pairs, " + std::to_string(weight_bytes) +
         " bytes of weights, " + std::to_string(bytes) + " bytes in all";
}

bool available() { return true; }

namespace {

constexpr const char* kWho = "onnx export";

std::vector<float> floats(const Tensor& t) { return t.detach().to(Device::cpu()).contiguous().to(DType::Float32).to_vector<float>(); }
std::vector<double> doubles(const Tensor& t) { return t.detach().to(Device::cpu()).contiguous().to(DType::Float64).to_vector<double>(); }
std::vector<int64_t> dims_of(const Shape& s) { return std::vector<int64_t>(s.begin(), s.end()); }

class Exporter {
 public:
  Exporter(const ModelGraph& mg, const Options& o, ::onnx::GraphProto* g) : mg_(mg), o_(o), w_(g), names_(mg.units.size()) {}

  void run() {
    for (int i = 0; i < mg_.size(); ++i) names_[static_cast<size_t>(i)] = unit(i);
  }
  std::string output() const { return name_of(mg_.output); }
  ProtoWriter& writer() { return w_; }
  int64_t quantize_pairs = 0;
  bool quantized = false;

 private:
  const ModelGraph& mg_;
  const Options& o_;
  ProtoWriter w_;
  std::vector<std::string> names_;         // each unit's output tensor
  std::map<std::string, float> act_scale_;  // tensors that are a DequantizeLinear's output: their scale
  std::map<int, bool> folded_;              // BN units folded into the conv before them

  std::string name_of(int unit) const { return unit == kNetworkInput ? "input" : names_[static_cast<size_t>(unit)]; }

  std::string unit(int i) {
    const Unit& u = mg_[i];
    const std::string x = name_of(u.inputs[0]);
    Module* m = u.module;  // nullptr for an Add
    switch (u.kind) {
      case UnitKind::Conv:
        if (auto* q = dynamic_cast<quant::QatConv2d*>(u.module)) return qat_conv(u, *q, x);
        return conv(i, static_cast<Conv2d&>(*m), x);
      case UnitKind::BatchNorm:
        if (folded_.count(i)) return x;
        if (dynamic_cast<BatchNorm2d*>(u.module)) return batchnorm(u, static_cast<BatchNorm2d&>(*m), x);
        break;
      case UnitKind::Act: {
        const std::string y = w_.fresh(u.path);
        if (u.act == BnAct::ReLU6) {
          clamp(x, 0.f, 6.f, y, u.path);
        } else {
          w_.node("Relu", {x}, {y}, u.path);
        }
        return y;
      }
      case UnitKind::Add: {
        std::vector<std::string> in;
        for (int k : u.inputs) in.push_back(name_of(k));
        PFQ_CHECK(in.size() == 2, kWho, ": the add of '", u.path, "' has ", in.size(), " operands");
        const std::string y = w_.fresh(u.path + ".add");
        w_.node("Add", in, {y}, u.path + ".add");
        return y;
      }
      case UnitKind::MaxPool: {
        const auto& p = static_cast<MaxPool2d&>(*m);
        const std::string y = w_.fresh(u.path);
        auto* n = w_.node("MaxPool", {x}, {y}, u.path);
        ProtoWriter::attr(n, "kernel_shape", std::vector<int64_t>{p.kernel[0], p.kernel[1]});
        ProtoWriter::attr(n, "strides", std::vector<int64_t>{p.stride[0], p.stride[1]});
        ProtoWriter::attr(n, "pads", std::vector<int64_t>{p.padding[0], p.padding[1], p.padding[0], p.padding[1]});
        return y;
      }
      case UnitKind::AvgPool:
        if (auto* p = dynamic_cast<AvgPool2d*>(u.module)) {
          const std::string y = w_.fresh(u.path);
          auto* n = w_.node("AveragePool", {x}, {y}, u.path);
          ProtoWriter::attr(n, "kernel_shape", std::vector<int64_t>{p->kernel[0], p->kernel[1]});
          ProtoWriter::attr(n, "strides", std::vector<int64_t>{p->stride[0], p->stride[1]});
          ProtoWriter::attr(n, "pads", std::vector<int64_t>{p->padding[0], p->padding[1], p->padding[0], p->padding[1]});
          ProtoWriter::attr(n, "count_include_pad", int64_t{p->count_include_pad ? 1 : 0});
          return y;
        }
        break;
      case UnitKind::GlobalAvgPool: {
        const std::string y = w_.fresh(u.path);
        w_.node("GlobalAveragePool", {x}, {y}, u.path);
        return y;
      }
      case UnitKind::Flatten: {
        const auto& f = static_cast<Flatten&>(*m);
        const std::string y = w_.fresh(u.path);
        ProtoWriter::attr(w_.node("Flatten", {x}, {y}, u.path), "axis", f.start_dim);
        return y;
      }
      case UnitKind::Linear:
        if (auto* q = dynamic_cast<quant::QatLinear*>(u.module)) return qat_linear(u, *q, x);
        return linear(u, static_cast<Linear&>(*m), x);
      case UnitKind::Quant: return act_quant(u, static_cast<quant::FakeQuantize&>(*m), x);
    }
    PFQ_FAIL(kWho, ": module '", u.path, "' of type ", u.module ? u.module->type_name() : "?", " has no ONNX counterpart");
  }

  // y = min(max(x, lo), hi) as Max and Min rather than Clip: ONNX Runtime's Clip + QuantizeLinear
  // fusion (default optimisation level) rejects INT4 / UINT4 zero points (1.32); same values.
  void clamp(const std::string& x, float lo, float hi, const std::string& y, const std::string& path) {
    const std::string mid = w_.fresh(path + ".max");
    w_.node("Max", {x, w_.init_float(path + ".lo", {lo}, {})}, {mid}, path + ".max");
    w_.node("Min", {mid, w_.init_float(path + ".hi", {hi}, {})}, {y}, path + ".min");
  }

  // The conv attributes of c on node n.
  static void conv_attrs(::onnx::NodeProto* n, const Conv2d& c) {
    ProtoWriter::attr(n, "kernel_shape", std::vector<int64_t>{c.kernel[0], c.kernel[1]});
    ProtoWriter::attr(n, "strides", std::vector<int64_t>{c.stride[0], c.stride[1]});
    ProtoWriter::attr(n, "pads", std::vector<int64_t>{c.padding[0], c.padding[1], c.padding[0], c.padding[1]});
    ProtoWriter::attr(n, "dilations", std::vector<int64_t>{c.dilation[0], c.dilation[1]});
    ProtoWriter::attr(n, "group", c.groups);
  }

  // y + map, a PfQ output correction [OC, OH, OW] (already scaled as the output needs).
  std::string add_correction(const std::string& y, const std::vector<float>& map, const Shape& corr_shape, const std::string& path) {
    const std::string c = w_.init_float(path + ".output_correction", map, {1, corr_shape[0], corr_shape[1], corr_shape[2]});
    const std::string out = w_.fresh(path + ".corrected");
    w_.node("Add", {y, c}, {out}, path + ".output_correction");
    return out;
  }

  std::string conv(int i, Conv2d& c_in, const std::string& x) {
    const Unit& u = mg_[i];
    const bool fold = o_.fold_bn && u.users.size() == 1 && mg_[u.users[0]].kind == UnitKind::BatchNorm &&
                      dynamic_cast<BatchNorm2d*>(mg_[u.users[0]].module);
    std::shared_ptr<Conv2d> folded;  // quant::fold_bn: conv then BN in eval mode as one conv
    if (fold) {
      folded = quant::fold_bn(c_in, static_cast<BatchNorm2d&>(*mg_[u.users[0]].module));
      folded_[u.users[0]] = true;
    }
    const Conv2d& c = folded ? *folded : c_in;
    const std::string W = w_.init_float(u.path + ".weight", floats(c.weight()), dims_of(c.weight().shape()), true);
    std::vector<std::string> in{x, W};
    if (c.has_bias()) in.push_back(w_.init_float(u.path + ".bias", floats(c.bias()), {c.out_channels}));
    std::string y = w_.fresh(u.path);
    conv_attrs(w_.node("Conv", in, {y}, u.path), c);
    if (c.has_output_correction()) y = add_correction(y, floats(c.output_correction()), c.output_correction().shape(), u.path);
    return y;
  }


  std::string batchnorm(const Unit& u, BatchNorm2d& bn, const std::string& x) {
    PFQ_CHECK(bn.track_running_stats, kWho, ": BatchNorm2d '", u.path, "' has no running statistics (eval needs them)");
    const int64_t c = bn.num_features;
    const std::string y = w_.fresh(u.path);
    auto* n = w_.node("BatchNormalization",
                      {x, w_.init_float(u.path + ".weight", bn.affine ? floats(bn.weight()) : std::vector<float>(c, 1.f), {c}),
                       w_.init_float(u.path + ".bias", bn.affine ? floats(bn.bias()) : std::vector<float>(c, 0.f), {c}),
                       w_.init_float(u.path + ".running_mean", floats(bn.running_mean()), {c}),
                       w_.init_float(u.path + ".running_var", floats(bn.running_var()), {c})},
                      {y}, u.path);
    ProtoWriter::attr(n, "epsilon", static_cast<float>(bn.eps));
    return y;
  }

  std::string linear(const Unit& u, Linear& l, const std::string& x) {
    const std::string W = w_.init_float(u.path + ".weight", floats(l.weight()), {l.out_features, l.in_features}, true);
    std::vector<std::string> in{x, W};
    if (l.has_bias()) in.push_back(w_.init_float(u.path + ".bias", floats(l.bias()), {l.out_features}));
    const std::string y = w_.fresh(u.path);
    ProtoWriter::attr(w_.node("Gemm", in, {y}, u.path), "transB", int64_t{1});
    return y;
  }

  // QuantizeLinear -> DequantizeLinear at the quantizer's grid (a Clip first where pfq's integer
  // range is narrower than the ONNX type's, e.g. a symmetric [-7, 7] in INT4).
  std::string act_quant(const Unit& u, quant::FakeQuantize& fq, const std::string& x) {
    quantized = true;
    const quant::ActQ a = quant::act_qparams(fq, u.path, kWho);
    // Feeding a MaxPool, a 4-bit grid travels in an 8-bit type (with the Clip below): ONNX
    // Runtime (1.32, default level) moves the Q/DQ pair across the MaxPool and then runs MaxPool
    // on the quantized tensor, which it implements for 8-bit types only (INT4/UINT4 make the
    // session fail). The values are the same; activations are not stored, so no size changes.
    bool feeds_maxpool = false;
    for (int k : u.users) feeds_maxpool |= mg_[k].kind == UnitKind::MaxPool;
    const Elem e = int_elem(feeds_maxpool ? std::max(a.bits, 8) : a.bits, a.is_signed);
    int64_t tlo = 0, thi = 0;
    elem_range(e, tlo, thi);
    PFQ_CHECK(a.z >= tlo && a.z <= thi && a.qmin >= tlo && a.qmax <= thi, kWho, ": quantizer '", u.path, "' grid [", a.qmin, ", ",
              a.qmax, "] with zero point ", a.z, " does not fit ", elem_name(e));
    std::string in = x;
    if (a.qmin > tlo || a.qmax < thi) {
      in = w_.fresh(u.path + ".clip");
      clamp(x, a.s * static_cast<float>(a.qmin - a.z), a.s * static_cast<float>(a.qmax - a.z), in, u.path + ".clip");
    }
    const std::string s = w_.init_float(u.path + ".scale", {a.s}, {});
    const std::string z = w_.init_int(u.path + ".zero_point", e, {a.z}, {});
    const std::string q = w_.fresh(u.path + ".q");
    const std::string y = w_.fresh(u.path + ".dq");
    w_.node("QuantizeLinear", {in, s, z}, {q}, u.path + ".quantize");
    w_.node("DequantizeLinear", {q, s, z}, {y}, u.path + ".dequantize");
    act_scale_[y] = a.s;
    ++quantize_pairs;
    return y;
  }

  // DequantizeLinear of a weight's integer codes: INT4 packed for <= 4 bits, else INT8; axis 0
  // when the quantizer is per channel.
  std::string dq_weight(const std::string& path, quant::FakeQuantize& wq, const Tensor& w_eff, std::vector<float>& scale) {
    const quant::WeightCodes wc = quant::quantize_weight(wq, w_eff.contiguous(), path, kWho);
    const bool per_channel = wq.quantizer()->spec().per_channel;
    const Elem e = wc.bits <= 4 ? Elem::Int4 : Elem::Int8;
    PFQ_CHECK(wc.bits <= 8, kWho, ": '", path, "' has ", wc.bits, "-bit weights; ONNX export stores at most 8");
    const std::vector<int8_t> codes = wc.codes.to_vector<int8_t>();
    scale = wc.scale.to_vector<float>();
    const std::string W =
        w_.init_int(path + ".weight_q", e, std::vector<int64_t>(codes.begin(), codes.end()), dims_of(w_eff.shape()), true);
    const int64_t oc = w_eff.size(0);
    const std::string s = per_channel ? w_.init_float(path + ".weight_scale", scale, {oc}) : w_.init_float(path + ".weight_scale", {scale[0]}, {});
    const std::string z = per_channel ? w_.init_int(path + ".weight_zero_point", e, std::vector<int64_t>(oc, 0), {oc})
                                      : w_.init_int(path + ".weight_zero_point", e, {0}, {});
    const std::string y = w_.fresh(path + ".weight_dq");
    auto* n = w_.node("DequantizeLinear", {W, s, z}, {y}, path + ".weight_dequantize");
    if (per_channel) ProtoWriter::attr(n, "axis", int64_t{0});
    return y;
  }

  // A QAT layer's bias. With Options::int32_bias: int32 codes at scale s_x * s_w[c] behind
  // DequantizeLinear as the Conv/Gemm's third input (the form integer runtimes fuse), returned as
  // that input's name. Otherwise "" and the caller adds the float32 bias after the Conv/Gemm
  // (add_bias): ONNX Runtime's WeightBiasQuantization rewrites a float bias *input* of a
  // Conv/Gemm whose inputs are dequantized into int32 at s_x * s_w, which rounds it to half an
  // accumulator step and changed 42% of a pruned W4/A4 MobileNetV1's predictions at the default
  // optimisation level (docs/onnx-export.md); an Add keeps pfq's values at every level.
  std::string bias_input(const std::string& path, const std::string& x, const std::vector<double>& bias, const std::vector<float>& sw) {
    const int64_t oc = static_cast<int64_t>(bias.size());
    auto it = act_scale_.find(x);
    if (!o_.int32_bias || it == act_scale_.end()) return "";
    std::vector<float> bs(static_cast<size_t>(oc));
    std::vector<int64_t> bq(static_cast<size_t>(oc));
    for (int64_t c = 0; c < oc; ++c) {
      bs[c] = it->second * sw[c];
      const double v = bs[c] > 0 ? std::nearbyint(bias[c] / bs[c]) : 0.0;
      PFQ_CHECK(std::fabs(v) < 2147483647.0, kWho, ": bias ", c, " of '", path, "' (", bias[c], ") overflows int32 at scale ", bs[c]);
      bq[c] = static_cast<int64_t>(v);
    }
    const std::string q = w_.init_int(path + ".bias_q", Elem::Int32, bq, {oc});
    const std::string s = w_.init_float(path + ".bias_scale", bs, {oc});
    const std::string y = w_.fresh(path + ".bias_dq");
    ProtoWriter::attr(w_.node("DequantizeLinear", {q, s}, {y}, path + ".bias_dequantize"), "axis", int64_t{0});
    return y;
  }

  // y + bias as a float32 constant: [OC, 1, 1] after a Conv (spatial), [OC] after a Gemm.
  std::string add_bias(const std::string& y, const std::vector<double>& bias, bool spatial, const std::string& path) {
    const int64_t oc = static_cast<int64_t>(bias.size());
    const std::string b = w_.init_float(path + ".bias", std::vector<float>(bias.begin(), bias.end()),
                                        spatial ? std::vector<int64_t>{oc, 1, 1} : std::vector<int64_t>{oc});
    const std::string out = w_.fresh(path + ".biased");
    w_.node("Add", {y, b}, {out}, path + ".bias_add");
    return out;
  }

  std::string qat_conv(const Unit& u, quant::QatConv2d& q, const std::string& x) {
    quantized = true;
    NoGradGuard ng;
    const quant::QatConvEval ev = quant::qat_conv_eval(q);
    std::vector<float> sw;
    const std::string W = dq_weight(u.path, static_cast<quant::FakeQuantize&>(*q.child("weight_quant")), ev.weight, sw);
    std::vector<std::string> in{x, W};
    const bool has_bias = q.bn() || q.has_parameter("bias");
    const std::string b = has_bias ? bias_input(u.path, x, ev.bias, sw) : "";
    if (!b.empty()) in.push_back(b);
    std::string y = w_.fresh(u.path);
    conv_attrs(w_.node("Conv", in, {y}, u.path), q.conv());
    if (has_bias && b.empty()) y = add_bias(y, ev.bias, true, u.path);
    if (ev.correction.defined())
      y = add_correction(y, floats(ev.correction), ev.correction.shape(), u.path);
    return y;
  }


  std::string qat_linear(const Unit& u, quant::QatLinear& q, const std::string& x) {
    quantized = true;
    NoGradGuard ng;
    const Tensor w = q.parameter("weight").detach();
    std::vector<float> sw;
    const std::string W = dq_weight(u.path, static_cast<quant::FakeQuantize&>(*q.child("weight_quant")), w, sw);
    std::vector<std::string> in{x, W};
    const std::vector<double> bias = q.has_parameter("bias") ? doubles(q.parameter("bias")) : std::vector<double>{};
    const std::string b = bias.empty() ? "" : bias_input(u.path, x, bias, sw);
    if (!b.empty()) in.push_back(b);
    std::string y = w_.fresh(u.path);
    ProtoWriter::attr(w_.node("Gemm", in, {y}, u.path), "transB", int64_t{1});
    if (!bias.empty() && b.empty()) y = add_bias(y, bias, false, u.path);
    return y;
  }
};

void add_value_info(::onnx::ValueInfoProto* v, const std::string& name, const std::vector<std::string>& dims_text,
                    const std::vector<int64_t>& dims) {
  v->set_name(name);
  auto* tt = v->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(static_cast<int32_t>(Elem::Float));
  for (size_t i = 0; i < dims.size(); ++i) {
    auto* d = tt->mutable_shape()->add_dim();
    if (!dims_text[i].empty()) d->set_dim_param(dims_text[i]);
    else d->set_dim_value(dims[i]);
  }
}

}  // namespace

Result export_model(Module& model, const Options& o, const std::string& path) {
  PFQ_CHECK(o.input_shape.size() == 4, kWho, ": the input shape must be [N, C, H, W], got ", shape_str(o.input_shape));
  for (const Tensor& p : model.parameters())
    PFQ_CHECK(p.dtype() == DType::Float32, kWho, ": the model must be float32, got ", p.describe());
  const bool was_training = model.is_training();
  model.eval();
  ::onnx::ModelProto mp;
  Result r;
  try {
    const ModelGraph mg = trace_model(model, o.input_shape);
    ::onnx::GraphProto* g = mp.mutable_graph();
    g->set_name("pfq");
    Exporter ex(mg, o, g);
    ex.run();
    r.opset = ex.quantized ? 21 : 17;  // INT4/UINT4 QuantizeLinear and DequantizeLinear: opset 21
    mp.set_ir_version(ex.quantized ? 10 : 8);
    auto* op = mp.add_opset_import();
    op->set_domain("");
    op->set_version(r.opset);
    mp.set_producer_name("pfq");
    mp.set_producer_version(o.producer_version);
    const Shape& in = o.input_shape;
    add_value_info(g->add_input(), "input", {"N", "", "", ""}, {in[0], in[1], in[2], in[3]});
    const Shape out = mg[mg.output].out_shape;
    // the last unit's tensor is the model output "logits"
    const std::string last = ex.output();
    for (auto& n : *g->mutable_node())
      for (auto& name : *n.mutable_output())
        if (name == last) name = "logits";
    add_value_info(g->add_output(), "logits", {"N", ""}, {in[0], out.back()});
    r.nodes = g->node_size();
    r.initializers = g->initializer_size();
    r.quantize_pairs = ex.quantize_pairs;
    r.weight_bytes = ex.writer().weight_bytes;
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);
  std::string bytes;
  PFQ_CHECK(mp.SerializeToString(&bytes), kWho, ": protobuf could not serialise the model (over 2 GiB?)");
  r.bytes = static_cast<int64_t>(bytes.size());
  io::write_file_atomic(path, bytes);
  return r;
}

}  // namespace pfq::onnx_export
