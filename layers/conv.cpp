// conv.cpp — Conv2d and Linear (conv.h).
#include "layers/conv.h"

#include <cmath>

#include "core/autograd.h"
#include "layers/init.h"

namespace pfq {

Conv2d::Conv2d(int64_t in_ch, int64_t out_ch, int64_t k, const Conv2dArgs& a, Generator& gen)
    : in_channels(in_ch), out_channels(out_ch), kernel{k, k}, stride{a.stride, a.stride}, padding{a.padding, a.padding},
      dilation{a.dilation, a.dilation}, groups(a.groups) {
  PFQ_CHECK(in_ch > 0 && out_ch > 0 && k > 0 && a.stride > 0 && a.padding >= 0 && a.dilation > 0 && a.groups > 0,
            "Conv2d(", in_ch, ", ", out_ch, ", kernel_size=", k, ", stride=", a.stride, ", padding=", a.padding,
            ", dilation=", a.dilation, ", groups=", a.groups, "): sizes must be positive (padding >= 0)");
  PFQ_CHECK(in_ch % a.groups == 0 && out_ch % a.groups == 0, "Conv2d: in_channels (", in_ch, ") and out_channels (", out_ch,
            ") must be divisible by groups (", a.groups, ")");
  Tensor w = register_parameter("weight", Tensor::empty({out_ch, in_ch / a.groups, k, k}));
  init::kaiming_uniform_default_(w, gen);
  if (a.bias) {
    Tensor b = register_parameter("bias", Tensor::empty({out_ch}));
    const double bound = 1.0 / std::sqrt(static_cast<double>(init::fan_in(w)));
    init::uniform_(b, -bound, bound, gen);
  }
}

std::string Conv2d::extra_repr() const {
  std::string s = std::to_string(in_channels) + ", " + std::to_string(out_channels) + ", kernel_size=" + pair_str(kernel) +
                  ", stride=" + pair_str(stride);
  if (padding != std::array<int64_t, 2>{0, 0}) s += ", padding=" + pair_str(padding);
  if (dilation != std::array<int64_t, 2>{1, 1}) s += ", dilation=" + pair_str(dilation);
  if (groups != 1) s += ", groups=" + std::to_string(groups);
  if (!has_bias()) s += ", bias=False";
  return s;
}

Conv2dOptions Conv2d::options() const {
  Conv2dOptions o;
  o.stride = stride;
  o.padding = padding;
  o.dilation = dilation;
  o.groups = groups;
  return o;
}

void Conv2d::check_consistent() const {
  const Shape want{out_channels, groups > 0 ? in_channels / groups : -1, kernel[0], kernel[1]};
  PFQ_CHECK(groups > 0 && in_channels % groups == 0 && out_channels % groups == 0 && weight().shape() == want,
            "Conv2d(", extra_repr(), "): weight ", shape_str(weight().shape()), " disagrees with the configuration (expected ",
            shape_str(want), "); after editing a layer, update in_channels/out_channels/groups with the weight");
  PFQ_CHECK(!has_bias() || bias().shape() == Shape{out_channels}, "Conv2d(", extra_repr(), "): bias ", shape_str(bias().shape()),
            " for ", out_channels, " output channels");
}

Tensor Conv2d::forward(const Tensor& x) {
  check_consistent();
  PFQ_CHECK(x.dim() == 4 && x.size(1) == in_channels, "Conv2d(", extra_repr(), "): expected input [N, ", in_channels,
            ", H, W], got ", shape_str(x.shape()));
  Tensor y = conv2d(x, weight(), bias(), options());
  if (!has_output_correction()) return y;
  const Tensor& corr = buffer("output_correction");
  PFQ_CHECK(corr.dim() == 3 && corr.size(0) == y.size(1) && corr.size(1) == y.size(2) && corr.size(2) == y.size(3), "Conv2d(",
            extra_repr(), "): output correction ", shape_str(corr.shape()), " does not fit the output ", shape_str(y.shape()),
            " (a pruned model with --border exact corrections runs only at the input size it was pruned for)");
  return add(y, corr);
}

void Conv2d::set_output_correction(const Tensor& map) {
  PFQ_CHECK(map.defined() && map.dim() == 3 && map.size(0) == out_channels, "Conv2d(", extra_repr(),
            "): output correction must be [OC = ", out_channels, ", OH, OW], got ",
            map.defined() ? shape_str(map.shape()) : std::string("undefined"));
  if (has_output_correction()) set_buffer("output_correction", map);
  else register_buffer("output_correction", map);
}

namespace {
// Rows (dim 0) or columns (dim 1) `keep` of t, as a new contiguous tensor, outside autograd.
Tensor keep_along(const Tensor& t, int64_t dim, const std::vector<int64_t>& keep) {
  NoGradGuard ng;
  return index_select(t, dim, keep).contiguous();
}
}  // namespace

void Conv2d::keep_output_channels(const std::vector<int64_t>& keep) {
  const bool depthwise = is_depthwise();
  set_parameter("weight", keep_along(weight(), 0, keep));
  if (has_bias()) set_parameter("bias", keep_along(bias(), 0, keep));
  out_channels = static_cast<int64_t>(keep.size());
  if (depthwise) in_channels = groups = out_channels;
  if (has_output_correction()) set_output_correction(keep_along(output_correction(), 0, keep));
}

void Conv2d::keep_input_channels(const std::vector<int64_t>& keep) {
  PFQ_CHECK(groups == 1, "Conv2d(", extra_repr(), "): keep_input_channels needs a dense conv (groups = 1)");
  set_parameter("weight", keep_along(weight(), 1, keep));
  in_channels = static_cast<int64_t>(keep.size());
}

void Linear::keep_input_features(const std::vector<int64_t>& keep) {
  set_parameter("weight", keep_along(weight(), 1, keep));
  in_features = static_cast<int64_t>(keep.size());
}

Shape Conv2d::output_shape(const Shape& in) const {
  PFQ_CHECK(in.size() == 4 && in[1] == in_channels, "Conv2d(", extra_repr(), "): expected input [N, ", in_channels,
            ", H, W], got ", shape_str(in));
  const int64_t oh = conv_out_size(in[2], kernel[0], stride[0], padding[0], dilation[0]);
  const int64_t ow = conv_out_size(in[3], kernel[1], stride[1], padding[1], dilation[1]);
  PFQ_CHECK(oh > 0 && ow > 0, "Conv2d(", extra_repr(), "): input ", shape_str(in), " is too small");
  return {in[0], out_channels, oh, ow};
}

int64_t Conv2d::macs(const Shape& in) const {
  const Shape out = output_shape(in);
  return out[0] * out[1] * out[2] * out[3] * (in_channels / groups) * kernel[0] * kernel[1];
}

Linear::Linear(int64_t in_f, int64_t out_f, bool bias, Generator& gen) : in_features(in_f), out_features(out_f) {
  PFQ_CHECK(in_f > 0 && out_f > 0, "Linear(", in_f, ", ", out_f, "): sizes must be positive");
  Tensor w = register_parameter("weight", Tensor::empty({out_f, in_f}));
  init::kaiming_uniform_default_(w, gen);
  if (bias) {
    Tensor b = register_parameter("bias", Tensor::empty({out_f}));
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_f));
    init::uniform_(b, -bound, bound, gen);
  }
}

std::string Linear::extra_repr() const {
  return "in_features=" + std::to_string(in_features) + ", out_features=" + std::to_string(out_features) +
         ", bias=" + (has_bias() ? "True" : "False");
}

Tensor Linear::forward(const Tensor& x) {
  PFQ_CHECK(weight().shape() == Shape({out_features, in_features}), "Linear(", extra_repr(), "): weight ",
            shape_str(weight().shape()), " disagrees with the configuration");
  PFQ_CHECK(x.dim() == 2 && x.size(1) == in_features, "Linear(", extra_repr(), "): expected input [N, ", in_features, "], got ",
            shape_str(x.shape()), " (flatten first)");
  return linear(x, weight(), bias());
}

Shape Linear::output_shape(const Shape& in) const {
  PFQ_CHECK(in.size() == 2 && in[1] == in_features, "Linear(", extra_repr(), "): expected input [N, ", in_features, "], got ",
            shape_str(in));
  return {in[0], out_features};
}

int64_t Linear::macs(const Shape& in) const { return output_shape(in)[0] * in_features * out_features; }

}  // namespace pfq
