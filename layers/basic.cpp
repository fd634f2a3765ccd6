// basic.cpp — parameter-free layers (basic.h).
#include "layers/basic.h"

#include <sstream>

#include "core/ops.h"

namespace pfq {

namespace {

Shape pool_shape(const char* name, const Shape& in, const std::array<int64_t, 2>& k, const std::array<int64_t, 2>& s,
                 const std::array<int64_t, 2>& p) {
  PFQ_CHECK(in.size() == 4, name, ": expected input [N, C, H, W], got ", shape_str(in));
  const int64_t oh = conv_out_size(in[2], k[0], s[0], p[0], 1), ow = conv_out_size(in[3], k[1], s[1], p[1], 1);
  PFQ_CHECK(oh > 0 && ow > 0, name, ": input ", shape_str(in), " is smaller than the kernel ", pair_str(k));
  return {in[0], in[1], oh, ow};
}
}  // namespace

Tensor ReLU::forward(const Tensor& x) { return relu(x); }
Tensor ReLU6::forward(const Tensor& x) { return relu6(x); }

MaxPool2d::MaxPool2d(int64_t k, std::optional<int64_t> s, int64_t p)
    : kernel{k, k}, stride{s.value_or(k), s.value_or(k)}, padding{p, p} {
  PFQ_CHECK(k > 0 && stride[0] > 0 && p >= 0 && 2 * p <= k, "MaxPool2d(kernel_size=", k, ", stride=", stride[0],
            ", padding=", p, "): invalid (padding must be at most half the kernel)");
}
std::string MaxPool2d::extra_repr() const {
  return "kernel_size=" + pair_str(kernel) + ", stride=" + pair_str(stride) + ", padding=" + pair_str(padding);
}
Tensor MaxPool2d::forward(const Tensor& x) { return max_pool2d(x, kernel, stride, padding); }
Shape MaxPool2d::output_shape(const Shape& in) const { return pool_shape("MaxPool2d", in, kernel, stride, padding); }

AvgPool2d::AvgPool2d(int64_t k, std::optional<int64_t> s, int64_t p, bool cip)
    : kernel{k, k}, stride{s.value_or(k), s.value_or(k)}, padding{p, p}, count_include_pad(cip) {
  PFQ_CHECK(k > 0 && stride[0] > 0 && p >= 0 && 2 * p <= k, "AvgPool2d(kernel_size=", k, ", stride=", stride[0],
            ", padding=", p, "): invalid (padding must be at most half the kernel)");
}
std::string AvgPool2d::extra_repr() const {
  return "kernel_size=" + pair_str(kernel) + ", stride=" + pair_str(stride) + ", padding=" + pair_str(padding);
}
Tensor AvgPool2d::forward(const Tensor& x) { return avg_pool2d(x, kernel, stride, padding, count_include_pad); }
Shape AvgPool2d::output_shape(const Shape& in) const { return pool_shape("AvgPool2d", in, kernel, stride, padding); }

AdaptiveAvgPool2d::AdaptiveAvgPool2d(int64_t oh, int64_t ow) : output_size{oh, ow} {
  PFQ_CHECK(oh > 0 && ow > 0, "AdaptiveAvgPool2d(", oh, ", ", ow, "): output size must be positive");
}
std::string AdaptiveAvgPool2d::extra_repr() const { return "output_size=" + pair_str(output_size); }
Tensor AdaptiveAvgPool2d::forward(const Tensor& x) { return adaptive_avg_pool2d(x, output_size); }
Shape AdaptiveAvgPool2d::output_shape(const Shape& in) const {
  PFQ_CHECK(in.size() == 4, "AdaptiveAvgPool2d: expected input [N, C, H, W], got ", shape_str(in));
  return {in[0], in[1], output_size[0], output_size[1]};
}

Dropout::Dropout(double p, std::optional<uint64_t> seed) : p(p), gen_(seed ? *seed : default_generator().next_u64()) {
  PFQ_CHECK(p >= 0 && p < 1, "Dropout: p must be in [0, 1), got ", p);
}
std::string Dropout::extra_repr() const {
  std::ostringstream os;
  os << "p=" << p;
  return os.str();
}
Tensor Dropout::forward(const Tensor& x) { return dropout(x, p, training_, gen_); }

Tensor Flatten::forward(const Tensor& x) { return flatten(x, start_dim); }
Shape Flatten::output_shape(const Shape& in) const {
  const int64_t d = start_dim < 0 ? start_dim + static_cast<int64_t>(in.size()) : start_dim;
  PFQ_CHECK(d >= 0 && d < static_cast<int64_t>(in.size()), "Flatten(start_dim=", start_dim, "): input ", shape_str(in));
  Shape out(in.begin(), in.begin() + d);
  int64_t rest = 1;
  for (size_t i = d; i < in.size(); ++i) rest *= in[i];
  out.push_back(rest);
  return out;
}

}  // namespace pfq
