// gradient_buckets.h — the gradients of a data-parallel model summed over the ranks in buckets
// (apps/data_parallel.h uses it): the parameters, in reverse registration order as PyTorch's DDP
// takes them (backward makes the last layers' gradients first), cut once into flat buckets of
// about a given size, the same on every rank. During backward, the hook of core/grad_ready.h
// reports each parameter whose gradient is final; a bucket's all-reduce starts (non-blocking)
// once all its parameters are reported and every bucket before it has started, so every rank
// starts the same collectives in the same order (MPI's and NCCL's rule). finish() starts the rest,
// waits for all and copies the sums back. Leaves out the scaling of the loss (the callers').
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/dist/communicator.h"
#include "layers/module.h"

namespace pfq::app {

// `tensors` (same dtype and device) as one flat copy of their values, in order: what one
// all-reduce call sums for all of them.
Tensor flatten_copy(const std::vector<Tensor>& tensors);
// Writes `flat` (flatten_copy's layout) back into `tensors`.
void copy_from_flat(const Tensor& flat, const std::vector<Tensor>& tensors);

class GradientBuckets {
 public:
  // `params`: the model's named_parameters(). The first bucket (the last layers') holds about
  // first_bucket_bytes, so that the first all-reduce starts early; the others bucket_bytes. A
  // new bucket also starts where the dtype or device changes.
  GradientBuckets(const NamedTensors& params, int64_t bucket_bytes, int64_t first_bucket_bytes);
  // False when `params` are no longer the tensors the buckets were made of (a module replaced
  // or moved to another device): the owner makes new buckets.
  bool same_parameters(const NamedTensors& params) const;
  size_t size() const { return buckets_.size(); }
  // Buckets started in this backward pass so far.
  size_t started() const { return next_; }

  // Starts a backward pass: no parameter reported, no bucket started.
  void begin();
  // The hook: `leaf`'s gradient is final. Parameters of the model only (others are ignored);
  // starts the buckets that became ready, in order, and lets the ones in flight progress.
  void ready(const TensorImpl* leaf);
  // Starts the buckets not started yet (in order), waits for every one and writes the sums into
  // the gradients. Parameters whose gradient is undefined are left out of their bucket (which
  // ones have a gradient is the same on every rank: the same model runs the same graph).
  void finish();

 private:
  struct Bucket {
    std::vector<size_t> members;   // indices into params_
    int64_t waiting = 0;           // members not yet reported in this backward pass
    bool started = false;
    std::vector<Tensor> grads;     // the members' gradients at the start, in order
    dist::AllReduceHandle handle;  // holds the flat buffer
  };
  void start(Bucket& b);
  void start_ready_buckets();

  NamedTensors params_;  // reverse registration order
  std::unordered_map<const TensorImpl*, size_t> index_of_;
  std::vector<size_t> bucket_of_;
  std::vector<bool> reported_;
  std::vector<Bucket> buckets_;
  size_t next_ = 0;  // the first bucket not started
};

}  // namespace pfq::app
