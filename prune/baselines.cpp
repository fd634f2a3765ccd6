// baselines.cpp — L1-norm and BN-gamma filter pruning at a target size (baselines.h).
#include "prune/baselines.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/autograd.h"
#include "prune/graph.h"
#include "prune/surgery.h"

namespace pfq::prune {

BaselineMethod parse_baseline(const std::string& s) {
  if (s == "l1") return BaselineMethod::L1;
  if (s == "bn-gamma") return BaselineMethod::BnGamma;
  PFQ_FAIL("unknown baseline pruning method '", s, "' (expected l1 or bn-gamma)");
}

const char* baseline_name(BaselineMethod m) { return m == BaselineMethod::L1 ? "l1" : "bn-gamma"; }

namespace {

// The depthwise units that must lose channel c whenever unit h does (recursively), or
// nullopt-like false when one of them cannot lose channels.
bool chain_of(const ChannelGraph& g, int h, std::vector<int>& chain) {
  for (const Consumer& k : g.producers[h].consumers) {
    if (k.kind != ConsumerKind::Depthwise) continue;
    if (!g.producers[k.unit].prunable_output()) return false;
    chain.push_back(k.unit);
    if (!chain_of(g, k.unit, chain)) return false;
  }
  return true;
}

struct Candidate {
  double score;
  int order;  // forward order of (unit, channel)
  int head;
  int64_t channel;
};

}  // namespace

PruneReport baseline_prune(Module& model, const models::ModelConfig& cfg, const BaselineOptions& opts) {
  PFQ_CHECK(opts.target >= 0, "baseline pruning: target must be >= 0, got ", opts.target);
  NoGradGuard ng;
  ChannelGraph g = build_graph(model);
  PruneReport r;
  r.method = baseline_name(opts.method);
  r.target = opts.target;
  r.layers = begin_report(g);

  std::vector<std::vector<int>> chains(g.producers.size());
  std::vector<bool> head(g.producers.size(), false);
  std::vector<Candidate> cands;
  int order = 0;
  for (size_t u = 0; u < g.producers.size(); ++u) {
    const Producer& p = g.producers[u];
    if (p.depthwise() || !p.prunable_output() || !chain_of(g, static_cast<int>(u), chains[u])) continue;
    head[u] = true;
    const std::vector<double> w = p.conv->weight().contiguous().to(DType::Float64).to_vector<double>();
    const std::vector<double> gamma = p.bn->weight().contiguous().to(DType::Float64).to_vector<double>();
    const size_t per = w.size() / static_cast<size_t>(p.conv->out_channels);
    for (int64_t c = 0; c < p.conv->out_channels; ++c) {
      double score = 0;
      if (opts.method == BaselineMethod::L1) {
        for (size_t i = 0; i < per; ++i) score += std::abs(w[c * per + i]);
        score /= static_cast<double>(per);
      } else {
        score = std::abs(gamma[c]);
      }
      cands.push_back({score, order++, static_cast<int>(u), c});
    }
  }
  std::sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) {
    return a.score != b.score ? a.score < b.score : a.order < b.order;
  });

  ChannelSets removed(g.producers.size());
  std::vector<int64_t> remaining;
  for (const auto& p : g.producers) remaining.push_back(p.conv->out_channels);
  int64_t left = opts.target;
  const char* why = opts.method == BaselineMethod::L1 ? "smallest mean |W| (L1 filter pruning)" : "smallest |gamma| (network slimming)";
  for (const Candidate& c : cands) {
    if (left == 0) break;
    const int64_t size = 1 + static_cast<int64_t>(chains[c.head].size());
    if (size > left || remaining[c.head] <= 1) continue;
    left -= size;
    --remaining[c.head];
    removed[c.head].push_back(c.channel);
    r.layers[c.head].removed.push_back({c.channel, std::numeric_limits<double>::quiet_NaN(), c.score, false, why});
    for (int d : chains[c.head]) {
      --remaining[d];
      removed[d].push_back(c.channel);
      r.layers[d].removed.push_back({c.channel, std::numeric_limits<double>::quiet_NaN(), 0, false,
                                     "removed with its input '" + g.producers[c.head].name + "' channel " + std::to_string(c.channel)});
    }
  }
  for (size_t u = 0; u < removed.size(); ++u) {
    std::sort(removed[u].begin(), removed[u].end());
    std::sort(r.layers[u].removed.begin(), r.layers[u].removed.end(),
              [](const RemovedChannel& a, const RemovedChannel& b) { return a.channel < b.channel; });
  }
  remove_channels(g, removed);
  finish_report(r, g, model, cfg);
  return r;
}

}  // namespace pfq::prune
