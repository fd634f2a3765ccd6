// blocks.cpp — ConvBNAct, BasicBlock, DepthwiseSeparable, InvertedResidual (blocks.h).
#include "layers/models/blocks.h"

#include "layers/bn_act.h"
#include "layers/init.h"
#include "layers/model_graph.h"

namespace pfq::models {

ConvBNAct::ConvBNAct(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups, Act act, Generator& gen) : act_(act) {
  push_back(std::make_shared<Conv2d>(in, out, kernel,
                                     Conv2dArgs{.stride = stride, .padding = (kernel - 1) / 2, .groups = groups, .bias = false}, gen));
  push_back(std::make_shared<BatchNorm2d>(out));
  if (act == Act::ReLU) push_back(std::make_shared<ReLU>());
  if (act == Act::ReLU6) push_back(std::make_shared<ReLU6>());
}

namespace {

// conv -> bn -> the block's `relu` child, with BN and the activation fused while both are the
// plain layers, or the activation handed to a QAT conv whose BN is folded (it may fuse it).
Tensor conv_bn_relu(Module& blk, const char* conv, const char* bn, const Tensor& x) {
  Module& relu = *blk.child("relu");
  if (auto [b, act] = fusable_bn_act(blk.child(bn), blk.child("relu")); b) return b->forward_act(blk.child(conv)->forward(x), act);
  if (blk.child(bn)->is_identity()) return blk.child(conv)->forward_into(x, relu);
  return relu(blk.child(bn)->forward(blk.child(conv)->forward(x)));
}

}  // namespace

// branch, [downsample], add, relu: torchvision's order of execution.
int ResidualBlock::trace(GraphBuilder& g, const std::string& path, int x) {
  int y = x;
  for (const char* name : branch()) y = g.child(*this, path, name, y);
  const int shortcut = has_downsample() ? g.child(*this, path, "downsample", x) : x;
  return g.child(*this, path, "relu", g.add(UnitKind::Add, path, nullptr, {y, shortcut}));
}

Shape ResidualBlock::output_shape(const Shape& in) const {
  Shape s = in;
  for (const char* name : branch()) s = child(name)->output_shape(s);
  const Shape shortcut = has_downsample() ? child("downsample")->output_shape(in) : in;
  PFQ_CHECK(s == shortcut, type_name(), ": residual branch ", shape_str(s), " and shortcut ", shape_str(shortcut), " differ");
  return s;
}

// A residual block's shortcut: child "downsample" = Sequential(1x1 conv stride s, BatchNorm2d),
// or (none) the identity, which needs stride 1 and in == out.
static void add_shortcut(Module& block, const char* type, int64_t in, int64_t out, int64_t stride, bool downsample, Generator& gen) {
  if (downsample) {
    auto ds = std::make_shared<Sequential>();
    ds->push_back(std::make_shared<Conv2d>(in, out, 1, Conv2dArgs{.stride = stride, .bias = false}, gen));
    ds->push_back(std::make_shared<BatchNorm2d>(out));
    block.register_module("downsample", ds);
  } else {
    PFQ_CHECK(stride == 1 && in == out, type, "(", in, " -> ", out, ", stride ", stride,
              "): an identity shortcut needs stride 1 and equal channels; use a downsample");
  }
}

BasicBlock::BasicBlock(int64_t in, int64_t mid, int64_t out, int64_t stride, bool downsample, Generator& gen) {
  register_module("conv1", std::make_shared<Conv2d>(in, mid, 3, Conv2dArgs{.stride = stride, .padding = 1, .bias = false}, gen));
  register_module("bn1", std::make_shared<BatchNorm2d>(mid));
  register_module("relu", std::make_shared<ReLU>());
  register_module("conv2", std::make_shared<Conv2d>(mid, out, 3, Conv2dArgs{.padding = 1, .bias = false}, gen));
  register_module("bn2", std::make_shared<BatchNorm2d>(out));
  add_shortcut(*this, "BasicBlock", in, out, stride, downsample, gen);
}

Tensor BasicBlock::forward(const Tensor& x) {
  Tensor y = conv_bn_relu(*this, "conv1", "bn1", x);
  y = child("bn2")->forward(child("conv2")->forward(y));
  Tensor shortcut = has_downsample() ? child("downsample")->forward(x) : x;
  PFQ_CHECK(y.shape() == shortcut.shape(), "BasicBlock: residual branch ", shape_str(y.shape()), " and shortcut ",
            shape_str(shortcut.shape()), " differ (after pruning, conv2 and the shortcut must keep the same channels)");
  // the plain ReLU the builder made: add and activation in one pass (a QAT wrapper gets the sum)
  if (child("relu")->type_name() == "ReLU") return add_relu(y, shortcut);
  return (*child("relu"))(add(y, shortcut));
}

std::vector<std::pair<std::string, Shape>> BasicBlock::child_input_shapes(const Shape& in) const {
  std::vector<std::pair<std::string, Shape>> v;
  Shape s = in;
  for (const char* name : {"conv1", "bn1", "relu", "conv2", "bn2"}) {
    v.emplace_back(name, s);
    s = child(name)->output_shape(s);
  }
  if (has_downsample()) v.emplace_back("downsample", in);
  return v;
}



Bottleneck::Bottleneck(int64_t in, int64_t mid1, int64_t mid2, int64_t out, int64_t stride, bool downsample, Generator& gen) {
  register_module("conv1", std::make_shared<Conv2d>(in, mid1, 1, Conv2dArgs{.bias = false}, gen));
  register_module("bn1", std::make_shared<BatchNorm2d>(mid1));
  register_module("conv2", std::make_shared<Conv2d>(mid1, mid2, 3, Conv2dArgs{.stride = stride, .padding = 1, .bias = false}, gen));
  register_module("bn2", std::make_shared<BatchNorm2d>(mid2));
  register_module("conv3", std::make_shared<Conv2d>(mid2, out, 1, Conv2dArgs{.bias = false}, gen));
  register_module("bn3", std::make_shared<BatchNorm2d>(out));
  register_module("relu", std::make_shared<ReLU>());
  add_shortcut(*this, "Bottleneck", in, out, stride, downsample, gen);
}

Tensor Bottleneck::forward(const Tensor& x) {
  Tensor y = conv_bn_relu(*this, "conv1", "bn1", x);
  y = conv_bn_relu(*this, "conv2", "bn2", y);
  y = child("bn3")->forward(child("conv3")->forward(y));
  Tensor shortcut = has_downsample() ? child("downsample")->forward(x) : x;
  PFQ_CHECK(y.shape() == shortcut.shape(), "Bottleneck: residual branch ", shape_str(y.shape()), " and shortcut ",
            shape_str(shortcut.shape()), " differ (after pruning, conv3 and the shortcut must keep the same channels)");
  // the plain ReLU the builder made: add and activation in one pass (a QAT wrapper gets the sum)
  if (child("relu")->type_name() == "ReLU") return add_relu(y, shortcut);
  return (*child("relu"))(add(y, shortcut));
}

std::vector<std::pair<std::string, Shape>> Bottleneck::child_input_shapes(const Shape& in) const {
  std::vector<std::pair<std::string, Shape>> v;
  Shape s = in;
  for (const char* name : {"conv1", "bn1", "conv2", "bn2", "conv3", "bn3"}) {
    v.emplace_back(name, s);
    s = child(name)->output_shape(s);
  }
  v.emplace_back("relu", s);
  if (has_downsample()) v.emplace_back("downsample", in);
  return v;
}



DepthwiseSeparable::DepthwiseSeparable(int64_t in, int64_t out, int64_t stride, Generator& gen, Act act) {
  add("dw", std::make_shared<ConvBNAct>(in, in, 3, stride, in, act, gen));
  add("pw", std::make_shared<ConvBNAct>(in, out, 1, 1, 1, act, gen));
}

InvertedResidual::InvertedResidual(int64_t in, int64_t hidden, int64_t out, int64_t stride, bool expand, bool residual,
                                   Generator& gen)
    : has_expand_(expand), residual_(residual), stride_(stride) {
  PFQ_CHECK(stride == 1 || stride == 2, "InvertedResidual: stride must be 1 or 2, got ", stride);
  PFQ_CHECK(expand || hidden == in, "InvertedResidual: without expansion the depthwise conv runs on the input, so hidden (", hidden,
            ") must equal in (", in, ")");
  PFQ_CHECK(!residual || (stride == 1 && in == out), "InvertedResidual(", in, " -> ", out, ", stride ", stride,
            "): a residual add needs stride 1 and equal channels");
  auto seq = std::make_shared<Sequential>();
  if (expand) seq->push_back(std::make_shared<ConvBNAct>(in, hidden, 1, 1, 1, Act::ReLU6, gen));
  seq->push_back(std::make_shared<ConvBNAct>(hidden, hidden, 3, stride, hidden, Act::ReLU6, gen));
  seq->push_back(std::make_shared<Conv2d>(hidden, out, 1, Conv2dArgs{.bias = false}, gen));
  seq->push_back(std::make_shared<BatchNorm2d>(out));
  register_module("conv", seq);
}

std::shared_ptr<ConvBNAct> InvertedResidual::expand() const {
  return has_expand_ ? conv()->child_as<ConvBNAct>("0") : nullptr;
}
std::shared_ptr<ConvBNAct> InvertedResidual::depthwise() const { return conv()->child_as<ConvBNAct>(has_expand_ ? "1" : "0"); }
std::shared_ptr<Conv2d> InvertedResidual::project() const { return conv()->child_as<Conv2d>(has_expand_ ? "2" : "1"); }
std::shared_ptr<BatchNorm2d> InvertedResidual::project_bn() const { return conv()->child_as<BatchNorm2d>(has_expand_ ? "3" : "2"); }

Tensor InvertedResidual::forward(const Tensor& x) {
  Tensor y = child("conv")->forward(x);
  if (residual_) {
    PFQ_CHECK(y.shape() == x.shape(), "InvertedResidual: residual branch ", shape_str(y.shape()), " and input ",
              shape_str(x.shape()), " differ (after pruning, the block's input and projection must keep the same channels)");
    y = add(y, x);
  }
  // An output quantizer added by quant::prepare_qat (block_output_quant), applied after the add.
  return has_child("output_quant") ? child("output_quant")->forward(y) : y;
}

// conv (expand, depthwise, project), [add], [output_quant].
int InvertedResidual::trace(GraphBuilder& g, const std::string& path, int x) {
  int y = g.child(*this, path, "conv", x);
  if (residual_) y = g.add(UnitKind::Add, path, nullptr, {y, x});
  return has_child("output_quant") ? g.child(*this, path, "output_quant", y) : y;
}

Shape InvertedResidual::output_shape(const Shape& in) const {
  const Shape s = child("conv")->output_shape(in);
  PFQ_CHECK(!residual_ || s == in, "InvertedResidual: residual branch ", shape_str(s), " and input ", shape_str(in), " differ");
  return s;
}

std::vector<std::pair<std::string, Shape>> InvertedResidual::child_input_shapes(const Shape& in) const {
  if (has_child("output_quant")) return {{"conv", in}, {"output_quant", output_shape(in)}};
  return {{"conv", in}};
}

}  // namespace pfq::models

namespace pfq::models {

void init_conv_kaiming_fan_out(Module& model, Generator& gen) {
  for (auto& [name, m] : model.named_modules()) {
    if (auto* c = dynamic_cast<Conv2d*>(m)) {
      init::kaiming_normal_fan_out_(c->weight(), gen);
      if (c->has_bias()) init::constant_(c->parameter("bias"), 0);
    } else if (auto* bn = dynamic_cast<BatchNorm2d*>(m); bn && bn->affine) {
      init::constant_(bn->parameter("weight"), 1);
      init::constant_(bn->parameter("bias"), 0);
    }
  }
}

void init_linear_normal(Module& model, Generator& gen, double std) {
  for (auto& [name, m] : model.named_modules())
    if (auto* l = dynamic_cast<Linear*>(m)) {
      init::normal_(l->weight(), 0, std, gen);
      if (l->has_bias()) init::constant_(l->parameter("bias"), 0);
    }
}

}  // namespace pfq::models
