/// \file
/// basic.h — parameter-free layers (layers/): ReLU, ReLU6, MaxPool2d, AvgPool2d,
/// AdaptiveAvgPool2d, Dropout (own seedable Generator), Flatten, Identity. Each wraps one op of
/// core/ops.h and propagates shapes for summaries. Leaves out: ceil_mode, in-place variants.
#pragma once
#include <array>
#include <optional>

#include "layers/module.h"

namespace pfq {

/// max(x, 0), element-wise.
class ReLU : public Module {
 public:
  std::string type_name() const override { return "ReLU"; }
  Tensor forward(const Tensor& x) override;
  int trace(GraphBuilder& g, const std::string& path, int x) override;
};

/// min(max(x, 0), 6), element-wise (MobileNetV2).
class ReLU6 : public Module {
 public:
  std::string type_name() const override { return "ReLU6"; }
  Tensor forward(const Tensor& x) override;
  int trace(GraphBuilder& g, const std::string& path, int x) override;
};

/// Returns its input (a placeholder, e.g. a removed layer).
class Identity : public Module {
 public:
  std::string type_name() const override { return "Identity"; }
  Tensor forward(const Tensor& x) override { return x; }
  int trace(GraphBuilder& g, const std::string& path, int x) override;
};

/// x [N, C, H, W] -> [N, C, OH, OW]; stride defaults to the kernel size, as in PyTorch.
class MaxPool2d : public Module {
 public:
  /// Pooling window `kernel_size` (square), stride (default: the kernel size) and zero padding.
  explicit MaxPool2d(int64_t kernel_size, std::optional<int64_t> stride = {}, int64_t padding = 0);
  std::string type_name() const override { return "MaxPool2d"; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& x) override;
  int trace(GraphBuilder& g, const std::string& path, int x) override;
  Shape output_shape(const Shape& in) const override;
  /// Window, step and padding per H, W.
  ///@{
  std::array<int64_t, 2> kernel, stride, padding;
  ///@}
};

/// x [N, C, H, W] -> [N, C, OH, OW] averages; stride defaults to the kernel size, as in PyTorch.
class AvgPool2d : public Module {
 public:
  /// Pooling window `kernel_size` (square), stride (default: the kernel size), padding, and whether padding counts
  /// in the divisor.
  explicit AvgPool2d(int64_t kernel_size, std::optional<int64_t> stride = {}, int64_t padding = 0, bool count_include_pad = true);
  std::string type_name() const override { return "AvgPool2d"; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& x) override;
  int trace(GraphBuilder& g, const std::string& path, int x) override;
  Shape output_shape(const Shape& in) const override;
  /// Window, step and padding per H, W.
  ///@{
  std::array<int64_t, 2> kernel, stride, padding;
  ///@}
  /// Whether padded zeros count in the average's divisor.
  bool count_include_pad;
};

/// x [N, C, H, W] -> [N, C, OH, OW] with PyTorch's adaptive bins.
class AdaptiveAvgPool2d : public Module {
 public:
  /// Square output `size` x `size`.
  explicit AdaptiveAvgPool2d(int64_t size) : AdaptiveAvgPool2d(size, size) {}
  /// Output `oh` x `ow`.
  AdaptiveAvgPool2d(int64_t oh, int64_t ow);
  std::string type_name() const override { return "AdaptiveAvgPool2d"; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& x) override;
  int trace(GraphBuilder& g, const std::string& path, int x) override;
  Shape output_shape(const Shape& in) const override;
  /// Output height and width.
  std::array<int64_t, 2> output_size;
};

/// Zeroes elements with probability p in training (survivors scaled by 1/(1-p)); identity in
/// eval. Masks come from the layer's own Generator: seeded explicitly, or from the default
/// generator's next value when no seed is given.
class Dropout : public Module {
 public:
  /// Drop probability `p` in [0, 1); masks from `seed`, or from the default generator's next value.
  explicit Dropout(double p = 0.5, std::optional<uint64_t> seed = {});
  std::string type_name() const override { return "Dropout"; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& x) override;
  int trace(GraphBuilder& g, const std::string& path, int x) override;
  /// The layer's own mask generator (checkpoints save its state).
  Generator& generator() { return gen_; }
  Generator* own_generator() override { return &gen_; }
  /// Probability of zeroing an element.
  double p;

 private:
  Generator gen_;
};

/// Flattens dimensions start_dim.. into one: [N, C, H, W] -> [N, C*H*W] by default.
class Flatten : public Module {
 public:
  /// Flattens from dimension `start_dim` on.
  explicit Flatten(int64_t start_dim = 1) : start_dim(start_dim) {}
  std::string type_name() const override { return "Flatten"; }
  Tensor forward(const Tensor& x) override;
  int trace(GraphBuilder& g, const std::string& path, int x) override;
  Shape output_shape(const Shape& in) const override;
  /// First dimension merged.
  int64_t start_dim;
};

}  // namespace pfq
