// sync_stats.h — differentiable collectives for statistics that span every rank's batch
// (core/dist/): a sum over ranks whose gradient is summed over ranks too, and the training-mode
// batch norm built on it (--sync-bn), whose mean and variance are those of the global batch, so
// N ranks with B/N images each normalise exactly as one process with B images does. In a group
// of one both are the plain computations (gradient-checked there in float64).
#pragma once
#include "core/ops.h"

namespace pfq::dist {

// x summed over the ranks, on every rank. Backward: the gradient summed over the ranks (every
// rank's loss depends on every rank's x through the total). Every rank must call it, in the same
// order, with the same shape.
Tensor all_reduce_sum(const Tensor& x);

// The batch statistics of every rank's x together, per channel (x [N, C, ...], reduced over every
// axis but 1): two passes, the global mean, then the centred second moment, each one
// all_reduce_sum of [C] sums, in x's dtype; gradients flow through both. count: the values per
// channel over all ranks (at least 2, or throws naming `op`).
struct GlobalMoments {
  Tensor mean, var;  // [C]; var biased (what normalises)
  Tensor centred;    // x - mean, x's shape
  double count = 0;
};
GlobalMoments global_batch_moments(const Tensor& x, const char* op);

// Training-mode batch_norm (core/ops.h's semantics: biased variance normalises, the unbiased one
// updates running_var) with the statistics of all ranks' x together: two passes (mean, then the
// centred second moment), each one all_reduce_sum of [C] per-channel sums, in float64. x [N, C, H, W] or
// [N, C]; weight, bias [C] or undefined; running_mean/var [C] updated in place when defined.
Tensor sync_batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                       const Tensor& running_var, double momentum, double eps, BnAct act = BnAct::None);

}  // namespace pfq::dist
