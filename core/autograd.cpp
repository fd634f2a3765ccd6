// autograd.cpp — graph recording and the iterative, deterministic backward pass, which reports
// leaves whose gradient is final to the hook of core/grad_ready.h.
#include "core/autograd.h"

#include <unordered_map>
#include <unordered_set>

#include "core/grad_ready.h"
#include "core/layout.h"
#include "core/ops.h"
#include "core/profiler.h"

namespace pfq {
namespace {
thread_local bool g_grad_enabled = true;
thread_local const GradReadyHook* g_grad_ready_hook = nullptr;
}

GradReadyHookScope::GradReadyHookScope(GradReadyHook hook) : hook_(std::move(hook)), outer_(g_grad_ready_hook) {
  g_grad_ready_hook = hook_ ? &hook_ : outer_;
}
GradReadyHookScope::~GradReadyHookScope() { g_grad_ready_hook = outer_; }
const GradReadyHook* current_grad_ready_hook() { return g_grad_ready_hook; }

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : prev_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = prev_; }

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  if (!g_grad_enabled) return false;
  for (const auto& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

Tensor record(const char* name, Tensor out, const std::vector<Tensor>& inputs, BackwardFn fn) {
  if (!any_requires_grad(inputs)) return out;
  auto node = std::make_shared<Node>();
  node->name = name;
  node->inputs.reserve(inputs.size());
  for (const auto& t : inputs) {
    Edge e;
    if (t.defined() && t.requires_grad()) {
      e.shape = t.shape();
      if (t.impl().grad_fn)
        e.grad_fn = t.impl().grad_fn;
      else
        e.leaf = t.impl_ptr();
    }
    node->inputs.push_back(std::move(e));
  }
  node->backward = std::move(fn);
  node->out_shape = out.shape();
  node->out_dtype = out.dtype();
  // The output must be a fresh impl: views share storage but never the impl of an input.
  out.impl().requires_grad = true;
  out.impl().grad_fn = std::move(node);
  return out;
}

namespace {

void accumulate(std::shared_ptr<TensorImpl>& slot, const Tensor& g) {
  PFQ_PROFILE("grad accumulate");
  if (!slot) {
    // Own the gradient: it may alias a buffer the backward closure still uses elsewhere.
    // Steal the buffer when nothing else can see it; copy otherwise.
    bool sole_owner = (g.is_contiguous() || is_channels_last(g)) && g.storage().use_count() == 1;
    slot = (sole_owner ? g.detach() : copy_keeping_layout(g)).impl_ptr();
    return;
  }
  Tensor(slot).add_(g);
}

}  // namespace

void run_backward(const Tensor& root, const Tensor& seed) {
  PFQ_CHECK(root.requires_grad(), "backward: the tensor does not require grad (no input of the graph has requires_grad set, or it was computed under NoGradGuard)");
  PFQ_CHECK(seed.shape() == root.shape(), "backward: seed gradient has shape ", shape_str(seed.shape()), " but the tensor has shape ", shape_str(root.shape()));
  NoGradGuard no_grad;
  const GradReadyHook* hook = current_grad_ready_hook();
  if (!root.impl().grad_fn) {  // a leaf: its gradient is the seed
    auto slot = root.impl_ptr();
    accumulate(slot->grad, seed);
    if (hook) (*hook)(root);
    return;
  }
  // Topological order by iterative post-order DFS; inputs visited in op-argument order so
  // the walk (and floating-point accumulation order) is the same on every run.
  std::vector<Node*> order;
  std::unordered_set<Node*> seen;
  std::vector<std::pair<Node*, size_t>> stack;
  Node* root_node = root.impl().grad_fn.get();
  stack.push_back({root_node, 0});
  seen.insert(root_node);
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next < node->inputs.size()) {
      Node* in = node->inputs[next++].grad_fn.get();
      if (in && !seen.count(in)) {
        seen.insert(in);
        stack.push_back({in, 0});
      }
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }
  // With a hook: how many edges of the walk's nodes still point at each leaf. The last one to be
  // processed (or skipped, no gradient having reached its node) makes the leaf's .grad final.
  // A skipped node is read after the node that fed it cleared its inputs, which may have held
  // its last reference: the hook's walk keeps every node alive until the end.
  std::unordered_map<const TensorImpl*, int64_t> pending;
  std::vector<std::shared_ptr<Node>> hook_keep_alive;
  if (hook)
    for (const Node* node : order)
      for (const Edge& e : node->inputs) {
        if (e.leaf) ++pending[e.leaf.get()];
        if (e.grad_fn) hook_keep_alive.push_back(e.grad_fn);
      }
  const auto edge_done = [&](const Edge& e) {
    if (hook && e.leaf && --pending[e.leaf.get()] == 0) (*hook)(Tensor(e.leaf));
  };
  std::unordered_map<Node*, std::shared_ptr<TensorImpl>> grads;
  grads[root_node] = seed.detach().impl_ptr();
  // Keep every node alive until the walk ends even when inputs are released on the way.
  std::vector<std::shared_ptr<Node>> keep_alive;
  keep_alive.push_back(root.impl().grad_fn);
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* node = *it;
    auto git = grads.find(node);
    if (git == grads.end()) {  // no gradient reached this node: its leaves get nothing from it
      for (const Edge& e : node->inputs) edge_done(e);
      continue;
    }
    Tensor gout(git->second);
    grads.erase(git);
    PFQ_CHECK(node->backward, "backward through '", node->name, "' a second time: the graph was freed by the first backward (compute the forward again)");
    std::vector<Tensor> gin;
    {
      profiler::Scope scope(profiler::enabled() ? node->name + " bwd" : std::string());
      gin = node->backward(gout);
    }
    PFQ_CHECK(gin.size() == node->inputs.size(), "internal: backward of '", node->name, "' returned ", gin.size(), " gradients for ", node->inputs.size(), " inputs");
    for (size_t i = 0; i < gin.size(); ++i) {
      Edge& in = node->inputs[i];
      if (in.needs_grad() && gin[i].defined()) {
        PFQ_CHECK(gin[i].shape() == in.shape, "internal: backward of '", node->name, "' gave input ", i, " a gradient of shape ", shape_str(gin[i].shape()), ", expected ", shape_str(in.shape));
        if (in.grad_fn) {
          keep_alive.push_back(in.grad_fn);
          accumulate(grads[in.grad_fn.get()], gin[i]);
        } else {
          accumulate(in.leaf->grad, gin[i]);
        }
      }
      edge_done(in);
    }
    node->backward = nullptr;  // frees saved tensors
    node->inputs.clear();
  }
}

void Tensor::backward(const Tensor& seed) const {
  if (seed.defined()) {
    run_backward(*this, seed);
    return;
  }
  PFQ_CHECK(numel() == 1, "backward() on a tensor of shape ", shape_str(shape()), ": only a one-element tensor has an implicit seed gradient; pass a seed of the same shape");
  run_backward(*this, Tensor::ones(shape(), dtype(), device()));
}

}  // namespace pfq
