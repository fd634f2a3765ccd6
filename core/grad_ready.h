/// \file
/// grad_ready.h — a hook that backward calls for each leaf once its gradient is final for that
/// backward pass (core/autograd.cpp's run_backward): what lets data-parallel training start the
/// all-reduce of the last layers' gradients while the first layers' are still being computed
/// (apps/data_parallel.h). Kept apart from autograd.h so that users of the hook alone include it.
/// Leaves out which leaves matter (the hook's owner filters) and any threading: the hook runs on
/// the thread that called backward, between two nodes' backward closures.
#pragma once
#include <functional>

#include "core/tensor.h"

namespace pfq {

/// Called with a leaf (a tensor with requires_grad and no grad_fn) whose .grad has received its
/// last contribution of the running backward pass: every node of the walk that has an edge to
/// it has run, or was skipped because no gradient reached it. Fires exactly once per leaf that
/// any node of the graph points at, in the walk's fixed order (the same on every run of the same
/// graph); leaf.grad() may still be undefined when every contribution was. A backward whose root
/// is itself a leaf reports that leaf after seeding it.
using GradReadyHook = std::function<void(const Tensor& leaf)>;

/// Installs `hook` for the backward passes run on this thread while the scope lives; the hook
/// that was installed before comes back at the end (scopes nest, the innermost one is called).
class GradReadyHookScope {
 public:
  explicit GradReadyHookScope(GradReadyHook hook);
  ~GradReadyHookScope();
  GradReadyHookScope(const GradReadyHookScope&) = delete;
  GradReadyHookScope& operator=(const GradReadyHookScope&) = delete;

 private:
  GradReadyHook hook_;
  const GradReadyHook* outer_;
};

/// The hook of the innermost live GradReadyHookScope on this thread (null when none): what
/// run_backward calls.
const GradReadyHook* current_grad_ready_hook();

}  // namespace pfq
