// conv.cpp — cuDNN convolution forward, backward-data, backward-filter and bias, declared in
// core/cuda/kernel_list.h (CUDA builds). Any groups, stride, padding, dilation; float32 and float64.
// PFQ_CUDA_DEPTHWISE=own sends depthwise convolutions to pfq's own kernels (depthwise.h).
// Algorithms are measured once per shape with cudnnFind* (or picked by the cudnnGet*_v7
// heuristics when PFQ_CUDNN_FIND=0) and cached with the shape's descriptors; float32 uses FMA
// math unless TF32 is allowed (core/backend_options.h).
#include <cudnn.h>

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/backend_options.h"
#include "core/cuda/kernels.h"
#include "core/cuda/depthwise.h"
#include "core/cuda/dnn_util.h"
#include "core/cuda/handles.h"

namespace pfq::cuda {
namespace {

enum class ConvPass : int { Forward = 0, BackwardData = 1, BackwardFilter = 2 };
const char* pass_name(ConvPass p) {
  return p == ConvPass::Forward ? "conv2d forward" : p == ConvPass::BackwardData ? "conv2d backward (input)" : "conv2d backward (weight)";
}

std::string describe(ConvPass pass, DType dtype, int device, const ConvGeom& g) {
  return ::pfq::detail::cat(pass_name(pass), " on cuda:", device, " (", dtype_name(dtype), " x [", g.N, ", ", g.C, ", ", g.H, ", ", g.W,
                     "], w [", g.OC, ", ", g.cg(), ", ", g.KH, ", ", g.KW, "], y [", g.N, ", ", g.OC, ", ", g.OH, ", ", g.OW,
                     "], stride ", g.sh, "x", g.sw, ", padding ", g.ph, "x", g.pw, ", dilation ", g.dh, "x", g.dw, ", groups ",
                     g.groups, ")");
}

// Algorithm and math type chosen for one (pass, dtype, device, geometry, tf32) key.
struct AlgoChoice {
  int algo = 0;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  size_t workspace = 0;
};
using PlanKey = std::array<int64_t, 19>;

bool use_find() { return backend_options().cudnn_find; }

// The descriptors of one convolution shape. `ctx` is evaluated only when a call fails.
struct ConvDescs {
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
  cudnnDataType_t type;

  ConvDescs(DType dtype, const ConvGeom& g, const std::string& ctx) : type(cudnn_type(dtype, "conv2d")) {
    auto i = [](int64_t v) { return static_cast<int>(v); };
    PFQ_CHECK(g.N * g.C * g.H * g.W < INT32_MAX && g.N * g.OC * g.OH * g.OW < INT32_MAX, ctx,
              ": tensors over 2^31 elements are not supported by the cuDNN path; reduce --batch-size");
    PFQ_DNN_CHECK(cudnnSetTensor4dDescriptor(x.get(), CUDNN_TENSOR_NCHW, type, i(g.N), i(g.C), i(g.H), i(g.W)), ctx);
    PFQ_DNN_CHECK(cudnnSetTensor4dDescriptor(y.get(), CUDNN_TENSOR_NCHW, type, i(g.N), i(g.OC), i(g.OH), i(g.OW)), ctx);
    PFQ_DNN_CHECK(cudnnSetFilter4dDescriptor(w.get(), type, CUDNN_TENSOR_NCHW, i(g.OC), i(g.cg()), i(g.KH), i(g.KW)), ctx);
    PFQ_DNN_CHECK(cudnnSetConvolution2dDescriptor(conv.get(), i(g.ph), i(g.pw), i(g.sh), i(g.sw), i(g.dh), i(g.dw),
                                                  CUDNN_CROSS_CORRELATION, type),
                  ctx);
    PFQ_DNN_CHECK(cudnnSetConvolutionGroupCount(conv.get(), i(g.groups)), ctx);
    int n = 0, c = 0, h = 0, w_ = 0;
    PFQ_DNN_CHECK(cudnnGetConvolution2dForwardOutputDim(conv.get(), x.get(), w.get(), &n, &c, &h, &w_), ctx);
    PFQ_CHECK(n == g.N && c == g.OC && h == g.OH && w_ == g.OW, ctx, ": cuDNN computes output [", n, ", ", c, ", ", h, ", ", w_,
              "], pfq expected [", g.N, ", ", g.OC, ", ", g.OH, ", ", g.OW, "]");
  }
};

// Picks the first (fastest) successful result of a Find, or of the v7 heuristics.
template <typename Perf>
bool pick(const Perf* perf, int count, AlgoChoice& out) {
  for (int i = 0; i < count; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS) {
      out.algo = static_cast<int>(perf[i].algo);
      out.math = perf[i].mathType;
      return true;
    }
  return false;
}

// Measures (or asks the heuristics for) the algorithm of one pass and leaves its math type set
// on d.conv.
AlgoChoice choose(ConvPass pass, DType dtype, int device, ConvDescs& d, const std::string& ctx) {
  const bool tf32 = dtype == DType::Float32 && backend_options().allow_tf32;
  // Restrict float32 to plain FMA kernels unless TF32 is allowed (as PyTorch does).
  const cudnnMathType_t math = dtype == DType::Float32 && !tf32 ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
  PFQ_DNN_CHECK(cudnnSetConvolutionMathType(d.conv.get(), math), ctx);
  cudnnHandle_t h = cudnn_handle(device);
  AlgoChoice c;
  bool ok = false;
  constexpr int kMax = 16;
  int got = 0;
  if (pass == ConvPass::Forward) {
    cudnnConvolutionFwdAlgoPerf_t perf[kMax];
    if (use_find()) PFQ_DNN_CHECK(cudnnFindConvolutionForwardAlgorithm(h, d.x.get(), d.w.get(), d.conv.get(), d.y.get(), kMax, &got, perf), ctx);
    else PFQ_DNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, d.x.get(), d.w.get(), d.conv.get(), d.y.get(), kMax, &got, perf), ctx);
    ok = pick(perf, got, c);
  } else if (pass == ConvPass::BackwardData) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[kMax];
    if (use_find()) PFQ_DNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithm(h, d.w.get(), d.y.get(), d.conv.get(), d.x.get(), kMax, &got, perf), ctx);
    else PFQ_DNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.w.get(), d.y.get(), d.conv.get(), d.x.get(), kMax, &got, perf), ctx);
    ok = pick(perf, got, c);
  } else {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[kMax];
    if (use_find()) PFQ_DNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithm(h, d.x.get(), d.y.get(), d.conv.get(), d.w.get(), kMax, &got, perf), ctx);
    else PFQ_DNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x.get(), d.y.get(), d.conv.get(), d.w.get(), kMax, &got, perf), ctx);
    ok = pick(perf, got, c);
  }
  PFQ_CHECK(ok, ctx, ": cuDNN found no algorithm for this convolution (", got, " candidates, none usable)");
  // FMA math was requested; keep it even if a result reports another (it then means "any").
  if (math == CUDNN_FMA_MATH) c.math = CUDNN_FMA_MATH;
  PFQ_DNN_CHECK(cudnnSetConvolutionMathType(d.conv.get(), c.math), ctx);
  if (pass == ConvPass::Forward)
    PFQ_DNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(h, d.x.get(), d.w.get(), d.conv.get(), d.y.get(),
                                                          static_cast<cudnnConvolutionFwdAlgo_t>(c.algo), &c.workspace), ctx);
  else if (pass == ConvPass::BackwardData)
    PFQ_DNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(h, d.w.get(), d.y.get(), d.conv.get(), d.x.get(),
                                                               static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algo), &c.workspace), ctx);
  else
    PFQ_DNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(h, d.x.get(), d.y.get(), d.conv.get(), d.w.get(),
                                                                 static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.algo), &c.workspace), ctx);
  return c;
}

// Everything a call needs that depends on the shape only: the descriptors (math type set) and
// the algorithm. Made once per key, never freed, so a step's convolutions cost the host a
// map lookup rather than descriptor set-up, an output-size check and a formatted context string.
struct ConvPlan {
  ConvDescs d;
  AlgoChoice c;
};

std::mutex& cache_mutex() {
  static std::mutex mu;
  return mu;
}
std::map<PlanKey, std::unique_ptr<ConvPlan>>& plan_cache() {
  static auto* cache = new std::map<PlanKey, std::unique_ptr<ConvPlan>>();  // leaked: outlives static teardown
  return *cache;
}

const ConvPlan& plan_for(ConvPass pass, DType dtype, int device, const ConvGeom& g) {
  const bool tf32 = dtype == DType::Float32 && backend_options().allow_tf32;
  const PlanKey key{static_cast<int>(pass), static_cast<int>(dtype), device, g.N, g.C, g.H, g.W, g.OC, g.KH, g.KW,
                    g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.groups, tf32, use_find()};
  {
    std::lock_guard<std::mutex> lock(cache_mutex());
    auto it = plan_cache().find(key);
    if (it != plan_cache().end()) return *it->second;
  }
  const std::string ctx = describe(pass, dtype, device, g);
  auto plan = std::unique_ptr<ConvPlan>(new ConvPlan{ConvDescs(dtype, g, ctx), {}});
  plan->c = choose(pass, dtype, device, plan->d, ctx);
  std::lock_guard<std::mutex> lock(cache_mutex());
  auto [it, inserted] = plan_cache().emplace(key, std::move(plan));  // another thread may have been first
  return *it->second;
}

// PFQ_CUDA_DEPTHWISE = cudnn (default) | own (core/backend_options.h).
bool own_depthwise() { return backend_options().cuda_depthwise == CudaDepthwise::Own; }

void run(ConvPass pass, DType dtype, int device, const ConvGeom& g, const void* a, const void* b, void* out) {
  if (g.OC == 0 || g.C == 0) return;
  require_device(device);
  make_current(device);
  if (g.N == 0) {  // empty batch: nothing to compute, but the weight gradient is zero
    if (pass == ConvPass::BackwardFilter)
      PFQ_CUDA_CHECK(cudaMemset(out, 0, static_cast<size_t>(g.OC * g.cg() * g.KH * g.KW) * dtype_size(dtype)));
    return;
  }
  if (g.is_depthwise() && own_depthwise()) {
    if (pass == ConvPass::Forward) return depthwise_forward(dtype, device, g, a, b, out);
    if (pass == ConvPass::BackwardData) return depthwise_backward_input(dtype, device, g, a, b, out);
    return depthwise_backward_weight(dtype, device, g, a, b, out);
  }
  const ConvPlan& p = plan_for(pass, dtype, device, g);
  const ConvDescs& d = p.d;
  const AlgoChoice& c = p.c;
  Workspace ws(c.workspace, device);
  cudnnHandle_t h = cudnn_handle(device);
  const DnnScalars s(dtype, 1, 0);
  if (pass == ConvPass::Forward)  // a = x, b = w, out = y
    PFQ_DNN_CHECK(cudnnConvolutionForward(h, s.alpha(), d.x.get(), a, d.w.get(), b, d.conv.get(),
                                          static_cast<cudnnConvolutionFwdAlgo_t>(c.algo), ws.get(), ws.size(), s.beta(), d.y.get(), out),
                  describe(pass, dtype, device, g));
  else if (pass == ConvPass::BackwardData)  // a = dy, b = w, out = dx
    PFQ_DNN_CHECK(cudnnConvolutionBackwardData(h, s.alpha(), d.w.get(), b, d.y.get(), a, d.conv.get(),
                                               static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algo), ws.get(), ws.size(), s.beta(),
                                               d.x.get(), out),
                  describe(pass, dtype, device, g));
  else  // a = dy, b = x, out = dw
    PFQ_DNN_CHECK(cudnnConvolutionBackwardFilter(h, s.alpha(), d.x.get(), b, d.y.get(), a, d.conv.get(),
                                                 static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.algo), ws.get(), ws.size(), s.beta(),
                                                 d.w.get(), out),
                  describe(pass, dtype, device, g));
}

}  // namespace

void conv2d_forward(const ConvGeom& g, const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y) {
  const DType dtype = x.dtype();
  const int device = x.device().index;
  run(ConvPass::Forward, dtype, device, g, x.raw_data(), w.raw_data(), y.raw_data());
  if (!b.defined() || g.N == 0 || g.OC == 0) return;
  const std::string ctx = describe(ConvPass::Forward, dtype, device, g) + " adding the bias";
  const cudnnDataType_t type = cudnn_type(dtype, "conv2d");
  TensorDesc bd, yd;
  PFQ_DNN_CHECK(cudnnSetTensor4dDescriptor(bd.get(), CUDNN_TENSOR_NCHW, type, 1, static_cast<int>(g.OC), 1, 1), ctx);
  PFQ_DNN_CHECK(cudnnSetTensor4dDescriptor(yd.get(), CUDNN_TENSOR_NCHW, type, static_cast<int>(g.N), static_cast<int>(g.OC),
                                           static_cast<int>(g.OH), static_cast<int>(g.OW)),
                ctx);
  const DnnScalars s(dtype, 1, 1);  // y = 1 * b + 1 * y
  PFQ_DNN_CHECK(cudnnAddTensor(cudnn_handle(device), s.alpha(), bd.get(), b.raw_data(), s.beta(), yd.get(), y.raw_data()), ctx);
}

void conv2d_backward_input(const ConvGeom& g, const Tensor& dy, const Tensor& w, const Tensor& dx) {
  run(ConvPass::BackwardData, dy.dtype(), dy.device().index, g, dy.raw_data(), w.raw_data(), dx.raw_data());
}

void conv2d_backward_weight(const ConvGeom& g, const Tensor& dy, const Tensor& x, const Tensor& dw) {
  run(ConvPass::BackwardFilter, dy.dtype(), dy.device().index, g, dy.raw_data(), x.raw_data(), dw.raw_data());
}

void conv2d_backward_bias(const ConvGeom& g, const Tensor& dy, const Tensor& db) {
  if (g.OC == 0) return;
  const DType dtype = dy.dtype();
  const int device = dy.device().index;
  require_device(device);
  make_current(device);
  const std::string ctx = describe(ConvPass::BackwardFilter, dtype, device, g) + " (bias gradient)";
  const cudnnDataType_t type = cudnn_type(dtype, "conv2d");
  TensorDesc bd, yd;
  PFQ_DNN_CHECK(cudnnSetTensor4dDescriptor(bd.get(), CUDNN_TENSOR_NCHW, type, 1, static_cast<int>(g.OC), 1, 1), ctx);
  PFQ_DNN_CHECK(cudnnSetTensor4dDescriptor(yd.get(), CUDNN_TENSOR_NCHW, type, static_cast<int>(g.N), static_cast<int>(g.OC),
                                           static_cast<int>(g.OH), static_cast<int>(g.OW)),
                ctx);
  if (g.N == 0) {
    PFQ_CUDA_CHECK(cudaMemset(db.raw_data(), 0, static_cast<size_t>(g.OC) * dtype_size(dtype)));
    return;
  }
  const DnnScalars s(dtype, 1, 0);
  PFQ_DNN_CHECK(cudnnConvolutionBackwardBias(cudnn_handle(device), s.alpha(), yd.get(), dy.raw_data(), s.beta(), bd.get(), db.raw_data()),
                ctx);
}

int64_t conv_algo_cache_size() {
  std::lock_guard<std::mutex> lock(cache_mutex());
  return static_cast<int64_t>(plan_cache().size());
}

}  // namespace pfq::cuda
