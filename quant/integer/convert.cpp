// convert.cpp — QAT model -> integer graph (quant/integer/model.h). Walks the units of
// the model graph (layers/model_graph.h) in forward order keeping each one's not yet quantized
// expression (1 or 2 terms and a pending ReLU/ReLU6); every activation quantizer turns it into
// a requant node. Biases, folded BN and PfQ correction maps are carried as real values and
// rounded once, at the output scale.
#include <cmath>
#include <map>

#include "core/autograd.h"
#include "layers/basic.h"
#include "layers/model_graph.h"
#include "quant/integer/kernels.h"
#include "quant/integer/model.h"
#include "quant/qat.h"
#include "quant/qparams.h"

namespace pfq::quant {
namespace {

struct ValInfo {
  bool acc = false;  // int32 accumulator: real = acc_scale[c] * v + bias[c] + corr[c, p]
  Shape shape;       // [1, C, H, W] or [1, C]
  float scale = 1;   // int8: real = scale * (q - zp)
  int32_t zp = 0;
  std::vector<double> acc_scale, bias;
  Tensor corr;  // float64 [C, OH, OW] or undefined
};

enum class Act { None, ReLU, ReLU6 };

void set_weight(IntNode& node, const WeightCodes& w) {
  node.weight = w.codes;
  node.weight_scale = w.scale;
  node.weight_bits = w.bits;
}

class Builder {
 public:
  Builder(IntModel& im, const models::ModelConfig& cfg) : im_(im) {
    input_shape_ = {1, cfg.in_channels, cfg.input_size, cfg.input_size};
  }

  // The units of the model graph in forward order. Each unit's value is the expression of its
  // input (terms, a pending activation, or the float network input) transformed by the unit.
  void run(const ModelGraph& g) {
    exprs_.resize(g.units.size());
    for (int i = 0; i < g.size(); ++i) {
      const Unit& u = g[i];
      load(u.inputs[0]);
      if (u.kind == UnitKind::Add) {
        cur_.clear();
        for (int in : u.inputs) {
          const Expr& e = expr(in);
          PFQ_CHECK(!e.is_float && e.terms.size() == 1 && e.act == Act::None, "convert_to_integer: an operand of the add of '",
                    u.path, "' is not a single conv result or quantized activation");
          cur_.push_back(e.terms[0]);
        }
      } else {
        unit(u);
      }
      exprs_[static_cast<size_t>(i)] = Expr{cur_, act_, float_};
    }
    load(g.output);
  }

  void unit(const Unit& u) {
    Module& m = *u.module;
    const std::string& path = u.path;
    switch (u.kind) {
      case UnitKind::Quant: return apply_quantizer(static_cast<FakeQuantize&>(m), path);
      case UnitKind::Act: return set_act(u.act == BnAct::ReLU6 || act_ == Act::ReLU6 ? Act::ReLU6 : Act::ReLU, path);
      case UnitKind::GlobalAvgPool: return avgpool(path);
      case UnitKind::MaxPool: return maxpool(static_cast<MaxPool2d&>(m), path);
      case UnitKind::Flatten: return;
      case UnitKind::Conv:
        if (auto* q = dynamic_cast<QatConv2d*>(&m)) return conv(*q, path);
        break;
      case UnitKind::Linear:
        if (auto* q = dynamic_cast<QatLinear*>(&m)) return linear(*q, path);
        break;
      case UnitKind::BatchNorm:
        if (auto* bn = dynamic_cast<BatchNorm2d*>(&m)) return batchnorm(*bn, path);
        break;
      default: break;
    }
    PFQ_FAIL("convert_to_integer: module '", path, "' of type ", m.type_name(), " has no integer counterpart");
  }

  void finish() {
    PFQ_CHECK(!float_ && cur_.size() == 1 && act_ == Act::None,
              "convert_to_integer: the model output is not a single conv/linear result (unfinished add or activation)");
    const ValInfo& v = vals_.at(cur_[0]);
    PFQ_CHECK(v.shape.size() == 2 && !v.corr.defined(), "convert_to_integer: the model output must be [N, classes]");
    IntNode n;
    n.name = "output";
    n.op = "dequantize";
    n.inputs = {cur_[0]};
    const int64_t C = v.shape[1];
    std::vector<float> sc(static_cast<size_t>(C));
    std::vector<float> b(static_cast<size_t>(C));
    for (int64_t c = 0; c < C; ++c) {
      sc[c] = static_cast<float>(v.acc ? v.acc_scale[c] : v.scale);
      b[c] = static_cast<float>(v.acc ? v.bias[c] : 0.0);
    }
    n.input_zero_point = v.acc ? 0 : v.zp;
    n.out_scale = Tensor::from_vector(sc, {C});
    n.out_bias = Tensor::from_vector(b, {C});
    im_.nodes.push_back(std::move(n));
  }

 private:
  std::string unique(const std::string& base) {
    std::string n = base.empty() ? "model" : base;
    for (int k = 2; vals_.count(n) || n == "output" || n == "input"; ++k) n = base + "@" + std::to_string(k);
    return n;
  }
  const ValInfo& single_act8(const std::string& path) {
    PFQ_CHECK(!float_ && cur_.size() == 1 && act_ == Act::None && !vals_.at(cur_[0]).acc, "convert_to_integer: '", path,
              "' reads an activation that is not quantized (no activation quantizer between it and the previous "
              "conv/linear/add; e.g. a block with no output quantizer: a MobileNetV2 prepared without block_output_quant, "
              "re-run pfq finetune); the integer model needs quantized inputs everywhere");
    return vals_.at(cur_[0]);
  }
  void set_act(Act a, const std::string& path) {
    PFQ_CHECK(!float_, "convert_to_integer: activation '", path, "' on the unquantized network input");
    act_ = a;
  }

  void apply_quantizer(FakeQuantize& fq, const std::string& path) {
    const ActQ a = act_qparams(fq, path, "convert_to_integer");
    const int64_t off = a.is_signed ? 0 : -128;  // unsigned grids are stored shifted into int8
    IntNode n;
    n.name = unique(path);
    n.scale = a.s;
    n.zero_point = static_cast<int32_t>(a.z + off);
    int64_t lo = a.qmin, hi = a.qmax;
    if (act_ != Act::None) lo = std::max(lo, a.z);
    if (act_ == Act::ReLU6) hi = std::min(hi, a.z + static_cast<int64_t>(std::nearbyint(6.0f / a.s)));
    n.qmin = static_cast<int32_t>(lo + off);
    n.qmax = static_cast<int32_t>(std::max(lo, hi) + off);
    ValInfo out;
    out.scale = a.s;
    out.zp = n.zero_point;
    if (float_) {
      PFQ_CHECK(act_ == Act::None, "convert_to_integer: activation before the input quantizer '", path, "'");
      n.op = "quantize";
      n.inputs = {"input"};
      out.shape = input_shape_;
      float_ = false;
    } else {
      n.op = "requant";
      requant_terms(n, a.s, path);
      out.shape = vals_.at(cur_[0]).shape;
    }
    vals_[n.name] = out;
    cur_ = {n.name};
    act_ = Act::None;
    im_.nodes.push_back(std::move(n));
  }

  // The current terms -> requant inputs at the common scale s_out * 2^-F.
  void requant_terms(IntNode& n, float s_out, const std::string& path) {
    PFQ_CHECK(!cur_.empty() && cur_.size() <= 2, "convert_to_integer: quantizer '", path, "' has nothing to quantize");
    const Shape shape = vals_.at(cur_[0]).shape;
    const int64_t C = shape[1];
    double max_m = 0, max_b = 0;
    for (const auto& t : cur_) {
      const ValInfo& v = vals_.at(t);
      PFQ_CHECK(v.shape == shape, "convert_to_integer: '", path, "' adds ", shape_str(v.shape), " and ", shape_str(shape));
      double mc = 0;
      for (int64_t c = 0; c < C; ++c) {
        max_m = std::max(max_m, std::fabs(v.acc ? v.acc_scale[c] : v.scale) / s_out);
        if (v.acc) mc = std::max(mc, std::fabs(v.bias[c]));
      }
      if (v.corr.defined()) {
        const double* cp = v.corr.data<double>();
        double mx = 0;
        for (int64_t i = 0; i < v.corr.numel(); ++i) mx = std::max(mx, std::fabs(cp[i]));
        mc += mx;
      }
      max_b = std::max(max_b, mc / s_out);
    }
    // 24 fraction bits when they fit (fewer for a large bias or scale ratio): the integer value
    // then resolves 6e-8 of a step, about float32's own resolution there, so it rounds like the
    // fake-quantized model except within float32 noise of a tie (docs/integer-format.md, 6).
    int F = 24;
    while (F > 0 && (max_m * std::ldexp(1.0, F) >= std::ldexp(1.0, 29) || max_b * std::ldexp(1.0, F) >= std::ldexp(1.0, 30))) --F;
    PFQ_CHECK(max_m < std::ldexp(1.0, 29) && max_b < std::ldexp(1.0, 30), "convert_to_integer: '", path,
              "': scale ratio ", max_m, " or bias ", max_b, " (in output steps) is out of the int32 range");
    n.frac_bits = F;
    const double two_f = std::ldexp(1.0, F);
    for (const auto& t : cur_) {
      const ValInfo& v = vals_.at(t);
      IntTerm term;
      term.input = t;
      term.zero_point = v.acc ? 0 : v.zp;
      std::vector<int32_t> m(static_cast<size_t>(C)), r(static_cast<size_t>(C)), b(static_cast<size_t>(C), 0);
      for (int64_t c = 0; c < C; ++c) {
        const cpu::FixedMultiplier fm = cpu::fixed_multiplier((v.acc ? v.acc_scale[c] : v.scale) / s_out * two_f);
        m[c] = fm.m;
        r[c] = fm.r;
        if (v.acc) b[c] = static_cast<int32_t>(std::llround(v.bias[c] / s_out * two_f));
      }
      term.multiplier = Tensor::from_vector(m, {C});
      term.shift = Tensor::from_vector(r, {C});
      if (v.acc) term.bias = Tensor::from_vector(b, {C});
      if (v.corr.defined()) {
        Tensor ci = Tensor::empty(v.corr.shape(), DType::Int32);
        for (int64_t i = 0; i < v.corr.numel(); ++i)
          ci.data<int32_t>()[i] = static_cast<int32_t>(std::llround(v.corr.data<double>()[i] / s_out * two_f));
        term.correction = ci;
      }
      n.inputs.push_back(t);
      n.terms.push_back(std::move(term));
    }
  }

  void conv(QatConv2d& q, const std::string& path) {
    const ValInfo in = single_act8(path);
    NoGradGuard ng;
    const Conv2d& c = q.conv();
    const int64_t oc = c.out_channels;
    PFQ_CHECK(in.shape.size() == 4 && in.shape[1] == c.in_channels, "convert_to_integer: conv '", path, "' expects ",
              c.in_channels, " input channels, got ", shape_str(in.shape));
    PFQ_CHECK(q.parameter("weight").dtype() == DType::Float32, "convert_to_integer: '", path, "' is not float32");
    const QatConvEval ev = qat_conv_eval(q);
    const std::vector<double>& bias = ev.bias;
    const Tensor& corr = ev.correction;
    IntNode n;
    n.name = unique(path);
    n.op = "conv2d";
    n.inputs = {cur_[0]};
    n.in_channels = c.in_channels;
    n.out_channels = oc;
    n.groups = c.groups;
    n.kernel = c.kernel;
    n.stride = c.stride;
    n.padding = c.padding;
    n.dilation = c.dilation;
    set_weight(n, quantize_weight(static_cast<FakeQuantize&>(*q.child("weight_quant")), ev.weight, path, "convert_to_integer"));
    const int64_t oh = conv_out_size(in.shape[2], n.kernel[0], n.stride[0], n.padding[0], n.dilation[0]);
    const int64_t ow = conv_out_size(in.shape[3], n.kernel[1], n.stride[1], n.padding[1], n.dilation[1]);
    ValInfo out;
    out.acc = true;
    out.shape = {1, oc, oh, ow};
    out.bias = bias;
    for (int64_t i = 0; i < oc; ++i) out.acc_scale.push_back(double(n.weight_scale.data<float>()[i]) * double(in.scale));
    if (corr.defined()) {
      PFQ_CHECK(corr.shape() == Shape({oc, oh, ow}), "convert_to_integer: output_correction of '", path, "' is ",
                shape_str(corr.shape()), ", the conv output is [", oc, ", ", oh, ", ", ow, "]");
      out.corr = corr;
    }
    vals_[n.name] = out;
    cur_ = {n.name};
    im_.nodes.push_back(std::move(n));
  }

  void linear(QatLinear& q, const std::string& path) {
    const ValInfo in = single_act8(path);
    NoGradGuard ng;
    Tensor w = q.parameter("weight").detach();
    const int64_t oc = w.size(0);
    PFQ_CHECK(in.shape.size() == 2 && in.shape[1] == w.size(1), "convert_to_integer: linear '", path, "' expects [N, ",
              w.size(1), "], got ", shape_str(in.shape));
    IntNode n;
    n.name = unique(path);
    n.op = "linear";
    n.inputs = {cur_[0]};
    n.in_channels = w.size(1);
    n.out_channels = oc;
    set_weight(n, quantize_weight(static_cast<FakeQuantize&>(*q.child("weight_quant")), w.contiguous(), path, "convert_to_integer"));
    ValInfo out;
    out.acc = true;
    out.shape = {1, oc};
    out.bias.assign(static_cast<size_t>(oc), 0.0);
    if (q.has_parameter("bias")) {
      Tensor b = q.parameter("bias").detach().to(DType::Float64);
      for (int64_t i = 0; i < oc; ++i) out.bias[i] = b.data<double>()[i];
    }
    for (int64_t i = 0; i < oc; ++i) out.acc_scale.push_back(double(n.weight_scale.data<float>()[i]) * double(in.scale));
    vals_[n.name] = out;
    cur_ = {n.name};
    im_.nodes.push_back(std::move(n));
  }

  // An unfolded BN (--no-fold-bn) after a conv: its eval affine a * y + c goes into the
  // accumulator's scale and real bias (a may be negative: the multiplier is signed).
  void batchnorm(BatchNorm2d& bn, const std::string& path) {
    PFQ_CHECK(!float_ && cur_.size() == 1 && act_ == Act::None && vals_.at(cur_[0]).acc, "convert_to_integer: BatchNorm2d '",
              path, "' does not directly follow a conv");
    ValInfo& v = vals_.at(cur_[0]);
    const int64_t C = v.shape[1];
    PFQ_CHECK(bn.num_features == C, "convert_to_integer: BatchNorm2d '", path, "' has ", bn.num_features, " channels, input ", C);
    const std::vector<double> scale = bn.fold_scale();
    Tensor mu = bn.running_mean().to(DType::Float64);
    for (int64_t c = 0; c < C; ++c) {
      const double a = scale[static_cast<size_t>(c)];
      const double sh = bn.affine ? bn.bias().detach().to(DType::Float64).data<double>()[c] : 0.0;
      v.acc_scale[c] *= a;
      v.bias[c] = a * (v.bias[c] - mu.data<double>()[c]) + sh;
      if (v.corr.defined()) {
        const int64_t P = v.corr.numel() / C;
        for (int64_t p = 0; p < P; ++p) v.corr.data<double>()[c * P + p] *= a;
      }
    }
  }

  void avgpool(const std::string& path) {  // a global average pool
    const ValInfo in = single_act8(path);
    IntNode n;
    n.name = unique(path);
    n.op = "global_avgpool";
    n.inputs = {cur_[0]};
    n.kernel = {in.shape[2], in.shape[3]};
    const int64_t C = in.shape[1];
    ValInfo out;
    out.acc = true;
    out.shape = {1, C};
    out.acc_scale.assign(static_cast<size_t>(C), double(in.scale) / static_cast<double>(in.shape[2] * in.shape[3]));
    out.bias.assign(static_cast<size_t>(C), 0.0);
    vals_[n.name] = out;
    cur_ = {n.name};
    im_.nodes.push_back(std::move(n));
  }

  // A max pool on a quantized activation: max commutes with the increasing map code -> real, so
  // the integer max of the codes is exactly the fake-quantized model's max (same scale and zero
  // point; padding never wins, as PyTorch pads with -inf).
  void maxpool(const MaxPool2d& p, const std::string& path) {
    const ValInfo in = single_act8(path);
    PFQ_CHECK(in.shape.size() == 4, "convert_to_integer: maxpool '", path, "' expects [N, C, H, W], got ", shape_str(in.shape));
    IntNode n;
    n.name = unique(path);
    n.op = "maxpool";
    n.inputs = {cur_[0]};
    n.kernel = p.kernel;
    n.stride = p.stride;
    n.padding = p.padding;
    n.scale = in.scale;
    n.zero_point = in.zp;
    ValInfo out = in;
    out.shape = {1, in.shape[1], conv_out_size(in.shape[2], p.kernel[0], p.stride[0], p.padding[0], 1),
                 conv_out_size(in.shape[3], p.kernel[1], p.stride[1], p.padding[1], 1)};
    vals_[n.name] = out;
    cur_ = {n.name};
    im_.nodes.push_back(std::move(n));
  }

  struct Expr {
    std::vector<std::string> terms;
    Act act = Act::None;
    bool is_float = true;
  };
  const Expr& expr(int unit) const { return unit == kNetworkInput ? input_ : exprs_.at(static_cast<size_t>(unit)); }
  void load(int unit) {
    const Expr& e = expr(unit);
    cur_ = e.terms, act_ = e.act, float_ = e.is_float;
  }

  IntModel& im_;
  Shape input_shape_;
  Expr input_;                // the float network input
  std::vector<Expr> exprs_;   // per unit of the model graph
  std::map<std::string, ValInfo> vals_;
  std::vector<std::string> cur_;
  bool float_ = true;
  Act act_ = Act::None;
};

}  // namespace

IntModel convert_to_integer(Module& qat_model, const models::ModelConfig& cfg, const nlohmann::json& qat_config) {
  for (const Tensor& p : qat_model.parameters())
    PFQ_CHECK(p.device().is_cpu() && p.dtype() == DType::Float32, "convert_to_integer: the model must be float32 on CPU, got ",
              p.describe());
  const bool was_training = qat_model.is_training();
  qat_model.eval();
  IntModel im;
  im.model = cfg;
  im.qat = qat_config;
  im.input_shape = {cfg.in_channels, cfg.input_size, cfg.input_size};
  Builder b(im, cfg);
  try {
    b.run(trace_model(qat_model));
    b.finish();
  } catch (...) {
    qat_model.train(was_training);
    throw;
  }
  qat_model.train(was_training);
  return im;
}

}  // namespace pfq::quant
