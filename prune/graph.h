/// \file
/// graph.h — the channel-dependency graph that PfQ and the baseline pruners work on (prune/):
/// every conv -> BN -> activation unit (a "producer"), who consumes its output channels (dense
/// conv input slice, depthwise conv channel, global-pool + Linear column) and which producers
/// meet in residual additions. Built on the model graph (layers/model_graph.h), so any block that
/// traces itself (BasicBlock, Bottleneck, InvertedResidual, ...) is understood. Leaves out:
/// concatenation, grouped (non-depthwise) convs, non-global pooling between units: those are
/// errors or make the channels unprunable.
#pragma once
#include <string>
#include <vector>

#include "layers/layers.h"

namespace pfq::prune {

/// The activation after a BN in a producer unit.
enum class Activation { None, ReLU, ReLU6 };
/// "none" | "relu" | "relu6".
const char* activation_name(Activation a);
/// f(x) for the unit's activation, in double.
double activate(Activation a, double x);

/// How a consumer reads a producer's channel.
enum class ConsumerKind {
  Dense,       ///< Conv2d with groups == 1: reads input channel c through W[:, c, :, :]
  Depthwise,   ///< depthwise Conv2d: channel c in -> channel c out (itself a producer: the cascade)
  PoolLinear,  ///< global average pool (+ flatten, dropout) then Linear: column W[:, c]
};
/// "dense" | "depthwise" | "pool-linear".
const char* consumer_kind_name(ConsumerKind k);

/// One reader of a producer's output. Channel c of the producer is input channel c of the
/// consumer (no concatenation in the supported models), so one record serves every channel.
struct Consumer {
  /// How it reads the channel.
  ConsumerKind kind = ConsumerKind::Dense;
  std::string name;          ///< module path of the conv / linear
  Conv2d* conv = nullptr;    ///< Dense, Depthwise
  Linear* linear = nullptr;  ///< PoolLinear
  int unit = -1;             ///< Dense/Depthwise: index of the producer unit this conv heads
  Shape input_shape;         ///< [1, C, H, W] the conv (or the global pool) reads; empty without shapes
};

/// conv -> BatchNorm2d -> activation. The BN has affine parameters and running statistics.
struct Producer {
  std::string name;     ///< conv path ("features.3.dw.0"); also the ModelConfig::channels key
  std::string bn_name;  ///< BN path
  /// The conv.
  Conv2d* conv = nullptr;
  /// The BN after it.
  BatchNorm2d* bn = nullptr;
  /// The activation after the BN.
  Activation act = Activation::None;
  int input = -1;       ///< producer whose output this conv reads; -1: network input or a residual sum
  /// [1, ...]; empty when built without an input shape.
  ///@{
  Shape input_shape, output_shape;
  ///@}
  /// Every layer that reads this output's channels.
  std::vector<Consumer> consumers;
  std::vector<std::string> residual;  ///< residual adds this output enters (block paths)
  std::string open;   ///< non-empty: the output also reaches something not analysed (why)

  /// True when the conv is depthwise.
  bool depthwise() const { return conv->is_depthwise(); }
  /// Channels can leave this layer only when every use of the output is known and none is a
  /// residual add.
  bool prunable_output() const { return residual.empty() && open.empty(); }
  /// The depthwise conv that is this producer's only consumer, or -1.
  int sole_depthwise_consumer() const;
};

/// Channels that meet in one addition: channel c of every listed producer plus, when
/// `operand` is set, channel c of that other operand (a block input that is no producer).
struct ResidualAdd {
  std::string block;           ///< module path of the block
  std::vector<int> producers;  ///< indices into ChannelGraph::producers
  std::string operand;         ///< e.g. "block input (residual sum of layer1.0)"; "" when none
};

/// Who produces and who consumes each channel of a model (conv -> BN units, consumers, residual adds), built from
/// the model graph.
struct ChannelGraph {
  std::vector<Producer> producers;  ///< in forward order (a producer's input comes earlier)
  /// The residual adds, in forward order.
  std::vector<ResidualAdd> adds;
  int find(const std::string& conv_name) const;  ///< -1 when absent
  std::string str() const;  ///< one line per producer: channels, kind, consumers, residual
};

/// Walks `model`. With `input_shape` ([N, C, H, W]) the consumers' input shapes are filled in
/// (border corrections need them); with {} only channel structure is analysed.
/// Throws pfq::Error naming the module path and type of anything it cannot analyse.
/// The graph holds raw pointers into `model`: it is valid while the model lives and its
/// modules are not replaced.
ChannelGraph build_graph(Module& model, const Shape& input_shape = {});

}  // namespace pfq::prune
