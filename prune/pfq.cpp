// pfq.cpp — the PfQ pass (pfq.h): decide (criterion, rule 3.2, cascades, kept channels),
// compute each removed channel's exact output map (rule 3.3), compensate consumers (3.4),
// then remove the channels (surgery.h). All arithmetic on constants runs in float64.
#include "prune/pfq.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>

#include "core/autograd.h"
#include "prune/graph.h"
#include "prune/surgery.h"

namespace pfq::prune {

std::string Criterion::str() const {
  switch (kind) {
    case VarBelowEps: return "var-below-eps";
    case VarZero: return "var-zero";
    case VarBelow: return "var-below=" + detail::cat(threshold);
  }
  return "?";
}

double Criterion::threshold_for(double bn_eps) const {
  switch (kind) {
    case VarBelowEps: return bn_eps;
    case VarZero: return FLT_MIN;
    case VarBelow: return threshold;
  }
  return 0;
}

Criterion parse_criterion(const std::string& s) {
  const std::string forms = " (expected var-below-eps, var-zero or var-below=<t> with t >= 0)";
  if (s == "var-below-eps") return {};
  if (s == "var-zero") return {Criterion::VarZero, 0};
  const std::string pre = "var-below=";
  PFQ_CHECK(s.rfind(pre, 0) == 0, "unknown PfQ criterion '", s, "'", forms);
  const std::string num = s.substr(pre.size());
  size_t used = 0;
  double t = -1;
  try {
    t = std::stod(num, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  PFQ_CHECK(used == num.size() && !num.empty() && std::isfinite(t) && t >= 0, "PfQ criterion '", s, "': '", num,
            "' is not a threshold", forms);
  return {Criterion::VarBelow, t};
}

Border parse_border(const std::string& s) {
  if (s == "exact") return Border::Exact;
  if (s == "bias") return Border::Bias;
  if (s == "keep") return Border::Keep;
  PFQ_FAIL("unknown border mode '", s, "' (expected exact, bias or keep)");
}

const char* border_name(Border b) {
  switch (b) {
    case Border::Exact: return "exact";
    case Border::Bias: return "bias";
    case Border::Keep: return "keep";
  }
  return "?";
}

namespace {

double mean_of(const Tensor& t) {
  const std::vector<double> v = to_double(t);
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

struct BnParams {
  std::vector<double> gamma, beta, mu, var;
  double eps = 0;
  std::vector<double> scale;  // BatchNorm2d::fold_scale(): gamma / sqrt(var + eps)
};

// What the pass decided for one output channel of a unit.
struct Chan {
  bool removed = false;
  bool constant = false;   // met the criterion (or is a cascade)
  bool has_value = false;  // output known exactly below: consumers get compensated with it
  Tensor map;              // float64 [OH, OW]: the channel's post-activation output
  double interior = 0;     // its value away from zero-padded borders
};

// Each output channel of the tensor [1, OC, OH, OW] is constant over positions. Why 1e-12
// (relative, plus absolute near 0): the maps are float64 convolutions of constant inputs, so
// interior positions differ only by the summation order's rounding (~1e-16 relative), while a
// zero-padded border changes a value by whole weight-times-constant terms; a tolerance far above
// the first and far below the second tells them apart without a threshold the user must set.
bool uniform_rows(const Tensor& t) {
  const std::vector<double> v = to_double(t);
  const size_t per = static_cast<size_t>(t.size(2) * t.size(3));
  for (size_t r = 0; r < v.size(); r += per)
    for (size_t i = 1; i < per; ++i)
      if (std::abs(v[r + i] - v[r]) > 1e-12 * (1 + std::abs(v[r]))) return false;
  return true;
}

class Pass {
 public:
  Pass(ChannelGraph& g, const PfqOptions& o, std::vector<LayerReport>& layers) : g_(g), o_(o), layers_(layers) {
    for (const auto& p : g_.producers) {
      BnParams b{to_double(p.bn->weight()), to_double(p.bn->bias()), to_double(p.bn->running_mean()),
                 to_double(p.bn->running_var()), p.bn->eps, p.bn->fold_scale()};
      bn_.push_back(std::move(b));
      ch_.emplace_back(p.conv->out_channels);
      remaining_.push_back(p.conv->out_channels);
    }
  }

  void decide() {
    for (size_t u = 0; u < g_.producers.size(); ++u)
      for (int64_t c = 0; c < g_.producers[u].conv->out_channels; ++c) decide(static_cast<int>(u), c);
  }

  void compensate();
  ChannelSets removed_sets() const {
    ChannelSets s(ch_.size());
    for (size_t u = 0; u < ch_.size(); ++u)
      for (size_t c = 0; c < ch_[u].size(); ++c)
        if (ch_[u][c].removed) s[u].push_back(static_cast<int64_t>(c));
    return s;
  }

 private:
  ChannelGraph& g_;
  const PfqOptions& o_;
  std::vector<LayerReport>& layers_;
  std::vector<BnParams> bn_;
  std::vector<std::vector<Chan>> ch_;
  std::vector<int64_t> remaining_;

  double scale(int u, int64_t c) const { return bn_[u].scale[c]; }
  // Rule 3.3: f(beta + s * (z - mu)).
  double unit_value(int u, int64_t c, double z) const {
    return activate(g_.producers[u].act, bn_[u].beta[c] + scale(u, c) * (z - bn_[u].mu[c]));
  }
  Tensor unit_output(int u, int64_t c, const Tensor& z) const {
    std::vector<double> v = to_double(z);
    for (double& x : v) x = unit_value(u, c, x);
    return Tensor::from_vector(v, z.shape());
  }
  double conv_bias(int u, int64_t c) const {
    const Conv2d& conv = *g_.producers[u].conv;
    return conv.has_bias() ? to_double(conv.bias())[c] : 0.0;
  }
  Tensor output_map(int u, double value) const {
    const Shape& s = g_.producers[u].output_shape;
    return Tensor::full({s[2], s[3]}, value, DType::Float64);
  }
  // Pre-BN output of depthwise unit d's channel c for the input map `in` [H, W].
  Tensor dw_response(int d, int64_t c, const Tensor& in) const {
    const Conv2d& conv = *g_.producers[d].conv;
    Conv2dOptions opt = conv.options();
    opt.groups = 1;
    Tensor w = slice(conv.weight(), 0, c, c + 1).to(DType::Float64);
    Tensor z = conv2d(reshape(in, {1, 1, in.size(0), in.size(1)}), w, Tensor(), opt);
    z = add(z, conv_bias(d, c));
    return reshape(z, {z.size(2), z.size(3)});
  }
  double dw_interior(int d, int64_t c, double in) const {
    const std::vector<double> w = to_double(slice(g_.producers[d].conv->weight(), 0, c, c + 1));
    double s = 0;
    for (double x : w) s += x;
    return in * s + conv_bias(d, c);
  }
  // Dense consumer k's output change [1, OC, OH, OW] from input channels `chans` fixed to `maps`.
  Tensor dense_response(const Consumer& k, const std::vector<int64_t>& chans, const std::vector<Tensor>& maps) const {
    std::vector<Tensor> parts;
    for (const Tensor& m : maps) parts.push_back(reshape(m, {1, 1, m.size(0), m.size(1)}));
    Tensor w = index_select(k.conv->weight(), 1, chans).to(DType::Float64);
    return conv2d(concat(parts, 1), w, Tensor(), k.conv->options());
  }

  // Why channel c of unit p cannot be removed with output `map`; "" when it can. The rule:
  // removal is allowed only where every consumer can absorb the constant exactly, because PfQ
  // promises the same function, not an approximation. A Linear without bias has nowhere to put
  // it; under --border keep a zero-padded conv would need a correction map it may not use; a
  // depthwise consumer loses the same channel too (it has no other input), so the question
  // moves on to that channel's own consumers, with the depthwise response of `map` as the
  // constant they must absorb (hence the recursion).
  std::string blocker(int p, int64_t c, const Tensor& map) const {
    for (const Consumer& k : g_.producers[p].consumers) {
      if (k.kind == ConsumerKind::PoolLinear && !k.linear->has_bias())
        return "constant, kept (Linear '" + k.name + "' has no bias to absorb it)";
      if (k.kind == ConsumerKind::Dense && o_.border == Border::Keep && !uniform_rows(dense_response(k, {c}, {map})))
        return "constant, kept (feeds zero-padded '" + k.name + "'; --border keep)";
      if (k.kind == ConsumerKind::Depthwise) {
        const Producer& d = g_.producers[k.unit];
        if (!d.prunable_output())
          return "constant, kept (depthwise consumer '" + d.name + "' output " + (d.residual.empty() ? "reaches " + d.open : "is residual") + ")";
        std::string r = blocker(k.unit, c, unit_output(k.unit, c, dw_response(k.unit, c, map)));
        if (!r.empty()) return r;
      }
    }
    return "";
  }

  void keep(int u, int64_t c, const std::string& why) { layers_[u].kept_constant.push_back({c, why}); }

  void remove(int u, int64_t c, Tensor map, double interior, double bound, const std::string& why) {
    Chan& s = ch_[u][c];
    s.removed = s.has_value = s.constant = true;
    s.map = std::move(map);
    s.interior = interior;
    --remaining_[u];
    layers_[u].removed.push_back({c, interior, bound, !uniform_rows(reshape(s.map, {1, 1, s.map.size(0), s.map.size(1)})), why});
  }

  void decide(int u, int64_t c);
};

void Pass::decide(int u, int64_t c) {
  const Producer& p = g_.producers[u];
  const BnParams& b = bn_[u];
  const std::string cs = std::to_string(c);
  // Cascade (3.4, depthwise consumer): the input channel was removed with a known output.
  if (p.depthwise() && p.input >= 0 && ch_[p.input][c].removed) {
    const Chan& in = ch_[p.input][c];
    PFQ_CHECK(in.has_value, "pfq: internal error: '", g_.producers[p.input].name, "' channel ", c, " removed without a value");
    remove(u, c, unit_output(u, c, dw_response(u, c, in.map)), unit_value(u, c, dw_interior(u, c, in.interior)), 0,
           "cascade: constant input '" + g_.producers[p.input].name + "' channel " + cs);
    return;
  }
  if (!(b.var[c] < o_.criterion.threshold_for(b.eps))) return;
  ch_[u][c].constant = true;
  const double bound = std::abs(b.gamma[c]) * std::sqrt(b.var[c] / (b.var[c] + b.eps));
  if (!p.residual.empty()) return keep(u, c, "constant, kept (residual)");
  if (!p.open.empty()) return keep(u, c, "constant, kept (output reaches " + p.open + ")");
  if (remaining_[u] <= 1) return keep(u, c, "constant, kept (last channel of the layer)");
  if (!p.depthwise()) {
    const double a = unit_value(u, c, b.mu[c]);  // z0 = mu: a = f(beta)
    const Tensor map = output_map(u, a);
    if (std::string why = blocker(u, c, map); !why.empty()) return keep(u, c, why);
    return remove(u, c, map, a, bound, "var below threshold");
  }
  // Rule 3.2: a constant depthwise channel; its input channel loses its only consumer.
  const int q = p.input;
  if (q < 0) return keep(u, c, "constant, kept (depthwise input is not a prunable unit)");
  const Producer& in = g_.producers[q];
  if (in.sole_depthwise_consumer() != u) return keep(u, c, "constant, kept (its input channel has other consumers)");
  if (ch_[q][c].constant) return keep(u, c, "constant, kept (its constant input channel is kept)");
  // A depthwise filter's output is constant when its input is dead after ReLU/ReLU6 (zero):
  // then z0 is the conv bias (or 0) exactly. The statistics must agree (running mean within
  // one running std of the bias); otherwise (or without an activation) z0 = mu, a_c = f(beta).
  // Why "provably": a variance below eps says the depthwise output barely moves, not why. Only
  // a dead input (exactly 0 for every image) makes the constant exactly the bias; a merely
  // near-constant input would make the bias the wrong constant, so the running mean, which
  // saw the real inputs, must confirm it before the exact value is used.
  const double bias = conv_bias(u, c);
  const bool dead = in.act != Activation::None && std::abs(b.mu[c] - bias) <= std::sqrt(b.var[c]);
  const double a = unit_value(u, c, dead ? bias : b.mu[c]);
  const Tensor map = output_map(u, a);
  if (std::string why = blocker(u, c, map); !why.empty()) return keep(u, c, why);
  remove(u, c, map, a, bound,
         dead ? "rule 3.2: var below threshold, input '" + in.name + "' channel " + cs + " dead after " + activation_name(in.act)
              : "rule 3.2: var below threshold (input '" + in.name + "' channel " + cs + " not provably dead: z0 = running mean)");
  ch_[q][c].removed = true;  // no value: its only consumer is gone, nothing to compensate
  --remaining_[q];
  layers_[q].removed.push_back({c, std::numeric_limits<double>::quiet_NaN(), 0, false,
                                "rule 3.2: only consumer '" + p.name + "' channel " + cs + " removed"});
}

void Pass::compensate() {
  for (size_t u = 0; u < g_.producers.size(); ++u) {
    std::vector<int64_t> chans;
    std::vector<Tensor> maps;
    std::vector<double> interior;
    for (size_t c = 0; c < ch_[u].size(); ++c)
      if (ch_[u][c].has_value) {
        chans.push_back(static_cast<int64_t>(c));
        maps.push_back(ch_[u][c].map);
        interior.push_back(ch_[u][c].interior);
      }
    if (chans.empty()) continue;
    for (const Consumer& k : g_.producers[u].consumers) {
      if (k.kind == ConsumerKind::Depthwise) continue;  // its channels go too (cascade)
      if (k.kind == ConsumerKind::PoolLinear) {
        // Global average pool of the fixed map, times the Linear column: exact in every mode.
        const std::vector<double> w = to_double(k.linear->weight());
        std::vector<double> bias = to_double(k.linear->bias());
        const size_t in_f = static_cast<size_t>(k.linear->in_features);
        for (size_t i = 0; i < chans.size(); ++i) {
          const double mean = mean_of(maps[i]);
          for (size_t j = 0; j < bias.size(); ++j) bias[j] += mean * w[j * in_f + chans[i]];
        }
        NoGradGuard ng;
        Tensor lb = k.linear->bias();
        lb.copy_(Tensor::from_vector(bias, lb.shape()));
        layers_[u].compensation = "linear bias ('" + k.name + "')";
        continue;
      }
      Producer& ku = g_.producers[k.unit];
      LayerReport& lk = layers_[k.unit];
      const Tensor corr = dense_response(k, chans, maps);  // [1, OC, OH, OW]
      const int64_t oc = corr.size(1);
      const std::vector<double> cv = to_double(corr);
      const size_t per = static_cast<size_t>(corr.size(2) * corr.size(3));
      std::string how;
      if (uniform_rows(corr)) {
        std::vector<double> delta(oc);
        for (int64_t o = 0; o < oc; ++o) delta[o] = cv[o * per];
        how = fold_constant(ku, delta);
      } else if (o_.border == Border::Exact) {
        add_output_correction(*k.conv, corr);
        how = "map";
      } else {
        PFQ_CHECK(o_.border == Border::Bias, "pfq: internal error: --border keep left a border-dependent channel in '", k.name, "'");
        // The paper's fold: the interior constant a * sum(W) goes into the bias / running mean.
        const std::vector<double> w = to_double(index_select(k.conv->weight(), 1, chans));
        const size_t taps = static_cast<size_t>(k.conv->kernel[0] * k.conv->kernel[1]);
        const std::vector<double> s = ku.bn->fold_scale();
        std::vector<double> delta(oc, 0.0);
        for (int64_t o = 0; o < oc; ++o) {
          for (size_t i = 0; i < chans.size(); ++i)
            for (size_t t = 0; t < taps; ++t) delta[o] += interior[i] * w[(o * chans.size() + i) * taps + t];
          for (size_t j = 0; j < per; ++j)
            lk.border_error = std::max(lk.border_error, std::abs(s[o]) * std::abs(cv[o * per + j] - delta[o]));
        }
        how = fold_constant(ku, delta);
      }
      if (lk.compensation.find(how) == std::string::npos) lk.compensation += (lk.compensation.empty() ? "" : "+") + how;
    }
  }
}

}  // namespace

PruneReport pfq_prune(Module& model, const models::ModelConfig& cfg, const PfqOptions& opts) {
  Shape shape = opts.input_shape;
  if (shape.empty()) shape = {1, cfg.in_channels, cfg.input_size, cfg.input_size};
  NoGradGuard ng;
  ChannelGraph g = build_graph(model, shape);
  PruneReport r;
  r.method = "pfq";
  r.criterion = opts.criterion.str();
  r.border = border_name(opts.border);
  r.layers = begin_report(g);
  Pass pass(g, opts, r.layers);
  pass.decide();
  pass.compensate();
  remove_channels(g, pass.removed_sets());
  finish_report(r, g, model, cfg);
  return r;
}

double max_output_change(Module& a, Module& b, const Tensor& x) {
  NoGradGuard ng;
  const bool ta = a.is_training(), tb = b.is_training();
  a.eval();
  b.eval();
  const Tensor ya = a.forward(x), yb = b.forward(x);
  a.train(ta);
  b.train(tb);
  PFQ_CHECK(ya.shape() == yb.shape(), "max_output_change: outputs ", shape_str(ya.shape()), " and ", shape_str(yb.shape()), " differ");
  return max(abs(sub(ya.to(DType::Float64), yb.to(DType::Float64)))).item();
}

}  // namespace pfq::prune
