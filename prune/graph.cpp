// graph.cpp — builds the channel-dependency graph (graph.h) by walking the model as a chain:
// a Sequential's children in order, Conv2d + BatchNorm2d [+ ReLU/ReLU6] siblings as one unit,
// BasicBlock and InvertedResidual by their documented dataflow.
#include "prune/graph.h"

#include <algorithm>
#include <sstream>

#include "layers/models/blocks.h"

namespace pfq::prune {

const char* activation_name(Activation a) {
  switch (a) {
    case Activation::None: return "none";
    case Activation::ReLU: return "relu";
    case Activation::ReLU6: return "relu6";
  }
  return "?";
}

double activate(Activation a, double x) {
  switch (a) {
    case Activation::None: return x;
    case Activation::ReLU: return std::max(0.0, x);
    case Activation::ReLU6: return std::min(6.0, std::max(0.0, x));
  }
  return x;
}

const char* consumer_kind_name(ConsumerKind k) {
  switch (k) {
    case ConsumerKind::Dense: return "conv";
    case ConsumerKind::Depthwise: return "depthwise";
    case ConsumerKind::PoolLinear: return "pool+linear";
  }
  return "?";
}

int Producer::sole_depthwise_consumer() const {
  if (!prunable_output() || consumers.size() != 1 || consumers[0].kind != ConsumerKind::Depthwise) return -1;
  return consumers[0].unit;
}

int ChannelGraph::find(const std::string& conv_name) const {
  for (size_t i = 0; i < producers.size(); ++i)
    if (producers[i].name == conv_name) return static_cast<int>(i);
  return -1;
}

std::string ChannelGraph::str() const {
  std::ostringstream os;
  for (const auto& p : producers) {
    os << p.name << " (" << (p.depthwise() ? "depthwise" : "conv") << ", " << p.conv->out_channels << " ch, "
       << activation_name(p.act) << ") ->";
    if (p.consumers.empty()) os << " (none)";
    for (const auto& c : p.consumers) os << " " << consumer_kind_name(c.kind) << ":" << c.name;
    for (const auto& r : p.residual) os << " residual:" << r;
    if (!p.open.empty()) os << " open:" << p.open;
    os << "\n";
  }
  return os.str();
}

namespace {

using models::BasicBlock;
using models::InvertedResidual;

// What flows between modules: the channels of one producer (or of nothing prunable).
struct Flow {
  enum Stage { Map, Pooled, Flat, Other } stage = Map;
  int producer = -1;       // whose channels these are; -1: input, residual sum, linear features
  std::string what = "network input";  // description when producer < 0
  Shape shape;             // empty without shape tracking
};

class Walker {
 public:
  explicit Walker(bool shapes) : shapes_(shapes) {}
  ChannelGraph g;

  Flow visit(Module& m, const std::string& path, Flow in) {
    if (auto* b = dynamic_cast<BasicBlock*>(&m)) return basic_block(*b, path, in);
    if (auto* r = dynamic_cast<InvertedResidual*>(&m)) return inverted_residual(*r, path, in);
    if (auto* s = dynamic_cast<Sequential*>(&m)) return sequence(*s, path, in);
    if (dynamic_cast<Identity*>(&m) || dynamic_cast<Dropout*>(&m)) return in;
    if (dynamic_cast<ReLU*>(&m)) return activation(path, in, Activation::ReLU);
    if (dynamic_cast<ReLU6*>(&m)) return activation(path, in, Activation::ReLU6);
    if (dynamic_cast<MaxPool2d*>(&m) || dynamic_cast<AvgPool2d*>(&m)) return opaque(m, path, in, "spatial pooling", Flow::Map);
    if (auto* a = dynamic_cast<AdaptiveAvgPool2d*>(&m)) {
      if (in.stage != Flow::Map || a->output_size != std::array<int64_t, 2>{1, 1})
        return opaque(m, path, in, "adaptive pooling", Flow::Map);
      in.stage = Flow::Pooled;
      if (shapes_) pooled_from_ = in.shape, in.shape = m.output_shape(in.shape);
      return in;
    }
    if (auto* f = dynamic_cast<Flatten*>(&m)) {
      if (in.stage != Flow::Pooled || f->start_dim != 1) return opaque(m, path, in, "flatten", Flow::Other);
      in.stage = Flow::Flat;
      if (shapes_) in.shape = m.output_shape(in.shape);
      return in;
    }
    if (auto* l = dynamic_cast<Linear*>(&m)) return linear(*l, path, in);
    if (dynamic_cast<Conv2d*>(&m))
      PFQ_FAIL("prune: cannot analyse Conv2d '", path, "': it is not followed by a BatchNorm2d in the same Sequential",
               " (the pruner handles conv -> BN [-> ReLU/ReLU6] units)");
    if (dynamic_cast<BatchNorm2d*>(&m))
      PFQ_FAIL("prune: cannot analyse BatchNorm2d '", path, "': it does not follow a Conv2d in the same Sequential");
    PFQ_FAIL("prune: cannot analyse module '", path.empty() ? "(root)" : path, "' of type ", m.type_name(),
             " (the channel-dependency graph knows Sequential, Conv2d+BatchNorm2d units, BasicBlock, InvertedResidual,",
             " ReLU/ReLU6, pooling, Flatten, Dropout, Identity and Linear)");
  }

 private:
  bool shapes_;
  Shape pooled_from_;  // the map shape the last global pool read

  Flow opaque(Module& m, const std::string& path, Flow in, const std::string& why, Flow::Stage stage) {
    if (in.producer >= 0) mark_open(in.producer, why + " '" + path + "'");
    Flow out;
    out.stage = in.stage == Flow::Map ? stage : Flow::Other;
    out.what = m.type_name() + " '" + path + "'";
    if (shapes_) out.shape = m.output_shape(in.shape);
    return out;
  }

  void mark_open(int p, const std::string& why) {
    if (g.producers[p].open.empty()) g.producers[p].open = why;
  }

  Flow activation(const std::string& path, Flow in, Activation a) {
    if (in.producer < 0 || in.stage != Flow::Map) return in;  // activation of a sum: stays unprunable
    Producer& p = g.producers[in.producer];
    if (p.act == a) return in;
    PFQ_CHECK(p.act == Activation::None && p.consumers.empty() && p.residual.empty(), "prune: cannot analyse ",
              activation_name(a), " '", path, "' after unit '", p.name, "' that already applies ", activation_name(p.act));
    p.act = a;
    return in;
  }

  Flow linear(Linear& l, const std::string& path, Flow in) {
    PFQ_CHECK(in.stage != Flow::Map || in.shape.empty() || in.shape.size() == 2, "prune: cannot analyse Linear '", path,
              "': it reads a feature map, not a pooled vector");
    if (in.producer >= 0) {
      if (in.stage == Flow::Flat) {
        PFQ_CHECK(l.in_features == g.producers[in.producer].conv->out_channels, "prune: Linear '", path, "' has ", l.in_features,
                  " inputs but unit '", g.producers[in.producer].name, "' produces ", g.producers[in.producer].conv->out_channels,
                  " channels");
        Consumer c;
        c.kind = ConsumerKind::PoolLinear;
        c.name = path;
        c.linear = &l;
        c.input_shape = pooled_from_;
        g.producers[in.producer].consumers.push_back(c);
      } else {
        mark_open(in.producer, "Linear '" + path + "' without global pooling");
      }
    }
    Flow out;
    out.stage = Flow::Other;
    out.what = "Linear '" + path + "'";
    if (shapes_) out.shape = l.output_shape(in.shape);
    return out;
  }

  // A conv -> BN -> act unit reading `in`; returns the unit's output.
  Flow unit(Conv2d& conv, const std::string& conv_path, BatchNorm2d& bn, const std::string& bn_path, Activation act,
            const Flow& in) {
    PFQ_CHECK(in.stage == Flow::Map, "prune: Conv2d '", conv_path, "' reads a pooled vector (", in.what, ")");
    PFQ_CHECK(conv.is_depthwise() || conv.groups == 1, "prune: cannot analyse Conv2d '", conv_path, "' with groups=", conv.groups,
              " (only dense and depthwise convolutions are supported)");
    PFQ_CHECK(bn.num_features == conv.out_channels, "prune: BatchNorm2d '", bn_path, "' has ", bn.num_features,
              " features after Conv2d '", conv_path, "' with ", conv.out_channels, " outputs");
    PFQ_CHECK(bn.affine && bn.track_running_stats, "prune: BatchNorm2d '", bn_path,
              "' needs affine parameters and running statistics");
    if (in.producer >= 0)
      PFQ_CHECK(conv.in_channels == g.producers[in.producer].conv->out_channels, "prune: Conv2d '", conv_path, "' expects ",
                conv.in_channels, " input channels but unit '", g.producers[in.producer].name, "' produces ",
                g.producers[in.producer].conv->out_channels);
    Producer p;
    p.name = conv_path;
    p.bn_name = bn_path;
    p.conv = &conv;
    p.bn = &bn;
    p.act = act;
    p.input = in.producer;
    if (shapes_) {
      p.input_shape = in.shape;
      p.output_shape = conv.output_shape(in.shape);
    }
    const int idx = static_cast<int>(g.producers.size());
    g.producers.push_back(p);
    if (in.producer >= 0) {
      Consumer c;
      c.kind = conv.is_depthwise() ? ConsumerKind::Depthwise : ConsumerKind::Dense;
      c.name = conv_path;
      c.conv = &conv;
      c.unit = idx;
      c.input_shape = in.shape;
      g.producers[in.producer].consumers.push_back(c);
    }
    Flow out;
    out.producer = idx;
    out.shape = g.producers[idx].output_shape;
    return out;
  }

  Flow sequence(Sequential& s, const std::string& path, Flow in) {
    const auto& ch = s.named_children();
    for (size_t i = 0; i < ch.size(); ++i) {
      const std::string cpath = join_name(path, ch[i].first);
      auto* conv = dynamic_cast<Conv2d*>(ch[i].second.get());
      if (!conv) {
        in = visit(*ch[i].second, cpath, in);
        continue;
      }
      auto* bn = i + 1 < ch.size() ? dynamic_cast<BatchNorm2d*>(ch[i + 1].second.get()) : nullptr;
      PFQ_CHECK(bn, "prune: cannot analyse Conv2d '", cpath, "': it is not followed by a BatchNorm2d",
                i + 1 < ch.size() ? " (next: " + ch[i + 1].second->type_name() + ")" : std::string(" (last in its Sequential)"),
                "; the pruner handles conv -> BN [-> ReLU/ReLU6] units");
      Activation act = Activation::None;
      size_t used = 2;
      if (i + 2 < ch.size()) {
        if (dynamic_cast<ReLU*>(ch[i + 2].second.get())) act = Activation::ReLU, used = 3;
        else if (dynamic_cast<ReLU6*>(ch[i + 2].second.get())) act = Activation::ReLU6, used = 3;
      }
      in = unit(*conv, cpath, *bn, join_name(path, ch[i + 1].first), act, in);
      i += used - 1;
    }
    return in;
  }

  // The shortcut operand of an add: a producer (marked residual) or a description.
  void add_operand(ResidualAdd& add, const Flow& f, const std::string& block) {
    if (f.producer >= 0) {
      g.producers[f.producer].residual.push_back(block);
      add.producers.push_back(f.producer);
    } else {
      add.operand = "block input (" + f.what + ")";
    }
  }

  Flow sum_of(const std::string& block, const Flow& like) {
    Flow out;
    out.what = "residual sum of '" + block + "'";
    out.shape = like.shape;
    return out;
  }

  Flow basic_block(BasicBlock& b, const std::string& path, Flow in) {
    PFQ_CHECK(dynamic_cast<ReLU*>(b.child("relu").get()), "prune: cannot analyse BasicBlock '", path, "': its 'relu' is a ",
              b.child("relu")->type_name());
    PFQ_CHECK(in.stage == Flow::Map, "prune: BasicBlock '", path, "' reads a pooled vector");
    Flow y = unit(*b.conv1(), join_name(path, "conv1"), *b.bn1(), join_name(path, "bn1"), Activation::ReLU, in);
    y = unit(*b.conv2(), join_name(path, "conv2"), *b.bn2(), join_name(path, "bn2"), Activation::None, y);
    ResidualAdd add;
    add.block = path;
    add_operand(add, y, path);
    if (b.has_downsample()) {
      Flow s = sequence(*b.downsample(), join_name(path, "downsample"), in);
      PFQ_CHECK(s.producer >= 0 && s.producer != in.producer, "prune: cannot analyse the downsample of BasicBlock '", path,
                "' (expected Conv2d + BatchNorm2d)");
      add_operand(add, s, path);
    } else {
      add_operand(add, in, path);
    }
    g.adds.push_back(add);
    return sum_of(path, y);  // relu(sum): not a producer's channels
  }

  Flow inverted_residual(InvertedResidual& r, const std::string& path, Flow in) {
    PFQ_CHECK(in.stage == Flow::Map, "prune: InvertedResidual '", path, "' reads a pooled vector");
    Flow y = sequence(*r.conv(), join_name(path, "conv"), in);
    PFQ_CHECK(y.producer >= 0 && g.producers[y.producer].name == join_name(path, "conv." + std::string(r.has_expand() ? "2" : "1")),
              "prune: cannot analyse InvertedResidual '", path, "': its 'conv' does not end in the projection unit");
    if (!r.has_residual()) return y;
    ResidualAdd add;
    add.block = path;
    add_operand(add, y, path);
    add_operand(add, in, path);
    g.adds.push_back(add);
    return sum_of(path, y);
  }
};

}  // namespace

ChannelGraph build_graph(Module& model, const Shape& input_shape) {
  PFQ_CHECK(input_shape.empty() || input_shape.size() == 4, "prune: input shape must be [N, C, H, W], got ",
            shape_str(input_shape));
  Walker w(!input_shape.empty());
  Flow in;
  if (!input_shape.empty()) {
    in.shape = input_shape;
    in.shape[0] = 1;
  }
  Flow out = w.visit(model, "", in);
  if (out.producer >= 0) w.g.producers[out.producer].open = "network output";
  return std::move(w.g);
}

}  // namespace pfq::prune
