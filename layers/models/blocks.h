/// \file
/// blocks.h — the named building blocks of the model builders (layers/models/): ConvBNAct
/// (torchvision's Conv2dNormActivation), BasicBlock (ResNet), DepthwiseSeparable (MobileNetV1)
/// Bottleneck (ResNet-50) and InvertedResidual (MobileNetV2). Each states its dataflow in
/// trace() (layers/model_graph.h): the only code that knows a block's branches, so the pruner,
/// QAT and the integer converter handle every block alike; forward looks children up by name,
/// so replace_module() (quantization wrappers) takes effect. Typed accessors throw when a child
/// was replaced by another type. Leaves out: SE, grouped bottlenecks (ResNeXt), other norms.
#pragma once
#include "layers/layers.h"

namespace pfq::models {

/// Activation after a ConvBNAct.
enum class Act { None, ReLU, ReLU6 };

/// Sequential "0" = Conv2d(k x k, stride, padding (k-1)/2, groups, no bias), "1" = BatchNorm2d,
/// "2" = ReLU/ReLU6 (absent for Act::None). Type name "Conv2dNormActivation".
class ConvBNAct : public Sequential {
 public:
  /// `in` -> `out` channels, square `kernel`, `stride`, `groups`, activation `act`; weights from `gen`.
  ConvBNAct(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups, Act act, Generator& gen);
  std::string type_name() const override { return "Conv2dNormActivation"; }
  /// The convolution (child "0"). Its forward is Sequential's, which runs BN and the activation
  /// as one fused op while both are the plain layers.
  std::shared_ptr<Conv2d> conv() const { return child_as<Conv2d>("0"); }
  /// The batch norm (child "1").
  std::shared_ptr<BatchNorm2d> bn() const { return child_as<BatchNorm2d>("1"); }
  /// The activation.
  Act act() const { return act_; }

 private:
  Act act_;
};

/// What BasicBlock and Bottleneck share: a branch of children run in order (the block's one
/// `relu` child among them), a shortcut (child "downsample" or the identity) and their add,
/// then `relu`. Shapes and the model-graph trace follow from branch().
class ResidualBlock : public Module {
 public:
  Shape output_shape(const Shape& in) const override;
  int trace(GraphBuilder& g, const std::string& path, int x) override;
  /// True when the shortcut is a 1x1 conv + BN (child "downsample").
  bool has_downsample() const { return has_child("downsample"); }

 protected:
  virtual std::vector<const char*> branch() const = 0;  ///< child names in execution order
};

/// torchvision's BasicBlock: out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), with
/// shortcut = downsample(x) (Sequential "0" = 1x1 Conv2d stride s, "1" = BatchNorm2d) when
/// present, else x. One `relu` child serves both activations (as in torchvision). conv2's and
/// the shortcut's channels meet in the add, so they must stay equal.
class BasicBlock : public ResidualBlock {
 public:
  /// in -> conv1 (3x3, stride) -> mid -> conv2 (3x3) -> out; downsample: 1x1 conv in -> out.
  BasicBlock(int64_t in, int64_t mid, int64_t out, int64_t stride, bool downsample, Generator& gen);
  std::string type_name() const override { return "BasicBlock"; }
  Tensor forward(const Tensor& x) override;
  std::vector<std::pair<std::string, Shape>> child_input_shapes(const Shape& in) const override;

  /// First 3x3 conv.
  std::shared_ptr<Conv2d> conv1() const { return child_as<Conv2d>("conv1"); }
  /// BN after conv1.
  std::shared_ptr<BatchNorm2d> bn1() const { return child_as<BatchNorm2d>("bn1"); }
  /// Second 3x3 conv.
  std::shared_ptr<Conv2d> conv2() const { return child_as<Conv2d>("conv2"); }
  /// BN after conv2.
  std::shared_ptr<BatchNorm2d> bn2() const { return child_as<BatchNorm2d>("bn2"); }
  /// The shortcut's conv + BN; nullptr for the identity shortcut.
  std::shared_ptr<Sequential> downsample() const { return has_downsample() ? child_as<Sequential>("downsample") : nullptr; }
  /// Always true: the block ends in a residual add.
  bool has_residual() const { return true; }

 protected:
  std::vector<const char*> branch() const override { return {"conv1", "bn1", "relu", "conv2", "bn2"}; }
};

/// torchvision's Bottleneck (ResNet v1.5: the stride on the 3x3 conv):
///   out = relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x))))))) + shortcut(x))
/// conv1 1x1 in -> mid1, conv2 3x3 stride mid1 -> mid2, conv3 1x1 mid2 -> out; shortcut as in
/// BasicBlock (downsample = Sequential "0" 1x1 conv stride s, "1" BatchNorm2d). One `relu` child
/// serves the three activations. conv3's and the shortcut's channels meet in the add.
class Bottleneck : public ResidualBlock {
 public:
  /// Channels in -> mid1 -> mid2 -> out, the stride on the 3x3 conv, a downsample shortcut when asked.
  Bottleneck(int64_t in, int64_t mid1, int64_t mid2, int64_t out, int64_t stride, bool downsample, Generator& gen);
  std::string type_name() const override { return "Bottleneck"; }
  Tensor forward(const Tensor& x) override;
  std::vector<std::pair<std::string, Shape>> child_input_shapes(const Shape& in) const override;

 protected:
  std::vector<const char*> branch() const override { return {"conv1", "bn1", "relu", "conv2", "bn2", "relu", "conv3", "bn3"}; }
};

/// MobileNetV1 block: "dw" = ConvBNAct(3x3 depthwise, stride, ReLU), "pw" = ConvBNAct(1x1, ReLU).
class DepthwiseSeparable : public Sequential {
 public:
  /// `in` -> `out` channels with the depthwise conv's `stride`; activation `act` after both convs.
  DepthwiseSeparable(int64_t in, int64_t out, int64_t stride, Generator& gen, Act act = Act::ReLU);
  std::string type_name() const override { return "DepthwiseSeparable"; }
  /// The 3x3 depthwise ConvBNAct ("dw").
  std::shared_ptr<ConvBNAct> depthwise() const { return child_as<ConvBNAct>("dw"); }
  /// The 1x1 pointwise ConvBNAct ("pw").
  std::shared_ptr<ConvBNAct> pointwise() const { return child_as<ConvBNAct>("pw"); }
  /// Always false: no residual add.
  bool has_residual() const { return false; }
};

/// torchvision's InvertedResidual: one child "conv" (Sequential) holding, in order,
///   [expand: ConvBNAct(1x1, in -> hidden, ReLU6)]   only when has_expand()
///   depthwise: ConvBNAct(3x3 depthwise, stride, hidden, ReLU6)
///   project: Conv2d(1x1, hidden -> out, no bias), project_bn: BatchNorm2d(out)   (linear)
/// so conv.0..3 with expansion and conv.0..2 without. out = conv(x) + x when has_residual()
/// (stride 1 and in == out in the unpruned design; then in and out must stay equal).
class InvertedResidual : public Module {
 public:
  /// Channels in -> hidden -> out with the depthwise `stride`; `expand` adds the 1x1 expansion, `residual` the add.
  InvertedResidual(int64_t in, int64_t hidden, int64_t out, int64_t stride, bool expand, bool residual, Generator& gen);
  std::string type_name() const override { return "InvertedResidual"; }
  Tensor forward(const Tensor& x) override;
  Shape output_shape(const Shape& in) const override;
  std::vector<std::pair<std::string, Shape>> child_input_shapes(const Shape& in) const override;

  /// The Sequential "conv" holding the layers.
  std::shared_ptr<Sequential> conv() const { return child_as<Sequential>("conv"); }
  /// Whether the 1x1 expansion is present.
  bool has_expand() const { return has_expand_; }
  std::shared_ptr<ConvBNAct> expand() const;  ///< nullptr without expansion
  /// The 3x3 depthwise ConvBNAct.
  std::shared_ptr<ConvBNAct> depthwise() const;
  /// The 1x1 projection conv.
  std::shared_ptr<Conv2d> project() const;
  /// The BN after the projection.
  std::shared_ptr<BatchNorm2d> project_bn() const;
  /// Whether out = conv(x) + x.
  bool has_residual() const { return residual_; }
  /// The depthwise conv's stride.
  int64_t stride() const { return stride_; }
  int trace(GraphBuilder& g, const std::string& path, int x) override;
  bool takes_output_quant() const override { return true; }

 private:
  bool has_expand_, residual_;
  int64_t stride_;
};

}  // namespace pfq::models

namespace pfq::models {

/// torchvision's model init: every Conv2d weight kaiming_normal_(fan_out, ReLU gain), conv bias 0,
/// BatchNorm2d weight 1 / bias 0. Linear layers are left alone (PyTorch default init).
void init_conv_kaiming_fan_out(Module& model, Generator& gen);
/// Every Linear: weight N(0, std), bias 0 (torchvision's MobileNetV2 classifier init).
void init_linear_normal(Module& model, Generator& gen, double std);

}  // namespace pfq::models
