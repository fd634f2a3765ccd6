// qat.cpp — QAT wrappers and prepare_qat (quant/qat.h). The wrappers register the wrapped
// layers' own tensors (parameters are the same leaf handles, buffers share storage), so
// optimizers, checkpoints and the PfQ output_correction keep working. CPU only.
#include "quant/qat.h"

#include <atomic>
#include <cmath>
#include <optional>
#include <set>
#include <vector>

#include "core/autograd.h"
#include "core/io/json_fields.h"
#include "layers/basic.h"
#include "layers/model_graph.h"
#include "layers/sequential.h"

namespace pfq::quant {

#define PFQ_QAT_FIELDS(X) X(wbits) X(abits) X(first_last_bits) X(wquant) X(aquant) X(per_channel) X(fold_bn) X(calib_batches) \
  X(block_output_quant) X(bn_stats)
void to_json(nlohmann::json& j, const QatConfig& c) { PFQ_JSON_WRITE_FIELDS(j, c, PFQ_QAT_FIELDS); }
void from_json(const nlohmann::json& j, QatConfig& c) {
  c.block_output_quant = false;  // records written before the field existed had none
  c.bn_stats = "float";
  PFQ_JSON_READ_FIELDS(j, c, PFQ_QAT_FIELDS, nullptr);
}

// ---------------- FakeQuantize ----------------
FakeQuantize::FakeQuantize(std::unique_ptr<Quantizer> q) : q_(std::move(q)) {
  if (!q_) return;
  for (auto& [n, t] : q_->parameters()) register_parameter(n, t);
  for (auto& [n, t] : q_->buffers()) register_buffer(n, t);
}
std::string FakeQuantize::extra_repr() const {
  if (!q_) return "identity";
  const auto& s = q_->spec();
  return q_->name() + ", bits=" + std::to_string(s.bits) + (s.symmetric ? ", signed" : ", unsigned") +
         (s.per_channel ? ", per_channel" : "") + (enabled ? "" : ", disabled");
}
namespace {
FakeQuantTrace* g_fq_trace = nullptr;
std::atomic<bool> g_fused_tails{true};
}  // namespace

void set_fake_quant_trace(FakeQuantTrace* trace) { g_fq_trace = trace; }
void set_fused_qat_tails(bool on) { g_fused_tails.store(on); }
bool fused_qat_tails() { return g_fused_tails.load(); }

int FakeQuantize::trace(GraphBuilder& g, const std::string& path, int x) { return g.add(UnitKind::Quant, path, this, {x}); }

Tensor FakeQuantize::forward(const Tensor& x) {
  if (!enabled || !q_) return x;
  Tensor out = q_->forward(x, is_training());
  if (g_fq_trace) (*g_fq_trace)[this] = out.detach();
  return out;
}

// ---------------- FoldedBatchNorm2d ----------------
FoldedBatchNorm2d::FoldedBatchNorm2d(const BatchNorm2d& bn)
    : num_features(bn.num_features), eps(bn.eps), momentum(bn.momentum), affine(bn.affine) {
  PFQ_CHECK(bn.track_running_stats, "prepare_qat: BatchNorm2d(", bn.num_features, ") without running statistics cannot be folded");
  if (affine) {
    register_parameter("weight", bn.weight());
    register_parameter("bias", bn.bias());
  }
  for (auto& [n, t] : bn.own_buffers()) register_buffer(n, t);
}
std::string FoldedBatchNorm2d::extra_repr() const { return std::to_string(num_features) + ", eps=" + std::to_string(eps) + ", folded"; }

// ---------------- QatConv2d ----------------
const std::vector<std::string>& bn_stats_names() {
  static const std::vector<std::string> names = {"float", "quantized"};  // BnStats order
  return names;
}

BnStats parse_bn_stats(const std::string& name) {
  const auto& names = bn_stats_names();
  for (size_t i = 0; i < names.size(); ++i)
    if (name == names[i]) return static_cast<BnStats>(i);
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  PFQ_FAIL("qat: bn_stats \"", name, "\" is not one of: ", list);
}

QatConv2d::QatConv2d(std::shared_ptr<Conv2d> conv, std::shared_ptr<FoldedBatchNorm2d> bn, std::unique_ptr<Quantizer> wq,
                     std::unique_ptr<Quantizer> input_q)
    : conv_(std::move(conv)), bn_(std::move(bn)) {
  PFQ_CHECK(!bn_ || bn_->num_features == conv_->out_channels, "QatConv2d: conv has ", conv_->out_channels,
            " output channels, BN ", bn_->num_features);
  for (auto& [n, t] : conv_->own_parameters()) register_parameter(n, t);
  for (auto& [n, t] : conv_->own_buffers()) register_buffer(n, t);
  register_module("weight_quant", std::make_shared<FakeQuantize>(std::move(wq)));
  if (input_q) register_module("input_quant", std::make_shared<FakeQuantize>(std::move(input_q)));
  train(conv_->is_training());
}

std::string QatConv2d::extra_repr() const { return conv_->extra_repr() + (bn_ ? ", bn_folded" : "") + (frozen_ ? ", bn_frozen" : ""); }

Tensor QatConv2d::forward(const Tensor& x) { return run(x, {}); }

Tensor QatConv2d::forward_into(const Tensor& x, Module& next) {
  const bool batch_stats = bn_ && is_training() && !frozen_;
  if (!batch_stats || !fused_qat_tails() || g_fq_trace || !parameter("weight").device().is_cpu())
    return Module::forward_into(x, next);
  // next: ReLU / ReLU6, or Sequential(ReLU / ReLU6, FakeQuantize) as prepare_qat wraps them
  Module* act = &next;
  FakeQuantize* fq = nullptr;
  if (auto* seq = dynamic_cast<Sequential*>(&next)) {
    if (seq->size() != 2) return Module::forward_into(x, next);
    act = (*seq)[0].get();
    fq = dynamic_cast<FakeQuantize*>((*seq)[1].get());
    if (!fq) return Module::forward_into(x, next);
  }
  FoldedBnTail tail;
  if (dynamic_cast<ReLU*>(act)) tail.act = BnAct::ReLU;
  else if (dynamic_cast<ReLU6*>(act)) tail.act = BnAct::ReLU6;
  else return Module::forward_into(x, next);
  if (Quantizer* q = fq && fq->enabled ? fq->quantizer() : nullptr) {
    if (!q->takes_batch_range() || q->spec().dtype != parameter("weight").dtype()) return Module::forward_into(x, next);
    const bool training = fq->is_training();
    tail.range = [q, training](const Tensor& lo, const Tensor& hi) { return q->range_from_batch(lo, hi, training); };
    tail.qopt = {q->spec().bits, q->spec().symmetric, false};
  }
  return run(x, tail);
}

Tensor QatConv2d::run(const Tensor& x_in, const FoldedBnTail& tail) {
  PFQ_CHECK((tail.act == BnAct::None && !tail.range) || (bn_ && is_training() && !frozen_),
            "QatConv2d: a fused activation tail needs BN folded with batch statistics");
  Tensor x = has_child("input_quant") ? child("input_quant")->forward(x_in) : x_in;
  const int64_t oc = conv_->out_channels;
  PFQ_CHECK(x.dim() == 4 && x.size(1) == conv_->in_channels, "QatConv2d(", conv_->extra_repr(), "): expected input [N, ",
            conv_->in_channels, ", H, W], got ", shape_str(x.shape()));
  const Tensor& w = parameter("weight");  // [OC, IC/groups, KH, KW]
  Tensor b = has_parameter("bias") ? parameter("bias") : Tensor();
  Tensor corr = has_buffer("output_correction") ? buffer("output_correction") : Tensor();  // [OC, OH, OW]
  Module& wq = *child("weight_quant");
  const Conv2dOptions opt = conv_->options();
  if (!bn_) {
    Tensor y = conv2d(x, wq.forward(w), b, opt);
    return corr.defined() ? add(y, corr) : y;
  }
  Tensor gamma = bn_->affine ? bn_->parameter("weight") : Tensor::ones({oc}, w.dtype());
  Tensor beta = bn_->affine ? bn_->parameter("bias") : Tensor::zeros({oc}, w.dtype());
  Tensor& rmean = bn_->buffer("running_mean");
  Tensor& rvar = bn_->buffer("running_var");
  const double eps = bn_->eps;
  Tensor sigma_r = bn_->running_sigma();  // [OC], no gradient
  Tensor s = div(gamma, sigma_r);                 // [OC]
  Tensor y = conv2d(x, wq.forward(mul(w, reshape(s, {oc, 1, 1, 1}))), Tensor(), opt);  // [N, OC, OH, OW]
  // b + corr as [OC, 1, 1] or [OC, OH, OW]
  Tensor bias_map = b.defined() ? reshape(b, {oc, 1, 1}) : Tensor::zeros({oc, 1, 1}, w.dtype(), w.device());
  if (corr.defined()) bias_map = add(bias_map, corr);
  if (!is_training() || frozen_)
    return add(y, add(mul(reshape(s, {oc, 1, 1}), sub(bias_map, reshape(rmean.clone(), {oc, 1, 1}))), reshape(beta, {oc, 1, 1})));

  // Batch statistics (the fused op of quant/folded_bn.h also normalises, takes the gradients and
  // updates the running statistics). Float (exact): of a second convolution with the float
  // weights. Quantized (PyTorch's ConvBn QAT): of the quantized output rescaled, y / s, so one
  // convolution per step; a channel with s == 0 (gamma == 0) has y == 0 and divides by 1 instead
  // (its output is beta either way).
  FoldedBnArgs a{.y = y, .z0 = y, .zscale = Tensor(), .bmap = bias_map, .gamma = gamma, .beta = beta, .sigma_r = sigma_r,
                 .running_mean = rmean, .running_var = rvar, .momentum = count_bn_batch(*bn_, bn_->momentum), .eps = eps,
                 .sync_stats = bn_->sync_stats};
  if (bn_stats_ == BnStats::Float) {
    a.z0 = conv2d(x, w, Tensor(), opt);
  } else {
    Tensor fix;  // 1 where s == 0, else 0 (on s's device, no host round trip)
    {
      NoGradGuard ng;
      fix = add(mul(sign(abs(s.detach())), -1.0), 1.0);
    }
    a.zscale = rdiv(1.0, add(s, fix));
  }
  return folded_bn_train(a, tail);
}

int QatConv2d::trace(GraphBuilder& g, const std::string& path, int x) {
  if (has_child("input_quant")) x = g.child(*this, path, "input_quant", x);
  return g.add(UnitKind::Conv, path, this, {x});
}

// ---------------- QatLinear ----------------
QatLinear::QatLinear(std::shared_ptr<Linear> lin, std::unique_ptr<Quantizer> wq, std::unique_ptr<Quantizer> input_q)
    : lin_(std::move(lin)) {
  for (auto& [n, t] : lin_->own_parameters()) register_parameter(n, t);
  register_module("weight_quant", std::make_shared<FakeQuantize>(std::move(wq)));
  if (input_q) register_module("input_quant", std::make_shared<FakeQuantize>(std::move(input_q)));
  train(lin_->is_training());
}

Tensor QatLinear::forward(const Tensor& x_in) {
  Tensor x = has_child("input_quant") ? child("input_quant")->forward(x_in) : x_in;
  PFQ_CHECK(x.dim() == 2 && x.size(1) == lin_->in_features, "QatLinear(", lin_->extra_repr(), "): expected input [N, ",
            lin_->in_features, "], got ", shape_str(x.shape()));
  Tensor b = has_parameter("bias") ? parameter("bias") : Tensor();
  return linear(x, child("weight_quant")->forward(parameter("weight")), b);
}

int QatLinear::trace(GraphBuilder& g, const std::string& path, int x) {
  if (has_child("input_quant")) x = g.child(*this, path, "input_quant", x);
  return g.add(UnitKind::Linear, path, this, {x});
}

// ---------------- prepare_qat ----------------
namespace {

std::unique_ptr<Quantizer> make_q(const std::string& name, int bits, bool symmetric, bool per_channel, int64_t channels,
                                  DType dt, const QatConfig& cfg) {
  if (bits >= 32) return nullptr;
  QuantSpec spec;
  spec.bits = bits;
  spec.symmetric = symmetric;
  spec.per_channel = per_channel;
  spec.channels = per_channel ? channels : 0;
  spec.dtype = dt;
  spec.calib_batches = cfg.calib_batches;
  return make_quantizer(name, spec);
}

// Signed activation quantizer (network input): quantizers without a signed mode fall back to ema.
std::unique_ptr<Quantizer> make_signed_act(int bits, DType dt, const QatConfig& cfg) {
  const std::string name = (cfg.aquant == "pact" || cfg.aquant == "dorefa") ? "ema" : cfg.aquant;
  return make_q(name, bits, true, false, 0, dt, cfg);
}

std::pair<std::string, std::string> split_last(const std::string& path) {
  const auto dot = path.rfind('.');
  if (dot == std::string::npos) return {"", path};
  return {path.substr(0, dot), path.substr(dot + 1)};
}

bool is_type(const Module* m, const char* t) { return m && m->type_name() == t; }

}  // namespace

QatReport prepare_qat(Module& model, const QatConfig& cfg) {
  for (auto& [n, m] : model.named_modules())
    PFQ_CHECK(!dynamic_cast<QatConv2d*>(m) && !dynamic_cast<QatLinear*>(m), "prepare_qat: module '", n,
              "' is already a QAT wrapper (the model was prepared before)");
  QatReport rep;
  std::vector<std::pair<std::string, std::string>> pairs;  // conv path, bn path
  std::vector<std::string> convs, linears, acts, blocks;
  const ModelGraph mg = trace_model(model);
  std::set<std::string> seen_acts;  // a block's shared activation (BasicBlock's relu) runs more than once
  for (const Unit& u : mg.units) {
    if (u.kind == UnitKind::Conv) {
      convs.push_back(u.path);
      if (u.users.size() == 1 && mg[u.users[0]].kind == UnitKind::BatchNorm) pairs.emplace_back(u.path, mg[u.users[0]].path);
    }
    if (u.kind == UnitKind::Linear) linears.push_back(u.path);
    if (u.kind == UnitKind::Act && seen_acts.insert(u.path).second) acts.push_back(u.path);
  }
  for (auto& [name, m] : model.named_modules())
    if (m->takes_output_quant()) blocks.push_back(name);
  PFQ_CHECK(!convs.empty() || !linears.empty(), "prepare_qat: the model has no Conv2d or Linear to quantize");
  rep.first_conv = convs.empty() ? "" : convs.front();
  rep.last_linear = linears.empty() ? "" : linears.back();
  const DType dt = model.parameters().empty() ? DType::Float32 : model.parameters().front().dtype();

  const BnStats bn_stats = parse_bn_stats(cfg.bn_stats);  // before the model is changed
  std::map<std::string, std::string> bn_of;  // conv path -> bn path
  if (cfg.fold_bn)
    for (auto& [c, b] : pairs) bn_of[c] = b;
  for (const std::string& path : convs) {
    auto conv = std::dynamic_pointer_cast<Conv2d>(model.submodule(split_last(path).first).child(split_last(path).second));
    const bool first = path == rep.first_conv;
    const int wb = first ? cfg.first_last_bits : cfg.wbits;
    auto wq = make_q(cfg.wquant, wb, true, cfg.per_channel, conv->out_channels, dt, cfg);
    auto iq = first ? make_signed_act(cfg.first_last_bits, dt, cfg) : nullptr;
    std::shared_ptr<FoldedBatchNorm2d> fbn;
    if (auto it = bn_of.find(path); it != bn_of.end()) {
      auto [bp, bn_name] = split_last(it->second);
      auto bn = std::dynamic_pointer_cast<BatchNorm2d>(model.submodule(bp).child(bn_name));
      fbn = std::make_shared<FoldedBatchNorm2d>(*bn);
      fbn->train(bn->is_training());
      model.replace_module(it->second, fbn);
      rep.folded_convs++;
    } else {
      rep.plain_convs++;
    }
    auto qconv = std::make_shared<QatConv2d>(conv, fbn, std::move(wq), std::move(iq));
    qconv->set_bn_stats(bn_stats);
    model.replace_module(path, qconv);
  }
  for (const std::string& path : linears) {
    auto lin = std::dynamic_pointer_cast<Linear>(model.submodule(split_last(path).first).child(split_last(path).second));
    const bool last = path == rep.last_linear;
    const int wb = last ? cfg.first_last_bits : cfg.wbits;
    auto wq = make_q(cfg.wquant, wb, true, cfg.per_channel, lin->out_features, dt, cfg);
    auto iq = last ? make_q(cfg.aquant, cfg.first_last_bits, false, false, 0, dt, cfg) : nullptr;
    model.replace_module(path, std::make_shared<QatLinear>(lin, std::move(wq), std::move(iq)));
    rep.linears++;
  }
  for (const std::string& path : acts) {
    ModulePtr act = model.submodule(split_last(path).first).child(split_last(path).second);
    auto seq = std::make_shared<Sequential>();
    seq->push_back(act);
    seq->push_back(std::make_shared<FakeQuantize>(make_q(cfg.aquant, cfg.abits, false, false, 0, dt, cfg)));
    seq->train(act->is_training());
    model.replace_module(path, seq);
    rep.act_quantizers++;
  }
  if (cfg.block_output_quant)
    for (const std::string& path : blocks) {
      Module& blk = model.submodule(path);
      auto fq = std::make_shared<FakeQuantize>(make_signed_act(cfg.abits, dt, cfg));
      fq->train(blk.is_training());
      blk.register_module("output_quant", fq);
      rep.block_output_quantizers++;
    }
  return rep;
}

void freeze_bn_stats(Module& model, bool frozen) {
  for (auto& [n, m] : model.named_modules())
    if (auto* q = dynamic_cast<QatConv2d*>(m)) q->freeze_bn_stats(frozen);
}

int64_t reestimate_bn_stats(Module& model, const std::function<Tensor()>& next_batch, int64_t batches) {
  PFQ_CHECK(batches > 0, "reestimate_bn_stats: batches must be positive, got ", batches);
  Tensor x = next_batch();  // before anything is reset: no data must not cost the statistics
  PFQ_CHECK(x.defined(), "reestimate_bn_stats: the data gave no batch");
  struct Saved {
    Module* bn;
    std::optional<double>* momentum;
    std::optional<double> value;
  };
  std::vector<Saved> bns;
  std::vector<std::pair<QatConv2d*, bool>> qconvs;
  for (auto& [n, m] : model.named_modules()) {
    std::optional<double>* mom = nullptr;
    if (auto* bn = dynamic_cast<BatchNorm2d*>(m); bn && bn->track_running_stats) mom = &bn->momentum;
    if (auto* fb = dynamic_cast<FoldedBatchNorm2d*>(m)) mom = &fb->momentum;
    if (auto* q = dynamic_cast<QatConv2d*>(m)) qconvs.emplace_back(q, q->bn_frozen());
    if (!mom) continue;
    bns.push_back({m, mom, *mom});
    *mom = std::nullopt;  // cumulative average over the pass
    m->buffer("running_mean").zero_();
    m->buffer("running_var").fill_(1);
    m->buffer("num_batches_tracked").zero_();
  }
  const bool was_training = model.is_training();
  model.eval();
  for (auto& s : bns) s.bn->train(true);  // plain BNs; a folded BN's statistics live in its QatConv2d
  for (auto& [q, frozen] : qconvs) {
    if (!q->folded()) continue;
    q->train(true);
    q->freeze_bn_stats(false);
    for (auto& [n, c] : q->named_modules())
      if (c != q) c->train(false);  // its quantizers keep their ranges
  }
  int64_t used = 0;
  {
    NoGradGuard ng;
    for (; used < batches && x.defined(); ++used) {
      model.forward(x);
      if (used + 1 < batches) x = next_batch();
    }
  }
  for (auto& s : bns) *s.momentum = s.value;
  for (auto& [q, frozen] : qconvs) q->freeze_bn_stats(frozen);
  model.train(was_training);
  return used;
}

void set_activation_quant(Module& model, bool enabled) {
  for (auto& [n, m] : model.named_modules()) {
    if (!is_type(m, "FakeQuantize")) continue;
    const std::string leaf = split_last(n).second;
    if (leaf != "weight_quant") static_cast<FakeQuantize*>(m)->enabled = enabled;
  }
}

std::string clamp_learned_ranges(Module& model, double floor) {
  PFQ_CHECK(floor > 0, "clamp_learned_ranges: floor must be > 0, got ", floor);
  NoGradGuard no_grad;
  std::string first;
  for (auto& [n, m] : model.named_modules()) {
    if (!is_type(m, "FakeQuantize")) continue;
    const Quantizer* q = static_cast<FakeQuantize*>(m)->quantizer();
    if (!q) continue;
    for (auto& [pname, t] : q->parameters()) {
      std::vector<double> v = t.to(Device::cpu()).to(DType::Float64).contiguous().to_vector<double>();
      bool bad = false;
      for (size_t i = 0; i < v.size(); ++i)
        if (!(v[i] > 0)) {
          if (first.empty()) first = n + "." + pname + "[" + std::to_string(i) + "] = " + std::to_string(v[i]);
          v[i] = floor;
          bad = true;
        }
      if (bad) {
        Tensor p = t;  // the parameter's own storage
        p.copy_(Tensor::from_vector<double>(v, t.shape()));
      }
    }
  }
  return first;
}

}  // namespace pfq::quant
