// kernel_list.h — the one list of the CUDA backend's entry points: every function the CUDA build
// implements (core/cuda/*.cu, *.cpp) and code outside core/cuda may call, with its contract.
// core/cuda/kernels.h expands it into declarations (namespace pfq::cuda), core/cuda/no_cuda.cpp
// into the stubs of a build without CUDA. No include guard, no CUDA headers. Leaves out
// core/cuda's internals (depthwise.h, handles.h, the .cuh launch helpers).

// Each entry is one of (the includer defines all three):
//   PFQ_CUDA_RUNTIME(RET, NAME, PARAMS)   device plumbing; without CUDA throws "built without CUDA"
//   PFQ_CUDA_KERNEL(RET, NAME, PARAMS)    a kernel; without CUDA throws naming it
//   PFQ_CUDA_QUERY(RET, NAME, PARAMS, NO_CUDA)   a question with an answer without CUDA: NO_CUDA
// One signature style: the kernels take Tensors (on one CUDA device, float32 or float64 unless
// stated; the dtype and device are the tensors'), with each argument's shape in a comment
// (N, C, H, W, OC, KH, KW, OH, OW as in core/geometry.h); only the device plumbing takes raw
// memory. Row-major, contiguous unless stated. Work is queued on the device's compute stream;
// nothing here synchronises with the host unless it says so. See docs/cuda-backend.md.

// ---- devices, memory, copies (cuda_runtime.cu; the public face is core/device.h) ---------------
PFQ_CUDA_QUERY(int, device_count, (), 0)  // 0 also when no GPU or driver is present
PFQ_CUDA_QUERY(std::vector<GpuInfo>, list_devices, (), {})
// Throws pfq::Error unless `index` names a usable GPU.
PFQ_CUDA_RUNTIME(void, require_device, (int index))
// From the caching device allocator: device memory of at least nbytes, and back.
PFQ_CUDA_RUNTIME(void*, device_alloc, (size_t nbytes, int index))
PFQ_CUDA_QUERY(void, device_free, (void* ptr /* [nbytes] bytes from device_alloc */, size_t nbytes, int index), void())
PFQ_CUDA_RUNTIME(void, copy_host_to_device, (void* dst /* device [nbytes] */, const void* src /* host [nbytes] */, size_t nbytes, int index))
PFQ_CUDA_RUNTIME(void, copy_device_to_host, (void* dst /* host [nbytes] */, const void* src /* device [nbytes] */, size_t nbytes, int index))
PFQ_CUDA_RUNTIME(void, copy_device_to_device,
                 (void* dst /* device [nbytes] */, const void* src /* device [nbytes] */, size_t nbytes, int index))
PFQ_CUDA_RUNTIME(void, synchronize, (int index))
// core/device.h's device_time_ms on GPU `index`.
PFQ_CUDA_RUNTIME(double, device_time_ms, (int index, const std::function<void()>& enqueue, double spin_ms, double* host_ms))
// core/device.h's PinnedUploader: an uploader's state (a stream, events and a ring of pinned
// staging buffers) for GPU `index`, its uploads and the page-locked bytes it holds.
PFQ_CUDA_RUNTIME(void*, pinned_uploader_new, (int index))
PFQ_CUDA_QUERY(void, pinned_uploader_delete, (void* uploader), void())  // waits for its copies in flight
PFQ_CUDA_RUNTIME(void, pinned_upload,
                 (void* uploader, void* dst /* device [nbytes] */, const void* src /* host [nbytes] */, size_t nbytes))
PFQ_CUDA_QUERY(size_t, pinned_bytes, (const void* uploader), 0)
// The first kernels: contiguous float32 dst = value, out = a + b, out = a * b (the device tests).
PFQ_CUDA_RUNTIME(void, fill_f32, (float* dst /* [n] */, float value, size_t n, int index))
PFQ_CUDA_RUNTIME(void, add_f32, (const float* a /* [n] */, const float* b /* [n] */, float* out /* [n] */, size_t n, int index))
PFQ_CUDA_RUNTIME(void, mul_f32, (const float* a /* [n] */, const float* b /* [n] */, float* out /* [n] */, size_t n, int index))

// ---- element-wise: the strided engine (elementwise.cu; any strides, stride 0 = broadcast, <= 8 dims after merging) ----
// The functors of core/functors.h with a CUDA instantiation (PFQ_CUDA_*_FUNCTORS in kernels.h):
// the op files pass the same functor object to the CPU loop or to these, so the math is written once.
// out = f(x): float32/float64 of one dtype; out may alias x (same layout).
#define PFQ_CUDA_MAP_UNARY(F) PFQ_CUDA_KERNEL(void, map_unary, (const Tensor& x /* any shape */, const Tensor& out /* x's shape */, fn::F f))
PFQ_CUDA_UNARY_FUNCTORS(PFQ_CUDA_MAP_UNARY)
#undef PFQ_CUDA_MAP_UNARY
// out = f(a, b): a and b already broadcast to out's shape (expand_view); one dtype; out may alias a.
#define PFQ_CUDA_MAP_BINARY(F)                                                                                    \
  PFQ_CUDA_KERNEL(void, map_binary,                                                                               \
                  (const Tensor& a /* out's shape */, const Tensor& b /* out's shape */, const Tensor& out /* any shape */, \
                   fn::F f))
PFQ_CUDA_BINARY_FUNCTORS(PFQ_CUDA_MAP_BINARY)
PFQ_CUDA_BINARY_FLOAT_FUNCTORS(PFQ_CUDA_MAP_BINARY)
#undef PFQ_CUDA_MAP_BINARY

// ---- copies and fills (copy.cu) -----------------------------------------------------------
// dst = src converted to dst's dtype (static_cast, as the CPU copy): same CUDA device, any dtypes
// and strides on either side.
PFQ_CUDA_KERNEL(void, copy, (const Tensor& src /* any shape */, const Tensor& dst /* src's shape */))
// Every element of dst = static_cast<T>(value).
PFQ_CUDA_KERNEL(void, fill, (const Tensor& dst /* any shape, dtype and strides */, double value))

// ---- reductions over rows, float32/float64, contiguous (reduce.cu) -------------------------
// Deterministic: fixed chunking and a fixed combining tree, no atomics; sums accumulate in double.
PFQ_CUDA_KERNEL(void, sum_rows, (const Tensor& x /* [outer, inner] */, const Tensor& out /* [outer] */, int64_t outer, int64_t inner))
// Row maximum (is_max) or minimum and the index of its first occurrence (inner > 0).
PFQ_CUDA_KERNEL(void, extreme_rows,
                (const Tensor& x /* [outer, inner] */, int64_t outer, int64_t inner, bool is_max,
                 const Tensor& values /* [outer] of x's dtype, or undefined */, const Tensor& indices /* int64 [outer], or undefined */))
// flat[o * inner + index[o]] = g[o] (max/min backward).
PFQ_CUDA_KERNEL(void, scatter_rows,
                (const Tensor& g /* [outer] */, const Tensor& index /* int64 [outer] */,
                 const Tensor& flat /* [outer * inner], pre-zeroed */, int64_t outer, int64_t inner))

// ---- softmax family: rows of the last axis, contiguous (loss.cu) ---------------------------
// out = x - max - log(sum exp(x - max)) per row (sum in double).
PFQ_CUDA_KERNEL(void, log_softmax_rows, (const Tensor& x /* [R, K] */, const Tensor& out /* [R, K] */, int64_t R, int64_t K))
// Targets validated by the caller: logp and loss = mean_i (-(1 - s) logp[i, t_i] - s/K sum_k logp[i, k]).
PFQ_CUDA_KERNEL(void, cross_entropy_forward,
                (const Tensor& logits /* [N, K] */, const Tensor& targets /* int64 [N], on the device */, double smoothing,
                 const Tensor& logp /* [N, K], written */, const Tensor& loss /* [], written */))
// dx = g / N * (exp(logp) - ((k == t_i) (1 - s) + s / K)); g is read by the kernel (no host round trip).
PFQ_CUDA_KERNEL(void, cross_entropy_backward,
                (const Tensor& logp /* [N, K] */, const Tensor& targets /* int64 [N] */, double smoothing,
                 const Tensor& g /* [], the upstream gradient on the device */, const Tensor& dx /* [N, K], written */))

// ---- optimizer updates: contiguous, one dtype, in the CPU kernels' operation order (optim.cu) ----
// See core/optim/sgd.h for the formula.
PFQ_CUDA_KERNEL(void, sgd_update,
                (const Tensor& param /* [numel] */, const Tensor& grad /* [numel] */,
                 const Tensor& buf /* [numel], undefined without momentum */, bool first, double weight_decay, double momentum,
                 double dampening, bool nesterov, double lr))
// See core/optim/adam.h; shrink = 1 - lr * wd (AdamW) or 1, l2 = wd (Adam) or 0.
PFQ_CUDA_KERNEL(void, adam_update,
                (const Tensor& param /* [numel] */, const Tensor& grad /* [numel] */, const Tensor& exp_avg /* [numel] */,
                 const Tensor& exp_avg_sq /* [numel] */, double shrink, double l2, double beta1, double beta2, double eps,
                 double bias_correction2_sqrt, double step_size))

// ---- GEMM (cuBLAS, gemm.cpp) --------------------------------------------------------------
// out[i] = op(a[i]) @ op(b[i]) for each of the `batch` products, op(X) = X or X^T; M, N, K from
// the shapes; all three contiguous, one dtype. float32 runs in full float32 precision (no TF32)
// unless backend_options().allow_tf32.
PFQ_CUDA_KERNEL(void, bmm,
                (const Tensor& a /* [batch, M, K], or [batch, K, M] when trans_a */, bool trans_a,
                 const Tensor& b /* [batch or 1 (shared), K, N], or [.., N, K] when trans_b */, bool trans_b,
                 const Tensor& out /* [batch, M, N], overwritten */))

// ---- convolution (cuDNN, or pfq's depthwise kernels; conv.cpp) ------------------------------
// Stride, padding, dilation and groups from g (core/geometry.h); the dtype and device are x's or
// dy's; all contiguous NCHW. The algorithm is chosen once per shape (cudnnFind*: measured, like
// PyTorch's cudnn.benchmark) and cached; the workspace comes from the caching device allocator.
PFQ_CUDA_KERNEL(void, conv2d_forward,
                (const ConvGeom& g, const Tensor& x /* [N, C, H, W] */, const Tensor& w /* [OC, C/groups, KH, KW] */,
                 const Tensor& b /* [OC] or undefined */, const Tensor& y /* [N, OC, OH, OW], overwritten */))
// dx = conv_transpose(dy, w)
PFQ_CUDA_KERNEL(void, conv2d_backward_input,
                (const ConvGeom& g, const Tensor& dy /* [N, OC, OH, OW] */, const Tensor& w /* [OC, C/groups, KH, KW] */,
                 const Tensor& dx /* [N, C, H, W], overwritten */))
PFQ_CUDA_KERNEL(void, conv2d_backward_weight,
                (const ConvGeom& g, const Tensor& dy /* [N, OC, OH, OW] */, const Tensor& x /* [N, C, H, W] */,
                 const Tensor& dw /* [OC, C/groups, KH, KW], overwritten */))
// db = sum of dy over N, OH, OW
PFQ_CUDA_KERNEL(void, conv2d_backward_bias,
                (const ConvGeom& g, const Tensor& dy /* [N, OC, OH, OW] */, const Tensor& db /* [OC], overwritten */))
// Number of distinct convolution shapes whose algorithms are cached (tests, benchmarks).
PFQ_CUDA_QUERY(int64_t, conv_algo_cache_size, (), 0)

// ---- batch normalisation (cuDNN, spatial mode; batchnorm.cpp) ------------------------------
// x is [N, C] or [N, C, H, W] (S = H*W values per sample and channel), contiguous; the statistics
// and parameters are [C] of x's dtype, gamma and beta always given (ones and zeros for no affine).
// Training writes the batch mean and 1/sqrt(var + eps) (save_mean, save_invstd) and, when given,
// updates the running statistics: r = (1 - momentum) * r + momentum * batch, with the unbiased
// batch variance for var (exactly pfq's CPU convention and cuDNN's exponentialAverageFactor).
// eps >= batch_norm_min_eps().
PFQ_CUDA_KERNEL(void, batch_norm_train_forward,
                (const Tensor& x /* [N, C, ...] */, const Tensor& gamma /* [C] */, const Tensor& beta /* [C] */, double momentum,
                 double eps, const Tensor& running_mean /* [C] or undefined (with running_var) */,
                 const Tensor& running_var /* [C] or undefined */, const Tensor& y /* x's shape, overwritten */,
                 const Tensor& save_mean /* [C], overwritten */, const Tensor& save_invstd /* [C], overwritten */))
// Eval: y = (x - mean) / sqrt(var + eps) * gamma + beta with the given statistics.
PFQ_CUDA_KERNEL(void, batch_norm_infer_forward,
                (const Tensor& x /* [N, C, ...] */, const Tensor& gamma /* [C] */, const Tensor& beta /* [C] */,
                 const Tensor& mean /* [C] */, const Tensor& var /* [C] */, double eps, const Tensor& y /* x's shape, overwritten */))
// Training-mode backward from the saved batch statistics (all three gradients written).
PFQ_CUDA_KERNEL(void, batch_norm_train_backward,
                (const Tensor& x /* [N, C, ...] */, const Tensor& dy /* x's shape */, const Tensor& gamma /* [C] */,
                 const Tensor& save_mean /* [C] */, const Tensor& save_invstd /* [C] */, double eps,
                 const Tensor& dx /* x's shape, overwritten */, const Tensor& dgamma /* [C], overwritten */,
                 const Tensor& dbeta /* [C], overwritten */))
// The smallest eps cuDNN accepts (CUDNN_BN_MIN_EPSILON).
PFQ_CUDA_QUERY(double, batch_norm_min_eps, (), 0)

// ---- batch normalisation in training, own kernels (batchnorm_own.cu) -----------------------
// The default for training (backend_options().cuda_bn; PFQ_CUDA_BN=cudnn chooses cuDNN's above):
// the same layouts, statistics and running-statistics convention as batch_norm_train_forward,
// with an activation fused: y = min(max(bn(x), lo), hi) (none: -inf, inf; ReLU: 0, inf; ReLU6:
// 0, 6). The backward gates dy by lo < y < hi with the forward's output y (undefined: no
// activation), as the CPU kernel does. Deterministic. For tensors under 2^31 elements.
PFQ_CUDA_QUERY(bool, batch_norm_own_fits, (int64_t N, int64_t C, int64_t S), false)
PFQ_CUDA_KERNEL(void, batch_norm_act_train_forward,
                (const Tensor& x /* [N, C, ...] */, const Tensor& gamma /* [C] */, const Tensor& beta /* [C] */, double momentum,
                 double eps, const Tensor& running_mean /* [C] or undefined (with running_var) */,
                 const Tensor& running_var /* [C] or undefined */, double lo, double hi, const Tensor& y /* x's shape, overwritten */,
                 const Tensor& save_mean /* [C], overwritten */, const Tensor& save_invstd /* [C], overwritten */))
PFQ_CUDA_KERNEL(void, batch_norm_act_train_backward,
                (const Tensor& x /* [N, C, ...] */, const Tensor& dy /* x's shape */,
                 const Tensor& y /* x's shape: the forward's output, or undefined without activation */, double lo, double hi,
                 const Tensor& gamma /* [C] */, const Tensor& save_mean /* [C] */, const Tensor& save_invstd /* [C] */,
                 const Tensor& dx /* x's shape or undefined, overwritten */, const Tensor& dgamma /* [C] or undefined, overwritten */,
                 const Tensor& dbeta /* [C] or undefined, overwritten */))

// ---- pooling: own kernels, gather-style backward, deterministic (pool.cu) --------------------
// Windows from g (planes = N * C maps of [H, W] -> [OH, OW]); contiguous, x's dtype. argmax holds
// the flat index h*W+w of the first maximum of each window (padding never wins), as on the CPU.
PFQ_CUDA_KERNEL(void, max_pool_forward,
                (const PoolGeom& g, const Tensor& x /* [N, C, H, W] */, const Tensor& y /* [N, C, OH, OW], overwritten */,
                 const Tensor& argmax /* int64 [N, C, OH, OW], overwritten */))
PFQ_CUDA_KERNEL(void, max_pool_backward,
                (const PoolGeom& g, const Tensor& dy /* [N, C, OH, OW] */, const Tensor& argmax /* int64 [N, C, OH, OW] */,
                 const Tensor& dx /* [N, C, H, W], overwritten */))
PFQ_CUDA_KERNEL(void, avg_pool_forward,
                (const PoolGeom& g, bool count_include_pad, const Tensor& x /* [N, C, H, W] */,
                 const Tensor& y /* [N, C, OH, OW], overwritten */))
PFQ_CUDA_KERNEL(void, avg_pool_backward,
                (const PoolGeom& g, bool count_include_pad, const Tensor& dy /* [N, C, OH, OW] */,
                 const Tensor& dx /* [N, C, H, W], overwritten */))
// PyTorch's adaptive bins: start = floor(i*H/OH), end = ceil((i+1)*H/OH); sizes from the shapes.
PFQ_CUDA_KERNEL(void, adaptive_avg_pool_forward,
                (const Tensor& x /* [N, C, H, W] */, const Tensor& y /* [N, C, OH, OW], overwritten */))
PFQ_CUDA_KERNEL(void, adaptive_avg_pool_backward,
                (const Tensor& dy /* [N, C, OH, OW] */, const Tensor& dx /* [N, C, H, W], overwritten */))
