/// \file
/// conv.h — Conv2d and Linear modules (layers/), PyTorch's layout, names and default init
/// (kaiming_uniform_(a = sqrt(5)) weight, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) bias) drawn from a
/// passed Generator. Configuration fields are public to read; channel removal (PfQ surgery) goes
/// through keep_*_channels, which keep fields and tensors consistent. Leaves out: padding modes
/// other than zeros, string padding ("same"), non-square kernels in the constructor.
#pragma once
#include <array>

#include "core/ops.h"
#include "layers/module.h"

namespace pfq {

/// Options of Conv2d besides the channel counts and kernel size.
struct Conv2dArgs {
  /// Step over H and W.
  int64_t stride = 1;
  /// Zero padding on each side.
  int64_t padding = 0;
  /// Spacing between kernel taps.
  int64_t dilation = 1;
  /// Channel groups (in_channels for depthwise).
  int64_t groups = 1;
  /// Whether the layer has a bias.
  bool bias = true;
};

/// weight [OC, IC/groups, KH, KW], optional bias [OC]; x [N, IC, H, W] -> [N, OC, OH, OW].
class Conv2d : public Module {
 public:
  /// A square `kernel_size` convolution, weights initialised from `gen` (Kaiming uniform, as PyTorch).
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, const Conv2dArgs& args = {},
         Generator& gen = default_generator());
  std::string type_name() const override { return "Conv2d"; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& x) override;
  int trace(GraphBuilder& g, const std::string& path, int x) override;
  Shape output_shape(const Shape& in) const override;
  int64_t macs(const Shape& in) const override;

  /// The weight [OC, IC/groups, KH, KW].
  Tensor& weight() { return parameter("weight"); }
  /// The weight [OC, IC/groups, KH, KW].
  const Tensor& weight() const { return parameter("weight"); }
  /// Whether the layer has a bias.
  bool has_bias() const { return has_parameter("bias"); }
  /// The bias [OC]; undefined without one.
  Tensor bias() const { return has_bias() ? parameter("bias") : Tensor(); }  // undefined without bias
  /// The stride/padding/dilation/groups as conv2d() takes them.
  Conv2dOptions options() const;
  /// groups == in_channels == out_channels: one filter per channel (also true for 1 channel).
  bool is_depthwise() const { return groups == in_channels && out_channels == in_channels; }
  /// Throws unless the fields and weight/bias shapes agree (after pruning surgery, say).
  void check_consistent() const;
  /// Optional fixed map [OC, OH, OW] added to every sample's output (PfQ --border exact: the
  /// exact effect of removed constant input channels, zero-padded borders included). A buffer
  /// "output_correction", so it is saved and loaded; forward requires the output size to match.
  bool has_output_correction() const { return has_buffer("output_correction"); }
  /// The output-correction map [OC, OH, OW]; undefined when there is none.
  Tensor output_correction() const { return has_output_correction() ? buffer("output_correction") : Tensor(); }
  void set_output_correction(const Tensor& map);  ///< registers the buffer or replaces it
  /// Channel surgery: keeps output channels `keep` (sorted, unique) of weight, bias and output
  /// correction; a depthwise conv keeps the same input channels (groups follow).
  void keep_output_channels(const std::vector<int64_t>& keep);
  /// Keeps input channels `keep` (sorted, unique) of a dense (groups == 1) conv's weight.
  void keep_input_channels(const std::vector<int64_t>& keep);

  /// Input and output channel counts.
  ///@{
  int64_t in_channels, out_channels;
  ///@}
  /// Kernel size, stride, padding and dilation per H, W.
  ///@{
  std::array<int64_t, 2> kernel, stride, padding, dilation;
  ///@}
  /// Channel groups.
  int64_t groups;
};

/// weight [OUT, IN], optional bias [OUT]; x [N, IN] -> [N, OUT].
class Linear : public Module {
 public:
  /// A fully connected layer, weights initialised from `gen` (Kaiming uniform, as PyTorch).
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Generator& gen = default_generator());
  std::string type_name() const override { return "Linear"; }
  std::string extra_repr() const override;
  Tensor forward(const Tensor& x) override;
  int trace(GraphBuilder& g, const std::string& path, int x) override;
  Shape output_shape(const Shape& in) const override;
  int64_t macs(const Shape& in) const override;

  /// The weight [OUT, IN].
  Tensor& weight() { return parameter("weight"); }
  /// The weight [OUT, IN].
  const Tensor& weight() const { return parameter("weight"); }
  /// Whether the layer has a bias.
  bool has_bias() const { return has_parameter("bias"); }
  /// The bias [OUT]; undefined without one.
  Tensor bias() const { return has_bias() ? parameter("bias") : Tensor(); }
  /// Keeps input features `keep` (sorted, unique) of the weight (a pruned producer before it).
  void keep_input_features(const std::vector<int64_t>& keep);

  /// Input and output sizes.
  ///@{
  int64_t in_features, out_features;
  ///@}
};

}  // namespace pfq
