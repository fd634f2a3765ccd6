// qparams.cpp — quantizer parameters and weight codes of a QAT model (quant/qparams.h).
#include "quant/qparams.h"

#include <cmath>

#include "core/autograd.h"
#include "quant/fake_quant_kernel.h"
#include "quant/learned_quant.h"

namespace pfq::quant {

ActQ act_qparams(FakeQuantize& fq, const std::string& path, const char* who) {
  Quantizer* q = fq.quantizer();
  PFQ_CHECK(q, who, ": activation quantizer '", path, "' is the identity (bits >= 32); integer and ONNX exports "
               "need every activation quantized (abits <= 8)");
  PFQ_CHECK(fq.enabled, who, ": activation quantizer '", path, "' is disabled (stage \"w\" of --stages w,wa)");
  const QuantSpec& sp = q->spec();
  PFQ_CHECK(!sp.per_channel, who, ": per-channel activation quantizer '", path, "' is not supported");
  ActQ a;
  a.bits = sp.bits;
  a.is_signed = sp.symmetric;
  if (auto* e = dynamic_cast<EmaQuantizer*>(q)) {
    PFQ_CHECK(e->calibrated(), who, ": ema quantizer '", path, "' has observed ", e->num_batches(), " of ",
              sp.calib_batches, " calibration batches, so the fake-quantized model does not quantize there yet");
    const auto b = e->buffers();
    const Tensor lo = b[0].second.to(DType::Float32), hi = b[1].second.to(DType::Float32);
    const cpu::QuantGrid g = cpu::quant_grid(sp.bits, sp.symmetric);
    float s = 1, z = 0;
    cpu::qparams_from_range<float>(lo.data<float>()[0], hi.data<float>()[0], g, sp.symmetric, s, z);
    a.s = s;
    a.z = static_cast<int64_t>(z);
    a.qmin = g.qmin;
    a.qmax = g.qmax;
  } else if (auto* p = dynamic_cast<PactQuantizer*>(q)) {
    const float alpha = p->parameters()[0].second.detach().to(DType::Float32).data<float>()[0];
    a.qmin = 0;
    a.qmax = (int64_t{1} << sp.bits) - 1;
    a.s = alpha / static_cast<float>(a.qmax);
  } else if (auto* l = dynamic_cast<LsqQuantizer*>(q)) {
    const LsqBounds bd = lsq_bounds(sp.bits, sp.symmetric);
    a.s = l->parameters()[0].second.detach().to(DType::Float32).data<float>()[0];
    a.qmin = -bd.qn;
    a.qmax = bd.qp;
  } else {
    PFQ_FAIL(who, ": activation quantizer '", path, "' is ", q->name(),
             ", which has no fixed range (use ema, pact or lsq for activations)");
  }
  PFQ_CHECK(a.s > 0 && std::isfinite(a.s), who, ": quantizer '", path, "' has scale ", a.s);
  return a;
}

WeightCodes quantize_weight(FakeQuantize& wq, const Tensor& w, const std::string& path, const char* who) {
  Quantizer* q = wq.quantizer();
  PFQ_CHECK(q && wq.enabled, who, ": layer '", path, "' has float weights (bits >= 32); the integer model needs "
                             "quantized weights");
  const QuantSpec& sp = q->spec();
  const int64_t oc = w.size(0), k = w.numel() / oc;
  Tensor out = wq.forward(w).detach().contiguous();
  std::vector<float> scale(static_cast<size_t>(oc));
  if (q->name() == "dorefa") {
    PFQ_CHECK(sp.bits <= 7, who, ": layer '", path, "' has ", sp.bits,
              "-bit DoReFa weights, whose levels (2k - n) / n need ", sp.bits + 1, "-bit integers (int8 holds up to 7-bit DoReFa)");
    std::fill(scale.begin(), scale.end(), 1.0f / static_cast<float>((int64_t{1} << sp.bits) - 1));
  } else {
    Tensor s = q->last_scale().to(DType::Float32).contiguous();
    PFQ_CHECK(s.defined(), who, ": weight quantizer of '", path, "' reported no scale");
    for (int64_t c = 0; c < oc; ++c) scale[c] = s.data<float>()[s.numel() == 1 ? 0 : c];
  }
  Tensor qi = Tensor::empty(w.shape(), DType::Int8);
  const float* o = out.data<float>();
  float maxabs = 0;
  for (int64_t i = 0; i < out.numel(); ++i) maxabs = std::max(maxabs, std::fabs(o[i]));
  for (int64_t c = 0; c < oc; ++c)
    for (int64_t j = 0; j < k; ++j) {
      const float v = o[c * k + j], sc = scale[c];
      const float qv = sc > 0 ? std::nearbyint(v / sc) : 0.0f;
      PFQ_CHECK(qv >= -128 && qv <= 127 && std::fabs(qv * sc - v) <= 1e-5f * std::max(maxabs, 1e-30f),
                who, ": weight ", c * k + j, " of '", path, "' (", v, ") is not on the ", q->name(),
                " grid of step ", sc, " within int8");
      qi.data<int8_t>()[c * k + j] = static_cast<int8_t>(qv);
    }
  WeightCodes out_codes;
  out_codes.codes = qi;
  out_codes.scale = Tensor::from_vector(scale, {oc});
  out_codes.bits = q->name() == "dorefa" ? sp.bits + 1 : sp.bits;  // DoReFa's odd levels: one more bit
  return out_codes;
}

QatConvEval qat_conv_eval(const QatConv2d& q) {
  NoGradGuard ng;
  const int64_t oc = q.conv().out_channels;
  QatConvEval ev;
  ev.weight = q.parameter("weight").detach();
  ev.bias.assign(static_cast<size_t>(oc), 0.0);
  if (q.has_parameter("bias")) ev.bias = q.parameter("bias").detach().to(DType::Float64).contiguous().to_vector<double>();
  if (q.has_buffer("output_correction")) ev.correction = q.buffer("output_correction").to(DType::Float64).contiguous();
  if (const FoldedBatchNorm2d* bn = q.bn()) {
    Tensor gamma = bn->affine ? bn->parameter("weight").detach() : Tensor::ones({oc}, ev.weight.dtype());
    Tensor beta = bn->affine ? bn->parameter("bias").detach().to(DType::Float64) : Tensor::zeros({oc}, DType::Float64);
    Tensor s = div(gamma, bn->running_sigma());
    ev.weight = mul(ev.weight, reshape(s, {oc, 1, 1, 1}));
    Tensor sd = s.to(DType::Float64), mu = bn->buffer("running_mean").to(DType::Float64);
    for (int64_t i = 0; i < oc; ++i)
      ev.bias[i] = beta.data<double>()[i] + sd.data<double>()[i] * (ev.bias[i] - mu.data<double>()[i]);
    if (ev.correction.defined()) ev.correction = mul(ev.correction, reshape(sd, {oc, 1, 1}));
  }
  ev.weight = ev.weight.contiguous();
  return ev;
}

}  // namespace pfq::quant
