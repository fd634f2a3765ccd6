// model_size.cpp — bit counting per stored tensor (quant/model_size.h).
#include "quant/model_size.h"

#include <cstdio>

#include "layers/batchnorm.h"
#include "quant/qat.h"

namespace pfq::quant {

int64_t ModelSize::total_bits() const {
  int64_t b = 0;
  for (const auto& l : layers) b += l.bits();
  return b;
}

int64_t ModelSize::weight_elements() const {
  int64_t n = 0;
  for (const auto& l : layers) n += l.weights;
  return n;
}

double ModelSize::float32_kib() const {
  int64_t n = 0;
  for (const auto& l : layers) n += l.weights + l.other32;
  return static_cast<double>(n) * 32.0 / 8.0 / 1024.0;
}

std::string ModelSize::str() const {
  std::string s;
  char buf[256];
  std::snprintf(buf, sizeof buf, "%-36s %-20s %10s %5s %10s %10s\n", "layer", "type", "weights", "bits", "32-bit", "KiB");
  s += buf;
  for (const auto& l : layers) {
    std::snprintf(buf, sizeof buf, "%-36s %-20s %10lld %5d %10lld %10.3f\n", l.name.c_str(), l.type.c_str(), (long long)l.weights,
                  l.weight_bits, (long long)l.other32, l.bits() / 8.0 / 1024.0);
    s += buf;
  }
  std::snprintf(buf, sizeof buf, "model size: %.3f KiB (%lld bits; %.3f KiB at float32)\n", kib(), (long long)total_bits(),
                float32_kib());
  return s + buf;
}

nlohmann::json ModelSize::to_json() const {
  nlohmann::json layers_j = nlohmann::json::array();
  for (const auto& l : layers)
    layers_j.push_back({{"name", l.name}, {"type", l.type}, {"weights", l.weights}, {"weight_bits", l.weight_bits},
                        {"other32", l.other32}, {"bits", l.bits()}});
  return {{"size_kib", kib()}, {"total_bits", total_bits()}, {"float32_kib", float32_kib()}, {"layers", layers_j}};
}

namespace {

int64_t numel_of(const Module& m, const std::string& name, bool buffer) {
  if (buffer) return m.has_buffer(name) ? m.buffer(name).numel() : 0;
  return m.has_parameter(name) ? m.parameter(name).numel() : 0;
}

int wbits_of(const Module& qm, int64_t& scales) {
  scales = 0;
  if (!qm.has_child("weight_quant")) return 32;
  const auto* fq = dynamic_cast<const FakeQuantize*>(qm.child("weight_quant").get());
  if (!fq || !fq->quantizer() || !fq->enabled) return 32;
  const QuantSpec& sp = fq->quantizer()->spec();
  scales = sp.per_channel ? qm.parameter("weight").size(0) : 1;
  return sp.bits;
}

}  // namespace

ModelSize model_size(const Module& model) {
  ModelSize ms;
  for (const auto& [name, m] : model.named_modules()) {
    LayerSize l;
    l.name = name.empty() ? "(model)" : name;
    l.type = m->type_name();
    if (const auto* q = dynamic_cast<const QatConv2d*>(m)) {
      int64_t scales = 0;
      l.weights = q->parameter("weight").numel();
      l.weight_bits = wbits_of(*q, scales);
      const int64_t oc = q->conv().out_channels;
      l.other32 = scales + (q->folded() ? oc : numel_of(*q, "bias", false)) + numel_of(*q, "output_correction", true);
    } else if (const auto* q = dynamic_cast<const QatLinear*>(m)) {
      int64_t scales = 0;
      l.weights = q->parameter("weight").numel();
      l.weight_bits = wbits_of(*q, scales);
      l.other32 = scales + numel_of(*q, "bias", false);
    } else if (dynamic_cast<const FoldedBatchNorm2d*>(m)) {
      continue;  // folded into the conv before it
    } else if (const auto* fq = dynamic_cast<const FakeQuantize*>(m)) {
      const std::string leaf = name.substr(name.rfind('.') + 1);
      if (leaf == "weight_quant" || !fq->quantizer() || !fq->enabled) continue;  // weight scales: counted with the layer
      l.weights = 0;
      l.other32 = 2;  // scale and zero point
    } else if (const auto* bn = dynamic_cast<const BatchNorm2d*>(m)) {
      l.other32 = (bn->affine ? 2 : 0) * bn->num_features + (bn->track_running_stats ? 2 : 0) * bn->num_features;
    } else {
      // any other module: its own parameters (weights) and floating buffers at 32 bits
      for (const auto& [pn, t] : m->own_parameters()) (pn == "weight" ? l.weights : l.other32) += t.numel();
      for (const auto& [bn_, t] : m->own_buffers())
        if (is_floating(t.dtype())) l.other32 += t.numel();
    }
    if (l.weights == 0 && l.other32 == 0) continue;
    ms.layers.push_back(l);
  }
  return ms;
}

}  // namespace pfq::quant
