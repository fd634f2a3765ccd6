// tensor.h — the n-dimensional array of pfq: shape, strides, dtype, device, shared storage.
// Tensor is a shallow-copy handle (copying it shares data); clone() copies data. Views
// (reshape/permute/slice in ops.h) share storage with their base. Autograd state lives in
// the TensorImpl (requires_grad, grad, grad_fn); see autograd.h.
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

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);
Shape contiguous_strides(const Shape& s);

struct Node;  // autograd.h

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  Shape strides;       // in elements
  DType dtype = DType::Float32;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;
  std::shared_ptr<Node> grad_fn;  // set on outputs of differentiable ops
  int output_nr = 0;              // which output of grad_fn this tensor is
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- creation ----
  static Tensor empty(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::Float32, Device device = Device::cpu());
  static Tensor scalar(double value, DType dtype = DType::Float32);
  static Tensor arange(int64_t n, DType dtype = DType::Float32);
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape);
  // Seeded random fills (CPU, sequential so results do not depend on thread count).
  static Tensor rand(const Shape& shape, Generator& g, double lo = 0, double hi = 1, DType dtype = DType::Float32);
  static Tensor randn(const Shape& shape, Generator& g, double mean = 0, double std = 1, DType dtype = DType::Float32);
  static Tensor bernoulli(const Shape& shape, double p, Generator& g, DType dtype = DType::Float32);

  // ---- metadata ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  int64_t offset() const { return impl().offset; }
  int64_t dim() const { return static_cast<int64_t>(impl().shape.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return shape_numel(impl().shape); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device(); }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }

  // ---- data access (CPU; pointer at the tensor's first element) ----
  template <typename T> T* data() const;
  void* raw_data() const;
  double item() const;  // one-element tensor -> double
  template <typename T> std::vector<T> to_vector() const;  // contiguous copy, dtype must match

  // ---- copies and conversions (no autograd unless stated) ----
  Tensor contiguous() const;  // self if already contiguous, else a copy (differentiable)
  Tensor clone() const;       // always a copy (differentiable)
  Tensor to(Device device) const;
  Tensor to(DType dtype) const;  // differentiable between float types
  Tensor detach() const;      // shares storage, no autograd history

  // ---- in-place, outside autograd (optimizers, initialisers, buffers) ----
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0); }
  Tensor& copy_(const Tensor& src);  // same shape; any device/dtype pair
  Tensor& add_(const Tensor& other, double alpha = 1);
  Tensor& mul_(double factor);

  // ---- autograd ----
  bool requires_grad() const { return impl().requires_grad; }
  Tensor& set_requires_grad(bool r);
  Tensor grad() const { return Tensor(impl().grad); }
  void set_grad(const Tensor& g) { impl().grad = g.impl_; }
  // Backpropagates from this tensor. `seed` defaults to 1 for one-element tensors; any other
  // shape must pass a seed of its own shape.
  void backward(const Tensor& seed = Tensor()) const;
  bool is_leaf() const { return impl().grad_fn == nullptr; }

  std::string str(int64_t max_elems = 16) const;
  std::string describe() const;  // "float32[2, 3] cpu"
  TensorImpl& impl() const {
    PFQ_CHECK(impl_, "use of an undefined tensor");
    return *impl_;
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// A view of `base`'s storage with new geometry (no autograd); used by view ops and kernels.
Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset);

template <typename T>
T* Tensor::data() const {
  PFQ_CHECK(DTypeOf<T>::value == dtype(), "data<", dtype_name(DTypeOf<T>::value), ">() on a ", dtype_name(dtype()), " tensor");
  return static_cast<T*>(storage()->data()) + offset();
}

}  // namespace pfq
