// kernel_list.h — the one list of the CUDA backend's entry points: every function that the CUDA
// build implements (core/cuda/*.cu, *.cpp) and that code outside core/cuda may call. Each entry is
// a macro call; core/cuda/kernels.h defines the macros to declare the functions (namespace
// pfq::cuda) and core/cuda/no_cuda.cpp to define a stub for each, so a build without CUDA links.
// No include guard: included once per expansion, with these defined (no CUDA headers here):
//   PFQ_CUDA_RUNTIME(RET, NAME, PARAMS)   device plumbing; without CUDA throws "built without CUDA"
//   PFQ_CUDA_KERNEL(RET, NAME, PARAMS)    a kernel; without CUDA throws naming it
//   PFQ_CUDA_QUERY(RET, NAME, PARAMS, NO_CUDA)   a question with an answer without CUDA: NO_CUDA
// Layouts as core/cpu: row-major, contiguous unless stated. Pointers are device pointers on
// cuda:`device` (or `index`); `dtype` is Float32 or Float64. Work is queued on the device's compute
// stream; nothing here synchronises with the host unless it says so. See docs/cuda-backend.md.

// ---- devices, memory, copies (cuda_runtime.cu; the public face is core/device.h) ---------------
PFQ_CUDA_QUERY(int, device_count, (), 0)  // 0 also when no GPU or driver is present
PFQ_CUDA_QUERY(std::vector<GpuInfo>, list_devices, (), {})
// Throws pfq::Error unless `index` names a usable GPU.
PFQ_CUDA_RUNTIME(void, require_device, (int index))
PFQ_CUDA_RUNTIME(void*, device_alloc, (size_t nbytes, int index))  // from the caching device allocator
PFQ_CUDA_QUERY(void, device_free, (void* ptr, size_t nbytes, int index), void())
PFQ_CUDA_RUNTIME(void, copy_host_to_device, (void* dst, const void* src, size_t nbytes, int index))
PFQ_CUDA_RUNTIME(void, copy_device_to_host, (void* dst, const void* src, size_t nbytes, int index))
PFQ_CUDA_RUNTIME(void, copy_device_to_device, (void* dst, const void* src, size_t nbytes, int index))
PFQ_CUDA_RUNTIME(void, synchronize, (int index))
// core/device.h's device_time_ms on GPU `index`.
PFQ_CUDA_RUNTIME(double, device_time_ms, (int index, const std::function<void()>& enqueue, double spin_ms, double* host_ms))
// core/device.h's PinnedUploader: an uploader's state (a stream, events and a ring of pinned
// staging buffers) for GPU `index`, its uploads and the page-locked bytes it holds.
PFQ_CUDA_RUNTIME(void*, pinned_uploader_new, (int index))
PFQ_CUDA_QUERY(void, pinned_uploader_delete, (void* uploader), void())  // waits for its copies in flight
PFQ_CUDA_RUNTIME(void, pinned_upload, (void* uploader, void* dst, const void* src, size_t nbytes))
PFQ_CUDA_QUERY(size_t, pinned_bytes, (const void* uploader), 0)
// The first kernels: contiguous float32 dst/out [n] = value, a + b, a * b (the device tests).
PFQ_CUDA_RUNTIME(void, fill_f32, (float* dst, float value, size_t n, int index))
PFQ_CUDA_RUNTIME(void, add_f32, (const float* a, const float* b, float* out, size_t n, int index))
PFQ_CUDA_RUNTIME(void, mul_f32, (const float* a, const float* b, float* out, size_t n, int index))

// ---- element-wise: the strided engine (elementwise.cu; any strides, stride 0 = broadcast, <= 8 dims after merging) ----
// The functors of core/functors.h with a CUDA instantiation (PFQ_CUDA_*_FUNCTORS in kernels.h):
// the op files pass the same functor object to the CPU loop or to these, so the math is written once.
// out = f(x): x and out float32/float64 of one dtype and shape; out may alias x (same layout).
#define PFQ_CUDA_MAP_UNARY(F) PFQ_CUDA_KERNEL(void, map_unary, (const Tensor& x, const Tensor& out, fn::F f))
PFQ_CUDA_UNARY_FUNCTORS(PFQ_CUDA_MAP_UNARY)
#undef PFQ_CUDA_MAP_UNARY
// out = f(a, b): a, b already broadcast to out's shape (expand_view); one dtype; out may alias a.
#define PFQ_CUDA_MAP_BINARY(F) PFQ_CUDA_KERNEL(void, map_binary, (const Tensor& a, const Tensor& b, const Tensor& out, fn::F f))
PFQ_CUDA_BINARY_FUNCTORS(PFQ_CUDA_MAP_BINARY)
PFQ_CUDA_BINARY_FLOAT_FUNCTORS(PFQ_CUDA_MAP_BINARY)
#undef PFQ_CUDA_MAP_BINARY

// ---- copies and fills (copy.cu) -----------------------------------------------------------
// dst = src converted to dst's dtype (static_cast, as the CPU copy): same shape, same CUDA
// device, any dtypes and strides on either side.
PFQ_CUDA_KERNEL(void, copy, (const Tensor& src, const Tensor& dst))
// Every element of dst (any dtype, any strides) = static_cast<T>(value).
PFQ_CUDA_KERNEL(void, fill, (const Tensor& dst, double value))

// ---- reductions over rows of a contiguous [outer, inner] float32/float64 buffer (reduce.cu) ----
// Deterministic: fixed chunking and a fixed combining tree, no atomics; sums accumulate in double.
// out [outer] = row sums of x [outer, inner].
PFQ_CUDA_KERNEL(void, sum_rows, (const Tensor& x, const Tensor& out, int64_t outer, int64_t inner))
// Row maximum (is_max) or minimum of x [outer, inner] and the index of its first occurrence;
// values [outer] (x's dtype) or indices [outer] (int64) may be undefined when not wanted. inner > 0.
PFQ_CUDA_KERNEL(void, extreme_rows,
                (const Tensor& x, int64_t outer, int64_t inner, bool is_max, const Tensor& values, const Tensor& indices))
// flat [outer * inner] (pre-zeroed, contiguous): flat[o * inner + index[o]] = g[o] (max/min backward);
// g, index [outer].
PFQ_CUDA_KERNEL(void, scatter_rows, (const Tensor& g, const Tensor& index, const Tensor& flat, int64_t outer, int64_t inner))

// ---- softmax family: rows of the last axis, contiguous (loss.cu) ---------------------------
// out [R, K] = x [R, K] - max - log(sum exp(x - max)) per row (sum in double).
PFQ_CUDA_KERNEL(void, log_softmax_rows, (const Tensor& x, const Tensor& out, int64_t R, int64_t K))
// logits [N, K], targets int64 [N] on the device (validated by the caller): writes logp [N, K]
// and loss [] = mean_i (-(1 - s) logp[i, t_i] - s/K sum_k logp[i, k]).
PFQ_CUDA_KERNEL(void, cross_entropy_forward,
                (const Tensor& logits, const Tensor& targets, double smoothing, const Tensor& logp, const Tensor& loss))
// dx [N, K] = g / N * (exp(logp) - ((k == t_i) (1 - s) + s / K)); g is the 0-d upstream
// gradient on the device (read by the kernel: no host round trip).
PFQ_CUDA_KERNEL(void, cross_entropy_backward,
                (const Tensor& logp, const Tensor& targets, double smoothing, const Tensor& g, const Tensor& dx))

// ---- optimizer updates: contiguous, one dtype, in the CPU kernels' operation order (optim.cu) ----
// param, grad, buf [numel]; buf undefined without momentum; see core/optim/sgd.h for the formula.
PFQ_CUDA_KERNEL(void, sgd_update,
                (const Tensor& param, const Tensor& grad, const Tensor& buf, bool first, double weight_decay, double momentum,
                 double dampening, bool nesterov, double lr))
// param, grad, exp_avg, exp_avg_sq [numel]; see core/optim/adam.h; shrink = 1 - lr * wd (AdamW)
// or 1, l2 = wd (Adam) or 0.
PFQ_CUDA_KERNEL(void, adam_update,
                (const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq, double shrink, double l2,
                 double beta1, double beta2, double eps, double bias_correction2_sqrt, double step_size))

// ---- GEMM (cuBLAS, gemm.cpp) --------------------------------------------------------------
// Row-major, `batch` products: C_i[M, N] = alpha * op(A_i) * op(B_i) + beta * C_i with
// A_i = A + i * stride_a (stride 0 shares one matrix), likewise B and C. op(X) = X or X^T;
// A is [M, K] (or [K, M] when trans_a), B is [K, N] (or [N, K] when trans_b); lda/ldb/ldc are
// row strides. float32 runs in full float32 precision (no TF32) unless backend_options().allow_tf32.
PFQ_CUDA_KERNEL(void, gemm,
                (DType dtype, int device, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const void* A,
                 int64_t lda, int64_t stride_a, const void* B, int64_t ldb, int64_t stride_b, double beta, void* C, int64_t ldc,
                 int64_t stride_c, int64_t batch))

// ---- convolution (cuDNN, or pfq's depthwise kernels; conv.cpp) ------------------------------
// x [N, C, H, W], w [OC, C/groups, KH, KW], b [OC] or null, y [N, OC, OH, OW] (ConvGeom). The
// algorithm is chosen once per shape (cudnnFind*: measured, like PyTorch's cudnn.benchmark) and
// cached; the workspace comes from the caching device allocator.
PFQ_CUDA_KERNEL(void, conv2d_forward,
                (DType dtype, int device, const ConvGeom& g, const void* x, const void* w, const void* b, void* y))
// dx [N, C, H, W] = conv_transpose(dy [N, OC, OH, OW], w) (overwritten)
PFQ_CUDA_KERNEL(void, conv2d_backward_input, (DType dtype, int device, const ConvGeom& g, const void* dy, const void* w, void* dx))
// dw [OC, C/groups, KH, KW] from dy [N, OC, OH, OW] and x [N, C, H, W] (overwritten)
PFQ_CUDA_KERNEL(void, conv2d_backward_weight, (DType dtype, int device, const ConvGeom& g, const void* dy, const void* x, void* dw))
// db [OC] = sum of dy [N, OC, OH, OW] over N, OH, OW (overwritten)
PFQ_CUDA_KERNEL(void, conv2d_backward_bias, (DType dtype, int device, const ConvGeom& g, const void* dy, void* db))
// Number of distinct convolution shapes whose algorithms are cached (tests, benchmarks).
PFQ_CUDA_QUERY(int64_t, conv_algo_cache_size, (), 0)

// ---- batch normalisation (cuDNN, spatial mode; batchnorm.cpp) ------------------------------
// x, y [N, C, S] (S = H*W, 1 for [N, C]); gamma/beta [C] (never null: pass ones/zeros for no
// affine); running_mean/var [C] or both null. Writes the batch mean and 1/sqrt(var + eps)
// (save_mean, save_invstd [C], dtype's type) and, when given, updates the running statistics:
// r = (1 - momentum) * r + momentum * batch, with the unbiased batch variance for var
// (exactly pfq's CPU convention and cuDNN's exponentialAverageFactor). eps >= batch_norm_min_eps().
PFQ_CUDA_KERNEL(void, batch_norm_train_forward,
                (DType dtype, int device, int64_t N, int64_t C, int64_t S, const void* x, const void* gamma, const void* beta,
                 double momentum, double eps, void* running_mean, void* running_var, void* y, void* save_mean, void* save_invstd))
// Eval: y [N, C, S] = (x - mean) / sqrt(var + eps) * gamma + beta with the given statistics [C].
PFQ_CUDA_KERNEL(void, batch_norm_infer_forward,
                (DType dtype, int device, int64_t N, int64_t C, int64_t S, const void* x, const void* gamma, const void* beta,
                 const void* mean, const void* var, double eps, void* y))
// Training-mode backward from the saved batch statistics: dx [N, C, S], dgamma, dbeta [C]
// (all three written).
PFQ_CUDA_KERNEL(void, batch_norm_train_backward,
                (DType dtype, int device, int64_t N, int64_t C, int64_t S, const void* x, const void* dy, const void* gamma,
                 const void* save_mean, const void* save_invstd, double eps, void* dx, void* dgamma, void* dbeta))
// The smallest eps cuDNN accepts (CUDNN_BN_MIN_EPSILON).
PFQ_CUDA_QUERY(double, batch_norm_min_eps, (), 0)

// ---- batch normalisation in training, own kernels (batchnorm_own.cu) -----------------------
// The default for training (backend_options().cuda_bn, PFQ_CUDA_BN=cudnn, chooses cuDNN's above):
// the same statistics and running-statistics convention as batch_norm_train_forward, with an
// activation fused: y = min(max(bn(x), lo), hi) (none: -inf, inf; ReLU: 0, inf; ReLU6: 0, 6). The
// backward gates dy by lo < y < hi with the forward's output y (null: no activation), as the CPU
// kernel does; dgamma/dbeta may be null. Deterministic. For tensors under 2^31 elements.
PFQ_CUDA_QUERY(bool, batch_norm_own_fits, (int64_t N, int64_t C, int64_t S), false)
PFQ_CUDA_KERNEL(void, batch_norm_act_train_forward,
                (DType dtype, int device, int64_t N, int64_t C, int64_t S, const void* x, const void* gamma, const void* beta,
                 double momentum, double eps, void* running_mean, void* running_var, double lo, double hi, void* y, void* save_mean,
                 void* save_invstd))
PFQ_CUDA_KERNEL(void, batch_norm_act_train_backward,
                (DType dtype, int device, int64_t N, int64_t C, int64_t S, const void* x, const void* dy, const void* y, double lo,
                 double hi, const void* gamma, const void* save_mean, const void* save_invstd, void* dx, void* dgamma, void* dbeta))

// ---- pooling: own kernels, gather-style backward, deterministic (pool.cu) --------------------
// Planes of [H, W] -> [OH, OW] (PoolGeom); argmax [planes * OH * OW] int64 holds the flat index
// h*W+w of the first maximum of each window (padding never wins), as the CPU kernel does.
PFQ_CUDA_KERNEL(void, max_pool_forward, (DType dtype, int device, const PoolGeom& g, const void* x, void* y, int64_t* argmax))
PFQ_CUDA_KERNEL(void, max_pool_backward,
                (DType dtype, int device, const PoolGeom& g, const void* dy, const int64_t* argmax, void* dx))
PFQ_CUDA_KERNEL(void, avg_pool_forward, (DType dtype, int device, const PoolGeom& g, bool count_include_pad, const void* x, void* y))
PFQ_CUDA_KERNEL(void, avg_pool_backward,
                (DType dtype, int device, const PoolGeom& g, bool count_include_pad, const void* dy, void* dx))
// x [planes, H, W] -> y [planes, OH, OW] with PyTorch's adaptive bins: start = floor(i*H/OH),
// end = ceil((i+1)*H/OH).
PFQ_CUDA_KERNEL(void, adaptive_avg_pool_forward,
                (DType dtype, int device, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const void* x, void* y))
PFQ_CUDA_KERNEL(void, adaptive_avg_pool_backward,
                (DType dtype, int device, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const void* dy, void* dx))
