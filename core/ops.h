/// \file
/// ops.h — every differentiable operation of pfq: the one page to read first.
/// Each op checks its arguments (clear errors naming op, shapes, devices), dispatches to the
/// device's kernel (core/cpu, core/cuda) and records a backward closure (autograd.h).
/// Layout is NCHW row-major. Broadcasting follows NumPy rules. Axes may be negative.
#pragma once
#include <array>
#include <vector>

#include "core/autograd.h"
#include "core/tensor.h"

namespace pfq {

// ---------------- element-wise, with broadcasting ----------------
/// a + b, broadcasting.
Tensor add(const Tensor& a, const Tensor& b);
/// a - b, broadcasting.
Tensor sub(const Tensor& a, const Tensor& b);
/// a * b, broadcasting.
Tensor mul(const Tensor& a, const Tensor& b);
/// a / b, broadcasting.
Tensor div(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);  ///< gradient to the larger (a on ties)
Tensor minimum(const Tensor& a, const Tensor& b);  ///< gradient to the smaller (a on ties)
/// a + b for a scalar b.
Tensor add(const Tensor& a, double b);
/// a * b for a scalar b.
Tensor mul(const Tensor& a, double b);
Tensor rsub(double a, const Tensor& b);  ///< a - b
Tensor rdiv(double a, const Tensor& b);  ///< a / b
/// add(a, b).
Tensor operator+(const Tensor& a, const Tensor& b);
/// sub(a, b).
Tensor operator-(const Tensor& a, const Tensor& b);
/// mul(a, b).
Tensor operator*(const Tensor& a, const Tensor& b);
/// div(a, b).
Tensor operator/(const Tensor& a, const Tensor& b);
/// add(a, b).
Tensor operator+(const Tensor& a, double b);
/// add(a, -b).
Tensor operator-(const Tensor& a, double b);
/// mul(a, b).
Tensor operator*(const Tensor& a, double b);
/// mul(a, 1 / b).
Tensor operator/(const Tensor& a, double b);
/// mul(b, a).
Tensor operator*(double a, const Tensor& b);
/// neg(a).
Tensor operator-(const Tensor& a);

// ---------------- element-wise unary ----------------
/// -x.
Tensor neg(const Tensor& x);
/// e^x.
Tensor exp(const Tensor& x);
/// Natural logarithm.
Tensor log(const Tensor& x);
/// Square root.
Tensor sqrt(const Tensor& x);
/// x * x.
Tensor square(const Tensor& x);
/// x^exponent.
Tensor pow(const Tensor& x, double exponent);
Tensor abs(const Tensor& x);       ///< gradient sign(x), 0 at 0
Tensor relu(const Tensor& x);      ///< gradient 1 where x > 0
Tensor relu6(const Tensor& x);     ///< gradient 1 where 0 < x < 6
/// relu(add(a, b)) with the values and gradients of the two ops, in one pass over memory (a
/// residual block's tail). Requires a and b of one shape, float32 or float64.
Tensor add_relu(const Tensor& a, const Tensor& b);
/// 1 / (1 + e^-x).
Tensor sigmoid(const Tensor& x);
/// Hyperbolic tangent.
Tensor tanh(const Tensor& x);
Tensor clamp(const Tensor& x, double lo, double hi);  ///< gradient 1 where lo <= x <= hi
/// Straight-through variants used by quantizers (forward as named, backward identity):
Tensor round(const Tensor& x);      ///< round half to even; gradient 0 (true derivative a.e.)
Tensor round_ste(const Tensor& x);  ///< round half to even; gradient passed through unchanged
Tensor sign(const Tensor& x);       ///< -1, 0, +1; gradient 0
Tensor sign_ste(const Tensor& x);   ///< sign with x == 0 -> +1 (binary weights); gradient 1 where |x| <= 1

// ---------------- reductions (axes empty = all) ----------------
/// Sum over `axes` (all when empty), keeping them as size 1 with keepdim.
Tensor sum(const Tensor& x, std::vector<int64_t> axes = {}, bool keepdim = false);
/// Mean over `axes` (all when empty).
Tensor mean(const Tensor& x, std::vector<int64_t> axes = {}, bool keepdim = false);
Tensor max(const Tensor& x, std::vector<int64_t> axes = {}, bool keepdim = false);  ///< gradient to the first maximum
/// Minimum over `axes`; gradient to the first minimum.
Tensor min(const Tensor& x, std::vector<int64_t> axes = {}, bool keepdim = false);
/// Variance over `axes` (unbiased: divides by n - 1).
Tensor var(const Tensor& x, std::vector<int64_t> axes = {}, bool unbiased = true, bool keepdim = false);
/// Reduces `x` by summation to `shape` (the inverse of broadcasting `shape` to x.shape()).
Tensor sum_to(const Tensor& x, const Shape& shape);
Tensor argmax(const Tensor& x, int64_t axis);  ///< int64, no gradient

// ---------------- shape and views ----------------
Tensor reshape(const Tensor& x, Shape shape);  ///< one dimension may be -1; a view when possible
/// Merges dimensions start_dim.. into one.
Tensor flatten(const Tensor& x, int64_t start_dim = 1);
/// Reorders the dimensions (a view).
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims);
/// Swaps two dimensions (a view).
Tensor transpose(const Tensor& x, int64_t d0, int64_t d1);
/// Elements start, start + step, ... < end along `dim` (a view).
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
/// Inserts a dimension of size 1 at `dim`.
Tensor unsqueeze(const Tensor& x, int64_t dim);
/// Removes dimension `dim`, which must have size 1.
Tensor squeeze(const Tensor& x, int64_t dim);
/// Joins tensors along `dim` (other dimensions equal).
Tensor concat(const std::vector<Tensor>& xs, int64_t dim);
Tensor expand(const Tensor& x, const Shape& shape);  ///< broadcast view (stride 0)
/// Picks `index` entries along `dim` (no gradient w.r.t. index). Used by pruning surgery.
Tensor index_select(const Tensor& x, int64_t dim, const std::vector<int64_t>& index);

// ---------------- linear algebra ----------------
/// a [.., M, K] @ b [K, N] or [.., K, N] with matching batch dims -> [.., M, N]
Tensor matmul(const Tensor& a, const Tensor& b);
/// x [N, IN], weight [OUT, IN], bias [OUT] or undefined -> [N, OUT]
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);

// ---------------- convolution ----------------
/// Stride, padding, dilation (per H, W) and groups of a 2-d convolution.
struct Conv2dOptions {
  /// Step of the kernel over H and W.
  std::array<int64_t, 2> stride{1, 1};
  /// Zero padding on each side of H and W.
  std::array<int64_t, 2> padding{0, 0};
  /// Spacing between kernel taps.
  std::array<int64_t, 2> dilation{1, 1};
  /// Channel groups (C and OC divisible by it; C for depthwise).
  int64_t groups = 1;
};
/// x [N, C, H, W], weight [OC, C/groups, KH, KW], bias [OC] or undefined -> [N, OC, OH, OW]
/// groups == C == OC uses the dedicated depthwise kernel. On the CPU in float32 with the nhwc
/// activation layout (core/cpu/conv_backend.h) the output, and x's gradient, are channels-last
/// (core/layout.h).
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& opt = {});
/// Output size along one dimension: floor((in + 2 pad - dilation (k - 1) - 1) / stride) + 1.
int64_t conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dilation);

// ---------------- normalisation ----------------
/// An activation batch_norm() can apply in the same pass.
enum class BnAct { None, ReLU, ReLU6 };
/// x [N, C, H, W] or [N, C]; weight/bias [C] (may be undefined: no affine);
/// running_mean/running_var [C] buffers (may be undefined in training: no tracking).
/// training: normalise with batch statistics (biased variance) and, when buffers are given,
/// update them in place: r = (1 - momentum) * r + momentum * batch (unbiased variance for var).
/// eval: normalise with the running statistics.
/// act: an activation applied to the output in the same pass (forward, and backward from the
/// output), equal to relu(batch_norm(...)) / relu6(...) and their gradients.
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum, double eps, BnAct act = BnAct::None);

// ---------------- pooling ----------------
/// x [N, C, H, W] -> [N, C, OH, OW]
Tensor max_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride,
                  std::array<int64_t, 2> padding = {0, 0});
/// Average pooling; count_include_pad counts the padding in the divisor.
Tensor avg_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride,
                  std::array<int64_t, 2> padding = {0, 0}, bool count_include_pad = true);
/// PyTorch's adaptive average pooling bins: start = floor(i*H/OH), end = ceil((i+1)*H/OH).
Tensor adaptive_avg_pool2d(const Tensor& x, std::array<int64_t, 2> output_size);

// ---------------- regularisation, classification ----------------
/// Zeroes each element with probability p and scales survivors by 1/(1-p) when training.
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen);
/// Softmax along `dim`.
Tensor softmax(const Tensor& x, int64_t dim = -1);
/// log(softmax(x)) along `dim`, computed stably.
Tensor log_softmax(const Tensor& x, int64_t dim = -1);
/// logits [N, K], targets int64 [N] in [0, K); mean over the batch of
/// -(1 - s) * log p[target] - s/K * sum_k log p[k]  (s = label_smoothing).
/// targets_host: optional, a CPU copy of targets on the GPU (the same values), used for the range
/// check instead of copying them back, which would make the host wait for the device mid-step.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, double label_smoothing = 0, const Tensor& targets_host = Tensor());

}  // namespace pfq
