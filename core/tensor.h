/// \file
/// tensor.h — the n-dimensional array of pfq: shape, strides, dtype, device, shared storage.
/// Tensor is a shallow-copy handle (copying it shares data); clone() copies data. Views
/// (reshape/permute/slice in ops.h) share storage with their base. Autograd state lives in
/// the TensorImpl (requires_grad, grad, grad_fn); see autograd.h.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/random.h"

namespace pfq {

/// A tensor's shape: one size per dimension, outermost first.
using Shape = std::vector<int64_t>;
/// "[2, 3, 4]": a shape as error messages print it.
std::string shape_str(const Shape& s);
/// Number of elements of a shape (1 for the empty shape of a 0-d tensor).
int64_t shape_numel(const Shape& s);
/// Row-major strides (in elements) of a contiguous tensor of shape `s`.
Shape contiguous_strides(const Shape& s);

struct Node;  // autograd.h

/// The shared state behind Tensor handles: storage, view geometry, dtype and autograd fields.
struct TensorImpl {
  /// The buffer this tensor views (shared between views).
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  ///< in elements
  /// Size per dimension.
  Shape shape;
  Shape strides;       ///< in elements
  /// Element type.
  DType dtype = DType::Float32;
  /// Whether operations on this tensor are recorded for backward.
  bool requires_grad = false;
  /// Accumulated gradient of a leaf (undefined until backward reaches it).
  std::shared_ptr<TensorImpl> grad;
  std::shared_ptr<Node> grad_fn;  ///< set on outputs of differentiable ops
  int output_nr = 0;              ///< which output of grad_fn this tensor is
};

/// An n-dimensional array on a device; a shallow-copy handle to a TensorImpl (copies share data).
class Tensor {
 public:
  Tensor() = default;
  /// Wraps an existing implementation (ops use this to build outputs).
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- creation ----
  /// Uninitialised tensor of `shape` (contents undefined).
  static Tensor empty(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
  /// Tensor of zeros.
  static Tensor zeros(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
  /// Tensor of ones.
  static Tensor ones(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
  /// Tensor filled with `value`.
  static Tensor full(const Shape& shape, double value, DType dtype = DType::Float32, Device device = Device::cpu());
  /// 0-d (one-element) tensor holding `value`, on the CPU.
  static Tensor scalar(double value, DType dtype = DType::Float32);
  /// 1-d tensor 0, 1, ..., n - 1 on the CPU.
  static Tensor arange(int64_t n, DType dtype = DType::Float32);
  template <typename T>
  /// CPU tensor of `shape` holding `values` (row-major; sizes must match), dtype from T.
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape);
  /// Seeded random fills (CPU, sequential so results do not depend on thread count).
  static Tensor rand(const Shape& shape, Generator& g, double lo = 0, double hi = 1, DType dtype = DType::Float32);
  /// Normal fill with the given mean and standard deviation (CPU).
  static Tensor randn(const Shape& shape, Generator& g, double mean = 0, double std = 1, DType dtype = DType::Float32);
  /// Fill of ones with probability `p`, zeros otherwise (CPU).
  static Tensor bernoulli(const Shape& shape, double p, Generator& g, DType dtype = DType::Float32);

  // ---- metadata ----
  /// False for a default-constructed handle that holds no tensor.
  bool defined() const { return impl_ != nullptr; }
  /// Size per dimension.
  const Shape& shape() const { return impl().shape; }
  /// Stride per dimension, in elements.
  const Shape& strides() const { return impl().strides; }
  /// Offset of the first element into the storage, in elements.
  int64_t offset() const { return impl().offset; }
  /// Number of dimensions.
  int64_t dim() const { return static_cast<int64_t>(impl().shape.size()); }
  int64_t size(int64_t d) const;  ///< negative d counts from the end
  /// Number of elements.
  int64_t numel() const { return shape_numel(impl().shape); }
  /// Element type.
  DType dtype() const { return impl().dtype; }
  /// Device of the storage.
  Device device() const { return impl().storage->device(); }
  /// True when the strides are the row-major strides of the shape (no gaps, no permutation).
  bool is_contiguous() const;
  /// The underlying buffer (shared with every view of it).
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }

  // ---- data access (CPU; pointer at the tensor's first element) ----
  /// Typed pointer at the first element (CPU tensors; T must match the dtype).
  template <typename T> T* data() const;
  /// Untyped pointer at the first element.
  void* raw_data() const;
  double item() const;  ///< one-element tensor -> double
  template <typename T> std::vector<T> to_vector() const;  ///< contiguous copy, dtype must match

  // ---- copies and conversions (no autograd unless stated) ----
  Tensor contiguous() const;  ///< self if already contiguous, else a copy (differentiable)
  Tensor clone() const;       ///< always a copy (differentiable)
  /// Copy on another device (the same tensor when already there).
  Tensor to(Device device) const;
  Tensor to(DType dtype) const;  ///< differentiable between float types
  Tensor detach() const;      ///< shares storage, no autograd history

  // ---- in-place, outside autograd (optimizers, initialisers, buffers) ----
  /// Sets every element to `value`, in place.
  Tensor& fill_(double value);
  /// Sets every element to 0, in place.
  Tensor& zero_() { return fill_(0); }
  Tensor& copy_(const Tensor& src);  ///< same shape; any device/dtype pair
  /// this += alpha * other, in place (same shape).
  Tensor& add_(const Tensor& other, double alpha = 1);
  /// this *= factor, in place.
  Tensor& mul_(double factor);

  // ---- autograd ----
  /// Whether operations on this tensor are recorded for backward.
  bool requires_grad() const { return impl().requires_grad; }
  /// Marks a leaf as a parameter whose gradient backward accumulates.
  Tensor& set_requires_grad(bool r);
  /// The accumulated gradient (undefined before the first backward).
  Tensor grad() const { return Tensor(impl().grad); }
  /// Replaces the accumulated gradient (optimizers, gradient clipping).
  void set_grad(const Tensor& g) { impl().grad = g.impl_; }
  /// Backpropagates from this tensor. `seed` defaults to 1 for one-element tensors; any other
  /// shape must pass a seed of its own shape.
  void backward(const Tensor& seed = Tensor()) const;
  /// True for a tensor no recorded op produced (parameters, inputs).
  bool is_leaf() const { return impl().grad_fn == nullptr; }

  /// Values as text, at most `max_elems` of them, for debugging.
  std::string str(int64_t max_elems = 16) const;
  std::string describe() const;  ///< "float32[2, 3] cpu"
  /// The implementation; throws pfq::Error for an undefined tensor.
  TensorImpl& impl() const {
    PFQ_CHECK(impl_, "use of an undefined tensor");
    return *impl_;
  }
  /// The shared implementation pointer (undefined handle: null).
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  /// True when both handles refer to the same tensor (not merely equal values).
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

/// A view of `base`'s storage with new geometry (no autograd); used by view ops and kernels.
Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset);

template <typename T>
T* Tensor::data() const {
  PFQ_CHECK(DTypeOf<T>::value == dtype(), "data<", dtype_name(DTypeOf<T>::value), ">() on a ", dtype_name(dtype()), " tensor");
  return static_cast<T*>(storage()->data()) + offset();
}

}  // namespace pfq
