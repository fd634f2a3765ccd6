// surgery.cpp — channel removal, compensation folds and report bookkeeping (surgery.h).
#include "prune/surgery.h"

#include <algorithm>
#include <cmath>

#include "core/autograd.h"
#include "layers/models/registry.h"

namespace pfq::prune {

std::vector<double> to_double(const Tensor& t) { return t.contiguous().to(DType::Float64).to_vector<double>(); }

namespace {

std::vector<int64_t> complement(int64_t n, const std::vector<int64_t>& removed) {
  std::vector<int64_t> keep;
  size_t j = 0;
  for (int64_t c = 0; c < n; ++c) {
    if (j < removed.size() && removed[j] == c) ++j;
    else keep.push_back(c);
  }
  return keep;
}

}  // namespace

void remove_channels(ChannelGraph& g, const ChannelSets& removed) {
  PFQ_CHECK(removed.size() == g.producers.size(), "remove_channels: ", removed.size(), " channel sets for ", g.producers.size(),
            " units");
  for (size_t i = 0; i < g.producers.size(); ++i) {
    const Producer& p = g.producers[i];
    const auto& r = removed[i];
    const int64_t n = p.conv->out_channels;
    for (size_t k = 0; k < r.size(); ++k)
      PFQ_CHECK(r[k] >= 0 && r[k] < n && (k == 0 || r[k] > r[k - 1]), "remove_channels: '", p.name,
                "': channel indices must be sorted, unique and below ", n);
    PFQ_CHECK(static_cast<int64_t>(r.size()) < n, "remove_channels: '", p.name, "' would lose all ", n, " channels");
    if (r.empty()) continue;
    PFQ_CHECK(p.residual.empty(), "remove_channels: '", p.name, "' feeds the residual add of '", p.residual[0],
              "'; its channels cannot be removed alone");
    PFQ_CHECK(p.open.empty(), "remove_channels: the output of '", p.name, "' reaches ", p.open, ", which the pruner cannot edit");
    if (p.depthwise())
      PFQ_CHECK(p.input >= 0 && removed[p.input] == r, "remove_channels: depthwise '", p.name,
                "' must lose exactly the channels its input unit loses");
    for (const auto& c : p.consumers)
      if (c.kind == ConsumerKind::Depthwise)
        PFQ_CHECK(removed[c.unit] == r, "remove_channels: depthwise '", c.name, "' must lose exactly the channels '", p.name,
                  "' loses");
  }
  for (size_t i = 0; i < g.producers.size(); ++i) {
    if (removed[i].empty()) continue;
    Producer& p = g.producers[i];
    const std::vector<int64_t> keep = complement(p.conv->out_channels, removed[i]);
    p.conv->keep_output_channels(keep);
    p.bn->keep_channels(keep);
    for (auto& c : p.consumers) {
      if (c.kind == ConsumerKind::Dense) c.conv->keep_input_channels(keep);
      else if (c.kind == ConsumerKind::PoolLinear) c.linear->keep_input_features(keep);
    }
  }
  for (auto& p : g.producers) p.conv->check_consistent();
}

std::string fold_constant(Producer& u, const std::vector<double>& delta) {
  PFQ_CHECK(static_cast<int64_t>(delta.size()) == u.conv->out_channels, "fold_constant: ", delta.size(), " values for '", u.name,
            "' with ", u.conv->out_channels, " outputs");
  const bool into_bias = u.conv->has_bias();
  Tensor t = into_bias ? u.conv->bias() : u.bn->running_mean();
  std::vector<double> v = to_double(t);
  // Why the signs: the removed channels contributed delta to this conv's output z, so the pruned
  // conv computes z - delta. With a bias, b + delta adds it back. Without one, the BN that
  // follows sees (z - delta) - mu' and must equal z - mu: mu' = mu - delta (in eval mode, which
  // is where PfQ promises the same function; training re-estimates mu anyway).
  for (size_t i = 0; i < v.size(); ++i) v[i] += into_bias ? delta[i] : -delta[i];
  NoGradGuard ng;
  t.copy_(Tensor::from_vector(v, t.shape()));
  return into_bias ? "bias" : "running_mean";
}

void add_output_correction(Conv2d& conv, const Tensor& map) {
  PFQ_CHECK(map.dim() == 4 && map.size(0) == 1 && map.size(1) == conv.out_channels, "add_output_correction: map ",
            shape_str(map.shape()), " for a conv with ", conv.out_channels, " outputs");
  Tensor m = reshape(map.contiguous(), {map.size(1), map.size(2), map.size(3)}).to(DType::Float32);
  NoGradGuard ng;
  if (conv.has_output_correction()) {
    Tensor cur = conv.output_correction();
    PFQ_CHECK(cur.shape() == m.shape(), "add_output_correction: existing map ", shape_str(cur.shape()), " vs new ",
              shape_str(m.shape()));
    cur.add_(m);
  } else {
    conv.set_output_correction(m.clone());
  }
}

double max_folded_weight(const Conv2d& conv, const BatchNorm2d& bn) {
  const std::vector<double> s = bn.fold_scale();
  const std::vector<double> w = to_double(conv.weight());
  const int64_t oc = conv.out_channels;
  if (oc == 0 || w.empty()) return 0;
  const size_t per = w.size() / static_cast<size_t>(oc);
  double m = 0;
  for (size_t i = 0; i < w.size(); ++i) m = std::max(m, std::abs(s[i / per] * w[i]));
  return m;
}

double quant_step(double max_abs, int bits) {
  PFQ_CHECK(bits >= 2 && bits <= 32, "quant_step: bits must be in [2, 32], got ", bits);
  return max_abs / (std::ldexp(1.0, bits - 1) - 1);
}

std::vector<LayerReport> begin_report(const ChannelGraph& g) {
  std::vector<LayerReport> out;
  for (const auto& p : g.producers) {
    LayerReport l;
    l.name = p.name;
    l.kind = p.depthwise() ? "depthwise" : "conv";
    l.channels_before = l.channels_after = p.conv->out_channels;
    l.max_w_before = l.max_w_after = max_folded_weight(*p.conv, *p.bn);
    l.step4_before = l.step4_after = quant_step(l.max_w_before, 4);
    l.step8_before = l.step8_after = quant_step(l.max_w_before, 8);
    out.push_back(l);
  }
  return out;
}

void finish_report(PruneReport& r, const ChannelGraph& g, const Module& model, const models::ModelConfig& cfg) {
  PFQ_CHECK(r.layers.size() == g.producers.size(), "finish_report: report and graph disagree");
  r.removed_total = r.kept_constant_total = 0;
  r.border_error = 0;
  for (size_t i = 0; i < g.producers.size(); ++i) {
    const Producer& p = g.producers[i];
    LayerReport& l = r.layers[i];
    l.channels_after = p.conv->out_channels;
    l.max_w_after = max_folded_weight(*p.conv, *p.bn);
    l.step4_after = quant_step(l.max_w_after, 4);
    l.step8_after = quant_step(l.max_w_after, 8);
    r.removed_total += l.channels_before - l.channels_after;
    r.kept_constant_total += static_cast<int64_t>(l.kept_constant.size());
    r.border_error = std::max(r.border_error, l.border_error);
  }
  r.config = models::describe(cfg.arch, cfg, model);
  r.correction_maps = static_cast<int64_t>(r.config.output_corrections.size());
}

}  // namespace pfq::prune
