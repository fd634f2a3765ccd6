// bn_fold.cpp — eval-mode Conv2d + BatchNorm2d folding (quant/bn_fold.h). Arithmetic in float64
// so a channel with running_var ~ 0 (s ~ gamma / sqrt(eps)) loses nothing before the final cast.
#include "quant/bn_fold.h"

#include "core/autograd.h"

namespace pfq::quant {

Tensor bn_fold_scale(const BatchNorm2d& bn) {
  PFQ_CHECK(bn.track_running_stats, "fold_bn: BatchNorm2d(", bn.num_features, ") has no running statistics to fold");
  return Tensor::from_vector(bn.fold_scale(), {bn.num_features}).to(bn.running_var().dtype());
}

std::shared_ptr<Conv2d> fold_bn(const Conv2d& conv, const BatchNorm2d& bn) {
  conv.check_consistent();
  PFQ_CHECK(conv.out_channels == bn.num_features, "fold_bn: Conv2d(", conv.extra_repr(), ") has ", conv.out_channels,
            " output channels but BatchNorm2d has ", bn.num_features);
  NoGradGuard ng;
  const DType dt = conv.weight().dtype();
  Tensor s = bn_fold_scale(bn).to(DType::Float64);  // [OC]
  const int64_t oc = conv.out_channels;
  Tensor w = conv.weight().detach().to(Device::cpu()).to(DType::Float64);
  Tensor w_fold = mul(w, reshape(s, {oc, 1, 1, 1}));
  Tensor b = conv.has_bias() ? conv.bias().detach().to(Device::cpu()).to(DType::Float64) : Tensor::zeros({oc}, DType::Float64);
  Tensor mu = bn.running_mean().to(Device::cpu()).to(DType::Float64);
  Tensor b_fold = mul(s, sub(b, mu));
  if (bn.affine) b_fold = add(b_fold, bn.bias().detach().to(Device::cpu()).to(DType::Float64));

  Conv2dArgs args;
  args.stride = conv.stride[0];
  args.padding = conv.padding[0];
  args.dilation = conv.dilation[0];
  args.groups = conv.groups;
  args.bias = true;
  Generator gen(0);
  auto out = std::make_shared<Conv2d>(conv.in_channels, conv.out_channels, conv.kernel[0], args, gen);
  // The constructor is square/symmetric only; copy the real geometry.
  out->kernel = conv.kernel;
  out->stride = conv.stride;
  out->padding = conv.padding;
  out->dilation = conv.dilation;
  out->set_parameter("weight", w_fold.to(dt).contiguous());
  out->set_parameter("bias", b_fold.to(dt).contiguous());
  if (conv.has_output_correction()) {
    Tensor c = conv.output_correction().to(Device::cpu()).to(DType::Float64);  // [OC, OH, OW]
    out->set_output_correction(mul(c, reshape(s, {oc, 1, 1})).to(dt).contiguous());
  }
  out->to(conv.weight().device());
  out->train(conv.is_training());
  return out;
}

}  // namespace pfq::quant
