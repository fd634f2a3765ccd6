// graph.cpp — builds the channel-dependency graph (graph.h) from the model graph
// (layers/model_graph.h): a Conv2d whose only reader is a BatchNorm2d [then a ReLU/ReLU6] is
// one producer unit, an add joins its operands' channels; no block type is named here.
#include "prune/graph.h"

#include <algorithm>
#include <sstream>

#include "layers/model_graph.h"

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

// What a unit's output holds: the channels of one producer (or of nothing prunable).
struct Flow {
  enum Stage { Map, Pooled, Flat, Other } stage = Map;
  int producer = -1;       // whose channels these are; -1: input, residual sum, linear features
  std::string what = "network input";  // description when producer < 0
  Shape shape;             // empty without shape tracking
};

// Reads the model graph's units in forward order, giving each unit's output a Flow.
class Walker {
 public:
  explicit Walker(const ModelGraph& mg, const Shape& input) : mg_(mg), flows_(mg.units.size()) { input_.shape = input; }
  ChannelGraph g;

  void run() {
    for (int i = 0; i < mg_.size(); ++i) flows_[static_cast<size_t>(i)] = visit(i);
    const Flow& out = flow(mg_.output);
    if (out.producer >= 0) g.producers[out.producer].open = "network output";
  }

 private:
  const ModelGraph& mg_;
  std::vector<Flow> flows_;
  Flow input_;
  Shape pooled_from_;  // the map shape the last global pool read

  const Flow& flow(int unit) const { return unit == kNetworkInput ? input_ : flows_[static_cast<size_t>(unit)]; }

  Flow visit(int i) {
    const Unit& u = mg_[i];
    const Flow& in = flow(u.inputs[0]);
    switch (u.kind) {
      case UnitKind::Conv: return unit(i, in);
      case UnitKind::BatchNorm: {
        PFQ_CHECK(u.inputs[0] != kNetworkInput && mg_[u.inputs[0]].kind == UnitKind::Conv, "prune: cannot analyse BatchNorm2d '",
                  u.path, "': it does not follow a Conv2d");
        return in;  // the unit's channels, made a producer at its conv
      }
      case UnitKind::Act: return activation(u.path, in, u.act == BnAct::ReLU6 ? Activation::ReLU6 : Activation::ReLU);
      case UnitKind::Add: return residual_add(u);
      case UnitKind::MaxPool:
      case UnitKind::AvgPool:
        return opaque(u, in, u.module->type_name() == "AdaptiveAvgPool2d" ? "adaptive pooling" : "spatial pooling", Flow::Map);
      case UnitKind::GlobalAvgPool: {
        if (in.stage != Flow::Map) return opaque(u, in, "adaptive pooling", Flow::Map);
        Flow out = in;
        out.stage = Flow::Pooled;
        pooled_from_ = in.shape, out.shape = u.out_shape;
        return out;
      }
      case UnitKind::Flatten: {
        if (in.stage != Flow::Pooled || static_cast<const Flatten*>(u.module)->start_dim != 1)
          return opaque(u, in, "flatten", Flow::Other);
        Flow out = in;
        out.stage = Flow::Flat;
        out.shape = u.out_shape;
        return out;
      }
      case UnitKind::Linear: return linear(u, in);
      case UnitKind::Quant: return in;
    }
    PFQ_FAIL("prune: unit '", u.path, "' of an unknown kind");
  }

  Flow opaque(const Unit& u, const Flow& in, const std::string& why, Flow::Stage stage) {
    if (in.producer >= 0) mark_open(in.producer, why + " '" + u.path + "'");
    Flow out;
    out.stage = in.stage == Flow::Map ? stage : Flow::Other;
    out.what = u.module->type_name() + " '" + u.path + "'";
    out.shape = u.out_shape;
    return out;
  }

  void mark_open(int p, const std::string& why) {
    if (g.producers[p].open.empty()) g.producers[p].open = why;
  }

  Flow activation(const std::string& path, const Flow& in, Activation a) {
    if (in.producer < 0 || in.stage != Flow::Map) return in;  // activation of a sum: stays unprunable
    Producer& p = g.producers[in.producer];
    if (p.act == a) return in;
    PFQ_CHECK(p.act == Activation::None && p.consumers.empty() && p.residual.empty(), "prune: cannot analyse ",
              activation_name(a), " '", path, "' after unit '", p.name, "' that already applies ", activation_name(p.act));
    p.act = a;
    return in;
  }

  Flow linear(const Unit& u, const Flow& in) {
    auto& l = static_cast<Linear&>(*u.module);
    PFQ_CHECK(in.stage != Flow::Map || in.shape.empty() || in.shape.size() == 2, "prune: cannot analyse Linear '", u.path,
              "': it reads a feature map, not a pooled vector");
    if (in.producer >= 0) {
      if (in.stage == Flow::Flat) {
        PFQ_CHECK(l.in_features == g.producers[in.producer].conv->out_channels, "prune: Linear '", u.path, "' has ", l.in_features,
                  " inputs but unit '", g.producers[in.producer].name, "' produces ", g.producers[in.producer].conv->out_channels,
                  " channels");
        Consumer c;
        c.kind = ConsumerKind::PoolLinear;
        c.name = u.path;
        c.linear = &l;
        c.input_shape = pooled_from_;
        g.producers[in.producer].consumers.push_back(c);
      } else {
        mark_open(in.producer, "Linear '" + u.path + "' without global pooling");
      }
    }
    Flow out;
    out.stage = Flow::Other;
    out.what = "Linear '" + u.path + "'";
    out.shape = u.out_shape;
    return out;
  }

  // A conv -> BN unit reading `in` (the BN its only reader); the BN's output carries the producer.
  Flow unit(int i, const Flow& in) {
    const Unit& u = mg_[i];
    auto& conv = static_cast<Conv2d&>(*u.module);
    const std::string& conv_path = u.path;
    const bool bn_next = u.users.size() == 1 && mg_[u.users[0]].kind == UnitKind::BatchNorm;
    PFQ_CHECK(bn_next, "prune: cannot analyse Conv2d '", conv_path, "': it is not followed by a BatchNorm2d",
              u.users.empty() ? std::string(" (its output is the model's)")
                              : " (next: " + (mg_[u.users[0]].module ? mg_[u.users[0]].module->type_name() : "an add") + ")",
              "; the pruner handles conv -> BN [-> ReLU/ReLU6] units");
    const Unit& bu = mg_[u.users[0]];
    auto& bn = static_cast<BatchNorm2d&>(*bu.module);
    const std::string& bn_path = bu.path;
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
    p.input = in.producer;
    p.input_shape = in.shape;
    p.output_shape = u.out_shape;
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
    out.shape = u.out_shape;
    return out;
  }

  // Channels that meet in an add: each operand a producer (marked residual) or a description.
  Flow residual_add(const Unit& u) {
    ResidualAdd add;
    add.block = u.path;
    for (int in : u.inputs) {
      const Flow& f = flow(in);
      PFQ_CHECK(f.stage == Flow::Map, "prune: the add of '", u.path, "' reads a pooled vector");
      if (f.producer >= 0) {
        g.producers[f.producer].residual.push_back(u.path);
        add.producers.push_back(f.producer);
      } else {
        add.operand = "block input (" + f.what + ")";
      }
    }
    g.adds.push_back(add);
    Flow out;
    out.what = "residual sum of '" + u.path + "'";
    out.shape = u.out_shape;
    return out;
  }
};

}  // namespace

ChannelGraph build_graph(Module& model, const Shape& input_shape) {
  PFQ_CHECK(input_shape.empty() || input_shape.size() == 4, "prune: input shape must be [N, C, H, W], got ",
            shape_str(input_shape));
  const ModelGraph mg = trace_model(model, input_shape);
  Shape in = input_shape;
  if (!in.empty()) in[0] = 1;
  Walker w(mg, in);
  w.run();
  return std::move(w.g);
}

}  // namespace pfq::prune
