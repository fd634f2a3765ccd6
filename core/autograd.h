/// \file
/// autograd.h — the define-by-run tape. Each differentiable op's output holds a Node with
/// the op's inputs and a backward closure capturing only what the gradient needs. backward()
/// walks the graph iteratively in a fixed topological order, accumulates gradients into
/// leaves, and frees each node's closure once used (a second backward through it is an error).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace pfq {

/// Maps the gradient of an op's output to gradients of its inputs (undefined where unneeded).
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_out)>;

/// Where the gradient of one op input goes: the node that computed it, or the leaf (a tensor
/// with requires_grad and no grad_fn) whose .grad accumulates it. An edge never holds a non-leaf
/// input's storage: an intermediate tensor lives only as long as some closure saves it (the
/// output of a BN that feeds a ReLU is freed in the forward pass, as in PyTorch).
struct Edge {
  /// Node that produced the input (null for a leaf or a constant).
  std::shared_ptr<Node> grad_fn;
  /// Leaf whose .grad receives the gradient (null otherwise).
  std::shared_ptr<TensorImpl> leaf;
  /// Shape of the input, which its gradient must have.
  Shape shape;
  /// True when the gradient goes anywhere.
  bool needs_grad() const { return grad_fn || leaf; }
};

/// One recorded op of the tape: its backward closure and where the input gradients go.
struct Node {
  std::string name;           ///< op name, for error messages
  std::vector<Edge> inputs;   ///< one per op input; empty edges where no gradient is needed
  /// Maps the output gradient to one gradient per input.
  BackwardFn backward;
  /// Shape of the op's output (the incoming gradient's).
  Shape out_shape;
  /// Dtype of the op's output.
  DType out_dtype;
};

/// False inside a NoGradGuard scope (ops then record nothing).
bool grad_enabled();

/// Disables graph recording in its scope (evaluation, optimizer steps, statistics updates).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

/// True when recording is on and any of `inputs` requires a gradient.
bool any_requires_grad(const std::vector<Tensor>& inputs);

/// Records `out` as the result of op `name` applied to `inputs` when any_requires_grad(inputs);
/// otherwise returns `out` untouched. `fn` must return one entry per input.
Tensor record(const char* name, Tensor out, const std::vector<Tensor>& inputs, BackwardFn fn);

/// Runs backpropagation from `root` with gradient `seed` (same shape as root).
void run_backward(const Tensor& root, const Tensor& seed);

}  // namespace pfq
