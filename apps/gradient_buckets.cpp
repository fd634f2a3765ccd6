// gradient_buckets.cpp — the buckets of apps/gradient_buckets.h: made once, started in order
// during or after backward, completed by finish().
#include "apps/gradient_buckets.h"

#include "core/autograd.h"
#include "core/ops.h"

namespace pfq::app {

namespace {
int64_t grad_bytes(const Tensor& t) { return t.numel() * static_cast<int64_t>(dtype_size(t.dtype())); }
}  // namespace

Tensor flatten_copy(const std::vector<Tensor>& tensors) {
  std::vector<Tensor> flat;
  for (const Tensor& t : tensors) flat.push_back(reshape(t.contiguous(), {-1}));
  return flat.size() == 1 ? flat[0].clone() : concat(flat, 0);
}

void copy_from_flat(const Tensor& flat, const std::vector<Tensor>& tensors) {
  int64_t off = 0;
  for (const Tensor& t : tensors) {
    Tensor(t).copy_(reshape(slice(flat, 0, off, off + t.numel()), t.shape()));
    off += t.numel();
  }
}

GradientBuckets::GradientBuckets(const NamedTensors& params, int64_t bucket_bytes, int64_t first_bucket_bytes)
    : params_(params.rbegin(), params.rend()) {
  PFQ_CHECK(bucket_bytes > 0 && first_bucket_bytes > 0, "gradient buckets: sizes must be positive, got ", bucket_bytes, " and ", first_bucket_bytes);
  bucket_of_.resize(params_.size());
  int64_t bytes = 0;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].second;
    const int64_t cap = buckets_.size() == 1 ? first_bucket_bytes : bucket_bytes;  // of the bucket being filled
    const bool same_kind = !buckets_.empty() && p.dtype() == params_[buckets_.back().members.front()].second.dtype() &&
                           p.device() == params_[buckets_.back().members.front()].second.device();
    if (!same_kind || (bytes > 0 && bytes + grad_bytes(p) > cap)) {
      buckets_.emplace_back();
      bytes = 0;
    }
    buckets_.back().members.push_back(i);
    bucket_of_[i] = buckets_.size() - 1;
    bytes += grad_bytes(p);
    index_of_[&p.impl()] = i;
  }
  reported_.assign(params_.size(), false);
}

bool GradientBuckets::same_parameters(const NamedTensors& params) const {
  if (params.size() != params_.size()) return false;
  for (size_t i = 0; i < params.size(); ++i)
    if (&params[i].second.impl() != &params_[params.size() - 1 - i].second.impl()) return false;
  return true;
}

void GradientBuckets::begin() {
  for (Bucket& b : buckets_) {
    PFQ_CHECK(!b.started, "gradient buckets: a backward pass began before the previous one's all-reduce finished");
    b.waiting = 0;
    for (size_t i : b.members)
      if (params_[i].second.requires_grad()) ++b.waiting;  // frozen ones are never reported
  }
  reported_.assign(params_.size(), false);
  next_ = 0;
}

void GradientBuckets::ready(const TensorImpl* leaf) {
  const auto it = index_of_.find(leaf);
  if (it == index_of_.end()) return;
  const size_t i = it->second;
  PFQ_CHECK(!reported_[i], "gradient buckets: parameter '", params_[i].first,
            "' reported twice in one backward pass (run one backward per DataParallel::backward)");
  reported_[i] = true;
  --buckets_[bucket_of_[i]].waiting;
  start_ready_buckets();
  // Open MPI moves a non-blocking collective on only inside MPI calls: test the ones in flight.
  for (size_t k = 0; k < next_; ++k) buckets_[k].handle.test();
}

void GradientBuckets::start_ready_buckets() {
  while (next_ < buckets_.size() && buckets_[next_].waiting == 0) start(buckets_[next_++]);
}

void GradientBuckets::start(Bucket& b) {
  NoGradGuard ng;
  b.started = true;
  b.grads.clear();
  for (size_t i : b.members) {
    const Tensor g = params_[i].second.grad();
    if (!g.defined()) continue;
    PFQ_CHECK(g.is_contiguous(), "all_reduce_gradients: the gradient of '", params_[i].first, "' is not contiguous");
    PFQ_CHECK(b.grads.empty() || (g.dtype() == b.grads.front().dtype() && g.device() == b.grads.front().device()),
              "all_reduce_gradients: the gradient of '", params_[i].first, "' is ", g.describe(), ", unlike the others of its bucket (",
              b.grads.front().describe(), ")");
    b.grads.push_back(g);
  }
  if (b.grads.empty()) return;  // no gradient in the bucket, on any rank: nothing to sum
  b.handle = dist::world().all_reduce_async(flatten_copy(b.grads), dist::ReduceOp::Sum);
}

void GradientBuckets::finish() {
  NoGradGuard ng;
  while (next_ < buckets_.size()) start(buckets_[next_++]);
  for (Bucket& b : buckets_) {
    b.handle.wait();
    if (!b.grads.empty()) copy_from_flat(b.handle.tensor(), b.grads);
    b.handle = dist::AllReduceHandle();
    b.grads.clear();
    b.started = false;
  }
}

}  // namespace pfq::app
