// collapse.cpp — the collapsed fine-tune diagnosis of apps/collapse.h.
#include "apps/collapse.h"

#include <cmath>
#include <cstdio>

#include "quant/qparams.h"

namespace pfq::app {

bool at_chance(double top1, int64_t num_classes) {
  return num_classes > 1 && top1 <= 1.2 * 100.0 / static_cast<double>(num_classes);
}

namespace {

// Fills `out` from weight `w` (BN folded) and its weight quantizer when the step relative to
// mean |w| is wider than what `out` holds.
void consider(const std::string& path, const Tensor& w, quant::FakeQuantize* wq, WidestStep& out, double& best) {
  if (!wq || !wq->quantizer() || !wq->enabled) return;  // float weights (bits >= 32)
  const Tensor wc = w.detach().to(Device::cpu()).to(DType::Float32).contiguous();
  const Tensor q = wq->forward(wc).detach().to(DType::Float32).contiguous();
  const Tensor s = wq->quantizer()->last_scale();
  if (!s.defined() || wc.numel() == 0) return;  // a quantizer without a scale (DoReFa)
  double step = 0;
  for (float v : s.to(Device::cpu()).to(DType::Float32).to_vector<float>()) step = std::max(step, static_cast<double>(v));
  const float* a = wc.data<float>();
  const float* b = q.data<float>();
  double sum = 0;
  int64_t nonzero = 0, zeroed = 0;
  for (int64_t i = 0; i < wc.numel(); ++i) {
    sum += std::fabs(a[i]);
    if (a[i] != 0) {
      ++nonzero;
      zeroed += b[i] == 0;
    }
  }
  const double mean = sum / static_cast<double>(wc.numel());
  const double ratio = mean > 0 ? step / mean : INFINITY;
  if (!(ratio > best)) return;
  best = ratio;
  out = {path, wq->quantizer()->spec().bits, step, mean, nonzero ? static_cast<double>(zeroed) / nonzero : 0.0};
}

}  // namespace

WidestStep widest_quant_step(Module& model) {
  model.eval();  // weight quantizers keep no statistics; eval keeps activation observers still
  WidestStep out;
  double best = -1;
  for (auto& [path, m] : model.named_modules()) {
    if (auto* conv = dynamic_cast<quant::QatConv2d*>(m)) {
      const quant::QatConvEval ev = quant::qat_conv_eval(*conv);
      consider(path, ev.weight, dynamic_cast<quant::FakeQuantize*>(conv->child("weight_quant").get()), out, best);
    } else if (auto* lin = dynamic_cast<quant::QatLinear*>(m)) {
      for (const auto& [name, t] : lin->own_parameters())
        if (name == "weight") consider(path, t, dynamic_cast<quant::FakeQuantize*>(lin->child("weight_quant").get()), out, best);
    }
  }
  return out;
}

std::string collapse_note(double top1, int64_t num_classes, const WidestStep& w, const std::string& float_checkpoint) {
  char head[160];
  std::snprintf(head, sizeof head, "collapsed: top-1 %.2f%% is chance for %lld classes", top1, static_cast<long long>(num_classes));
  std::string s = head;
  if (!w.layer.empty()) {
    char body[320];
    std::snprintf(body, sizeof body,
                  "; widest quantization step relative to its weights: '%s' (%d bits, step %.3g = %.1fx its mean |weight| "
                  "%.3g, %.0f%% of its weights round to 0)",
                  w.layer.c_str(), w.bits, w.step, w.mean_abs > 0 ? w.step / w.mean_abs : INFINITY, w.mean_abs,
                  100 * w.zero_fraction);
    s += body;
  }
  s += "; per-layer weight ranges and steps: pfq inspect " + float_checkpoint +
       " (PfQ, pfq prune --method pfq, removes the filters that widen them; more bits or --per-channel also help)";
  return s;
}

}  // namespace pfq::app
