/// \file
/// module.h — the Module base of pfq (layers/): parameters, buffers and child modules registered
/// by name, PyTorch-style dotted state-dict names in registration order, train/eval, device and
/// dtype moves, state-dict loading with clear errors, child replacement (quantization wrappers,
/// pruning surgery) and the shape/MAC propagation used by summary.h. Modules live in shared_ptr.
/// Leaves out: hooks, parameter groups, non-persistent buffers, multi-input forward.
#pragma once
#include <array>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace pfq {

/// Tensors with dotted names, in registration order (parameters, buffers, state dicts).
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module;
class GraphBuilder;
class Generator;
/// Modules are held by shared pointer (children, builders, checkpoints).
using ModulePtr = std::shared_ptr<Module>;

/// What load_state_dict found (strict=false returns it instead of throwing).
struct LoadResult {
  std::vector<std::string> missing_keys;     ///< in the module, absent from the state dict
  std::vector<std::string> unexpected_keys;  ///< in the state dict, absent from the module
};

/// Base of every layer, block and model: named parameters, buffers and children (PyTorch-style dotted names),
/// train/eval mode, placement, state dicts, shape propagation and the model-graph trace.
class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // ---- what every layer provides ----
  virtual std::string type_name() const = 0;  ///< "Conv2d", "BatchNorm2d", "BasicBlock", ...
  /// The module applied to x.
  virtual Tensor forward(const Tensor& x) = 0;
  /// forward(x).
  Tensor operator()(const Tensor& x) { return forward(x); }
  /// Runs this module, then `next` on its output, for a caller that feeds that output to `next`
  /// alone (Sequential, the model blocks). A module that can fuse `next` into its own op
  /// overrides it (QAT's folded convolution takes the activation and its quantizer).
  virtual Tensor forward_into(const Tensor& x, Module& next) { return next.forward(forward(x)); }
  /// True for a stand-in whose forward returns its input unchanged (a batch norm folded into the
  /// convolution before it): callers may skip it and hand its neighbours to forward_into.
  virtual bool is_identity() const { return false; }
  /// One-line configuration for printing, like PyTorch's extra_repr ("3, 16, kernel_size=3").
  virtual std::string extra_repr() const { return ""; }

  // ---- shape propagation without running the model (summary.h) ----
  /// Output shape for input shape `in` (full shape, batch included). Default: `in` unchanged,
  /// which fits element-wise layers; every shape-changing or composite module overrides it.
  virtual Shape output_shape(const Shape& in) const;
  /// Multiply-accumulates of one forward with input `in`, children included. Only conv and
  /// linear count (BN, activations, pooling, adds: 0). Default: the children's sum.
  virtual int64_t macs(const Shape& in) const;
  /// The input shape each child sees for module input `in`, in child order (composites
  /// override; the default errors for a module with children, returns {} for a leaf).
  virtual std::vector<std::pair<std::string, Shape>> child_input_shapes(const Shape& in) const;

  // ---- model graph (layers/model_graph.h) ----
  /// Appends the units this module computes, reading unit `x`, to `g`; returns the unit holding
  /// its output. A layer adds one unit, a container traces its children, a block states its
  /// branches and adds. Default: a clear error naming `path` and the type.
  virtual int trace(GraphBuilder& g, const std::string& path, int x);
  /// True for a block whose forward applies a child "output_quant", when one is registered, to
  /// its output (a linear block output that QAT preparation gives a signed quantizer).
  virtual bool takes_output_quant() const { return false; }

  // ---- registration (constructors call these) ----
  /// Makes `t` a leaf (detached) with requires_grad=true; an undefined `t` is rejected. The
  /// returned reference is valid until the next registration (copy the handle to keep it).
  Tensor& register_parameter(const std::string& name, Tensor t);
  Tensor& register_buffer(const std::string& name, Tensor t);  ///< requires_grad=false
  template <typename M>
  /// Registers `m` as child `name` (forward order = registration order); returns it.
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, m);
    return m;
  }
  /// Replaces an existing child; `name` may be dotted ("layer1.0.conv1"): the last component
  /// is replaced inside the module the prefix names. Returns the previous module.
  ModulePtr replace_module(const std::string& name, ModulePtr m);
  /// Replaces an existing parameter/buffer of this module (pruning surgery: new shapes allowed).
  void set_parameter(const std::string& name, Tensor t);
  /// Replaces an existing buffer of this module (new shapes allowed).
  void set_buffer(const std::string& name, Tensor t);

  // ---- lookup ----
  bool has_parameter(const std::string& name) const;  ///< own parameter, not dotted
  /// Own buffer, not dotted.
  bool has_buffer(const std::string& name) const;
  Tensor& parameter(const std::string& name);  ///< own; throws naming the available ones
  /// Own parameter; throws naming the available ones.
  const Tensor& parameter(const std::string& name) const;
  /// Own buffer; throws naming the available ones.
  Tensor& buffer(const std::string& name);
  /// Own buffer; throws naming the available ones.
  const Tensor& buffer(const std::string& name) const;
  /// Own child, not dotted.
  bool has_child(const std::string& name) const;
  ModulePtr child(const std::string& name) const;  ///< own child; throws when absent
  /// Module at a dotted path ("" = this module); throws naming the first missing component.
  Module& submodule(const std::string& path);
  template <typename M>
  /// Own child `name` as type M; throws when absent or of another type.
  std::shared_ptr<M> child_as(const std::string& name) const {
    auto p = std::dynamic_pointer_cast<M>(child(name));
    PFQ_CHECK(p, type_name(), ": child '", name, "' is a ", child(name)->type_name(), ", not the expected type");
    return p;
  }

  // ---- traversal (registration order, dotted names) ----
  /// Own children, in registration order.
  const std::vector<std::pair<std::string, ModulePtr>>& named_children() const { return children_; }
  /// Own parameters (not the children's).
  const NamedTensors& own_parameters() const { return params_; }
  /// Own buffers (not the children's).
  const NamedTensors& own_buffers() const { return buffers_; }
  /// Every parameter of the tree with dotted names ("layer1.0.conv1.weight").
  NamedTensors named_parameters() const;
  /// Every buffer of the tree with dotted names.
  NamedTensors named_buffers() const;
  /// Every parameter of the tree (optimizers take them).
  std::vector<Tensor> parameters() const;
  /// Pre-order: ("", this), ("layer1", ...), ("layer1.0", ...), ...
  std::vector<std::pair<std::string, Module*>> named_modules();
  /// Pre-order: ("", this), ("layer1", ...), ("layer1.0", ...), ...
  std::vector<std::pair<std::string, const Module*>> named_modules() const;
  int64_t num_parameters() const;  ///< elements of all parameters, children included
  /// Every own_generator() in the tree, keyed by module path (Generator::state() strings).
  std::map<std::string, std::string> generator_states() const;
  /// Restores generator_states(); a path that is not a module with a generator is an error
  /// naming it (`what` names the source, e.g. the checkpoint). Modules absent from `states`
  /// keep their current state (an older checkpoint saved none).
  void set_generator_states(const std::map<std::string, std::string>& states, const std::string& what);

  // ---- state ----
  /// Parameters and buffers per module, parameters first, in registration order; the tensors
  /// share storage with the module (detached).
  NamedTensors state_dict() const;
  /// The random state a module draws from itself (Dropout's mask generator), if any. Not part of
  /// the state dict; checkpoints save it beside the weights (generator_states below) so that a
  /// resumed run continues the same random stream.
  virtual Generator* own_generator() { return nullptr; }
  /// Copies (with dtype conversion) every matching entry. Shape mismatches always throw;
  /// with strict, missing or unexpected keys throw too. Nothing is modified when it throws.
  LoadResult load_state_dict(const NamedTensors& state, bool strict = true);
  /// load_state_dict from a map of names to tensors.
  LoadResult load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);

  // ---- modes and placement (recursive) ----
  /// Training mode (batch statistics, dropout) when `on`, else evaluation; recursive.
  virtual void train(bool on = true);
  /// train(false).
  void eval() { train(false); }
  /// True in training mode.
  bool is_training() const { return training_; }
  /// Moves/converts parameters and buffers in place: the tensor handles stay the same, so an
  /// optimizer built earlier still sees them; gradients are dropped when anything changes.
  /// to(DType) converts only floating tensors (num_batches_tracked stays int64).
  Module& to(Device device);
  /// Converts floating parameters and buffers to `dtype` in place.
  Module& to(DType dtype);
  void zero_grad();  ///< drops gradients (set_to_none, as PyTorch does by default)

  /// PyTorch-like indented tree: "Conv2d(3, 16, kernel_size=(3, 3), ...)".
  std::string repr() const;

 protected:
  /// The mode train() set.
  bool training_ = true;

 private:
  void add_child(const std::string& name, ModulePtr m);
  void collect(const std::string& prefix, NamedTensors& out, bool params, bool buffers) const;

  NamedTensors params_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, ModulePtr>> children_;
};

/// "a.b" + "c" -> "a.b.c"; "" + "c" -> "c".
std::string join_name(const std::string& prefix, const std::string& name);

/// {3, 1} -> "(3, 1)": kernel sizes, strides and paddings in extra_repr and error messages.
std::string pair_str(const std::array<int64_t, 2>& p);

}  // namespace pfq
