/// \file
/// optimizer.h — the optimizer base of pfq (core/optim): named parameters, lr, zero_grad,
/// per-parameter state exported/imported as named tensors for exact checkpoint resume.
/// Sgd (sgd.h) and Adam/AdamW (adam.h) derive from it. Updates run in place on float32/float64
/// storage, CPU or CUDA (state lives on the parameter's device); left out: per-group lrs,
/// maximize, foreach/multi-tensor kernels.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace pfq::optim {

/// A trainable parameter: a leaf tensor with requires_grad, named like its state-dict key.
struct ParamRef {
  /// State-dict name ("layer1.0.conv1.weight").
  std::string name;
  /// The parameter tensor.
  Tensor param;
};

/// Tensors with names, in a fixed order (optimizer state).
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

/// True for parameters that weight decay skips when exclude_bn_bias is set: names ending in
/// ".bias" and tensors with dim() <= 1 (BatchNorm gamma/beta, biases, scalars).
bool no_decay(const std::string& name, const Tensor& param);

/// Base of the optimizers: parameters, learning rate, step count and per-parameter state slots that checkpoints save.
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// One update of every parameter whose grad() is defined (others are skipped and keep
  /// their state untouched, as in PyTorch). Runs under NoGradGuard.
  void step();
  /// set_to_none (PyTorch's default) drops the gradients; otherwise they are zeroed in place.
  void zero_grad(bool set_to_none = true);

  /// Current learning rate.
  double lr() const { return lr_; }
  void set_lr(double lr);  ///< requires lr >= 0 and finite
  /// Number of step() calls.
  int64_t step_count() const { return step_count_; }  // number of step() calls
  /// The parameters, in the order given.
  const std::vector<ParamRef>& params() const { return params_; }
  /// "sgd", "adam" or "adamw".
  const char* kind() const { return kind_; }

  /// Copies of the state: "step" (int64 0-d, step() calls), "<slot>.<param name>" for each
  /// slot that exists (e.g. "momentum_buffer.fc.weight", "exp_avg.fc.weight") and, for
  /// optimizers with per-parameter step counts, "step.<param name>" (int64 0-d).
  NamedTensors state_tensors() const;
  /// Replaces the whole state with `state` (as state_tensors() gives it; tensors are copied
  /// and cast to the parameter's dtype). Throws, leaving the state unchanged, on unknown
  /// names, shape mismatches, or a parameter with only part of its slots.
  void load_state_tensors(const NamedTensors& state);

 protected:
  /// Validates the parameters (non-empty, unique names, floating leaf contiguous tensors
  /// with requires_grad) and lr. `slot_names`: per-parameter state tensors, same shape as it.
  Optimizer(const char* kind, std::vector<ParamRef> params, double lr, std::vector<std::string> slot_names,
            bool per_param_step);
  /// Updates parameter `i` with its gradient `grad` (contiguous, same shape/dtype/device).
  virtual void update(size_t i, const Tensor& grad) = 0;

  /// Slot `s` of parameter `i`, created as zeros on first use (`created` tells whether it was).
  Tensor& slot(size_t i, size_t s, bool* created = nullptr);
  /// Update count of parameter `i` (optimizers with per-parameter steps).
  int64_t& param_step(size_t i) { return param_steps_[i]; }
  /// Throws pfq::Error "<kind>: <what> must be <expected>, got <value>" unless `ok`.
  static void check_hyper(bool ok, const char* kind, const char* what, double value, const char* expected);

  /// Name of the optimizer kind.
  const char* kind_;
  /// The parameters.
  std::vector<ParamRef> params_;
  /// Learning rate.
  double lr_;
  /// step() calls so far.
  int64_t step_count_ = 0;

 private:
  std::vector<std::string> slot_names_;
  bool per_param_step_;
  std::vector<std::vector<Tensor>> slots_;  ///< [param][slot], undefined until first update
  std::vector<int64_t> param_steps_;        ///< updates applied to each parameter
};

}  // namespace pfq::optim
