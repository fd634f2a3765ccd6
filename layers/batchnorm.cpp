// batchnorm.cpp — BatchNorm2d (batchnorm.h).
#include "layers/batchnorm.h"

#include <cmath>
#include <sstream>

#include "core/autograd.h"
#include "core/dist/sync_stats.h"
#include "core/ops.h"

namespace pfq {

BatchNorm2d::BatchNorm2d(int64_t c, const BatchNorm2dArgs& a)
    : num_features(c), eps(a.eps), momentum(a.momentum), affine(a.affine), track_running_stats(a.track_running_stats) {
  PFQ_CHECK(c > 0 && a.eps > 0, "BatchNorm2d(", c, ", eps=", a.eps, "): num_features and eps must be positive");
  PFQ_CHECK(!a.momentum || (*a.momentum >= 0 && *a.momentum <= 1), "BatchNorm2d: momentum must be in [0, 1], got ", *a.momentum);
  if (affine) {
    register_parameter("weight", Tensor::ones({c}));
    register_parameter("bias", Tensor::zeros({c}));
  }
  if (track_running_stats) {
    register_buffer("running_mean", Tensor::zeros({c}));
    register_buffer("running_var", Tensor::ones({c}));
    register_buffer("num_batches_tracked", Tensor::scalar(0, DType::Int64));
  }
}

std::string BatchNorm2d::extra_repr() const {
  std::ostringstream os;
  os << num_features << ", eps=" << eps << ", momentum=";
  if (momentum) os << *momentum;
  else os << "None";
  os << ", affine=" << (affine ? "True" : "False") << ", track_running_stats=" << (track_running_stats ? "True" : "False");
  return os.str();
}

int64_t BatchNorm2d::batches_tracked() const {
  if (!track_running_stats) return 0;
  return static_cast<int64_t>(buffer("num_batches_tracked").to(Device::cpu()).item());
}

std::vector<double> BatchNorm2d::fold_scale() const {
  PFQ_CHECK(track_running_stats, "BatchNorm2d(", num_features, ") has no running statistics to fold");
  const std::vector<double> var = running_var().to(Device::cpu()).contiguous().to(DType::Float64).to_vector<double>();
  const std::vector<double> gamma =
      affine ? weight().detach().to(Device::cpu()).contiguous().to(DType::Float64).to_vector<double>() : std::vector<double>(var.size(), 1.0);
  std::vector<double> s(var.size());
  for (size_t c = 0; c < s.size(); ++c) s[c] = gamma[c] / std::sqrt(var[c] + eps);
  return s;
}

void BatchNorm2d::keep_channels(const std::vector<int64_t>& keep) {
  NoGradGuard ng;
  auto take = [&](const Tensor& t) { return index_select(t, 0, keep).contiguous(); };
  if (affine) {
    set_parameter("weight", take(weight()));
    set_parameter("bias", take(bias()));
  }
  if (track_running_stats) {
    set_buffer("running_mean", take(running_mean()));
    set_buffer("running_var", take(running_var()));
  }
  num_features = static_cast<int64_t>(keep.size());
}

Tensor BatchNorm2d::forward(const Tensor& x) { return forward_act(x, BnAct::None); }

Tensor BatchNorm2d::forward_act(const Tensor& x, BnAct act) {
  PFQ_CHECK(x.dim() == 4 && x.size(1) == num_features, "BatchNorm2d(", num_features, "): expected input [N, ", num_features,
            ", H, W], got ", shape_str(x.shape()));
  if (!track_running_stats) return batch_norm(x, weight(), bias(), Tensor(), Tensor(), true, 0.0, eps, act);
  if (!training_) return batch_norm(x, weight(), bias(), running_mean(), running_var(), false, 0.0, eps, act);
  const double factor = count_bn_batch(*this, momentum);
  if (sync_stats) return dist::sync_batch_norm(x, weight(), bias(), running_mean(), running_var(), factor, eps, act);
  return batch_norm(x, weight(), bias(), running_mean(), running_var(), true, factor, eps, act);
}

double count_bn_batch(Module& bn, const std::optional<double>& momentum) {
  // num_batches_tracked counts first, as PyTorch does, so the cumulative factor of batch k is 1/k.
  // On a GPU the counter is bumped by a kernel: with a fixed momentum the host never waits for it.
  Tensor& nbt = bn.buffer("num_batches_tracked");
  if (nbt.device().is_cpu()) {
    nbt.data<int64_t>()[0] += 1;
  } else {
    nbt.copy_(add(nbt, Tensor::empty(nbt.shape(), nbt.dtype(), nbt.device()).fill_(1)));
  }
  if (momentum) return *momentum;
  return 1.0 / nbt.to(Device::cpu()).item();
}

Shape BatchNorm2d::output_shape(const Shape& in) const {
  PFQ_CHECK(in.size() == 4 && in[1] == num_features, "BatchNorm2d(", num_features, "): expected input [N, ", num_features,
            ", H, W], got ", shape_str(in));
  return in;
}

}  // namespace pfq
