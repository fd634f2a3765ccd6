// op_util.h — argument checks and small helpers shared by the op implementations (core/ops/).
#pragma once
#include "core/tensor.h"

namespace pfq {

inline void require_cpu(const Tensor& t, const char* op) {
  PFQ_CHECK(t.device().is_cpu(), op, ": no ", t.device().str(), " kernel yet for ", t.describe(),
            " (the CUDA backend is its own issue); move the tensor with .to(Device::cpu())");
}

inline void check_same_device_dtype(const Tensor& a, const Tensor& b, const char* op) {
  PFQ_CHECK(a.device() == b.device(), op, ": tensors on different devices: ", a.describe(), " and ", b.describe());
  PFQ_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch: ", a.describe(), " and ", b.describe());
}

inline int64_t normalize_axis(int64_t axis, int64_t ndim, const char* op) {
  int64_t a = axis < 0 ? axis + ndim : axis;
  PFQ_CHECK(a >= 0 && a < ndim, op, ": axis ", axis, " out of range for a tensor with ", ndim, " dimensions");
  return a;
}

// The one-input list that backward functions of single-input ops return.
inline std::vector<Tensor> one(Tensor a) { return {std::move(a)}; }

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// A stride-0 view of x broadcast to `shape` (no autograd).
Tensor expand_view(const Tensor& x, const Shape& shape);

}  // namespace pfq
