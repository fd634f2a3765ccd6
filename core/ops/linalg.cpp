// linalg.cpp — matmul (2-D and batched) and linear, on the CPU GEMM of core/cpu/gemm.h or
// cuBLAS (core/cuda/gemm.cpp) for CUDA tensors; one body and one backward closure for both.
#include "core/cpu/kernels.h"
#include "core/cuda/kernels.h"
#include "core/ops.h"
#include "core/profiler.h"
#include "core/ops/op_util.h"

namespace pfq {
namespace {

// Plain (no autograd) batched product out [batch, M, N] = op(a) @ op(b), op(X) = X or X^T:
// a [batch, M, K] ([batch, K, M] when ta), b [batch or 1 (shared), K, N] ([.., N, K] when tb),
// contiguous; M, N, K from the shapes.
Tensor bmm_raw(const Tensor& a, bool ta, const Tensor& b, bool tb) {
  const int64_t batch = a.shape()[0];
  const int64_t M = ta ? a.size(2) : a.size(1), N = tb ? b.size(1) : b.size(2);
  Tensor out = Tensor::empty({batch, M, N}, a.dtype(), a.device());
  if (a.device().is_cuda()) cuda::bmm(a, ta, b, tb, out);  // one strided-batched cuBLAS call (shared b: stride 0)
  else cpu::bmm(a, ta, b, tb, out);
  return out;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  PFQ_PROFILE("matmul");
  check_same_device_dtype(a, b, "matmul");
  PFQ_CHECK(a.dim() >= 2 && (b.dim() == 2 || b.dim() == a.dim()), "matmul: expected a [.., M, K] and b [K, N] or [.., K, N], got ",
            shape_str(a.shape()), " and ", shape_str(b.shape()));
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  PFQ_CHECK(b.size(-2) == K, "matmul: inner dimensions differ: ", shape_str(a.shape()), " @ ", shape_str(b.shape()));
  Shape batch_shape(a.shape().begin(), a.shape().end() - 2);
  if (b.dim() > 2) PFQ_CHECK(Shape(b.shape().begin(), b.shape().end() - 2) == batch_shape, "matmul: batch dimensions differ: ",
                             shape_str(a.shape()), " @ ", shape_str(b.shape()));
  const int64_t B = shape_numel(batch_shape);
  // CUDA folds the batch into M when b is shared (one GEMM, and dB needs no batch sum) and reads
  // a 2-D b stored transposed (linear's weight^T) in place; the CPU runs one GEMM per batch entry.
  const bool fold = a.device().is_cuda() && b.dim() == 2;
  // b_t: b is the transpose of a contiguous [N, K] buffer, used as is (op(B) = B^T).
  const bool b_t = fold && b.strides()[0] == 1 && b.strides()[1] == K && K > 1 && N > 1;
  const int64_t bm = fold ? B * M : M, bb = fold ? 1 : B;  // rows per product, products
  const int64_t b_batch = b.dim() == 2 ? 1 : B;            // b's products (1: shared)
  Tensor a3 = a.detach().contiguous();
  Tensor b3 = b_t ? b.detach() : b.detach().contiguous();
  a3 = make_view(a3, {bb, bm, K}, contiguous_strides({bb, bm, K}), a3.offset());
  b3 = b_t ? make_view(b3, {1, N, K}, contiguous_strides({1, N, K}), b3.offset())
           : make_view(b3, {b_batch, K, N}, contiguous_strides({b_batch, K, N}), b3.offset());
  Tensor out = bmm_raw(a3, false, b3, b_t);
  Shape out_shape = batch_shape;
  out_shape.push_back(M);
  out_shape.push_back(N);
  out = make_view(out, out_shape, contiguous_strides(out_shape), 0);
  const bool na = a.requires_grad(), nb = b.requires_grad();
  const Shape ashape = a.shape(), bshape = b.shape();
  return record("matmul", out, {a, b}, [=](const Tensor& g) {
    Tensor g3 = g.contiguous();
    g3 = make_view(g3, {bb, bm, N}, contiguous_strides({bb, bm, N}), g3.offset());
    Tensor ga, gb;
    if (na) {  // dA = dC B^T
      Tensor r = bmm_raw(g3, false, b3, !b_t);
      ga = make_view(r, ashape, contiguous_strides(ashape), 0);
    }
    if (nb) {  // dB = A^T dC, summed over the batch when b is shared and the batch was not folded
      Tensor r = bmm_raw(a3, true, g3, false);
      if (bshape.size() == 2 && !fold) gb = reshape(sum(r, {0}), bshape);
      else gb = make_view(r, bshape, contiguous_strides(bshape), 0);
    }
    return std::vector<Tensor>{ga, gb};
  });
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  PFQ_PROFILE("linear");
  check_same_device_dtype(x, weight, "linear");
  PFQ_CHECK(x.dim() == 2 && weight.dim() == 2 && x.size(1) == weight.size(1), "linear: expected x [N, IN] and weight [OUT, IN], got ",
            shape_str(x.shape()), " and ", shape_str(weight.shape()));
  if (bias.defined())
    PFQ_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), "linear: bias ", shape_str(bias.shape()), " does not match ",
              weight.size(0), " outputs");
  Tensor y = matmul(x, transpose(weight, 0, 1));
  return bias.defined() ? add(y, bias) : y;
}

}  // namespace pfq
