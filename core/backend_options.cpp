// backend_options.cpp — the one store of core/backend_options.h's choices and the only reader
// of their environment variables; each field an atomic, so kernels on any thread read it freely.
#include "core/backend_options.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace pfq {
namespace cpu {

bool onednn_compiled() {
#ifdef PFQ_WITH_ONEDNN
  return true;
#else
  return false;
#endif
}

ConvBackend parse_conv_backend(const std::string& name, const std::string& context) {
  if (name == "eigen") return ConvBackend::Eigen;
  if (name == "onednn") return ConvBackend::OneDnn;
  PFQ_FAIL(context, "unknown CPU convolution backend '", name, "': expected eigen or onednn");
}

const char* conv_backend_name(ConvBackend b) { return b == ConvBackend::OneDnn ? "onednn" : "eigen"; }

CpuLayout parse_cpu_layout(const std::string& name, const std::string& context) {
  if (name == "nchw") return CpuLayout::Nchw;
  if (name == "nhwc") return CpuLayout::Nhwc;
  PFQ_FAIL(context, "unknown CPU activation layout '", name, "': expected nchw or nhwc");
}

const char* cpu_layout_name(CpuLayout l) { return l == CpuLayout::Nhwc ? "nhwc" : "nchw"; }

}  // namespace cpu

namespace {

// The variable's value, or null when unset or empty (both mean: the default).
const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != 0 ? v : nullptr;
}
bool env_is(const char* name, const char* value) {
  const char* v = env(name);
  return v != nullptr && std::strcmp(v, value) == 0;
}

struct Store {
  std::atomic<cpu::ConvBackend> cpu_conv;
  std::atomic<cpu::CpuLayout> cpu_layout;
  std::atomic<CudaBatchNorm> cuda_bn;
  std::atomic<CudaDepthwise> cuda_depthwise;
  std::atomic<bool> cudnn_find, allow_tf32, async_uploads;
  explicit Store(const BackendOptions& o) { store(o); }
  void store(const BackendOptions& o) {
    cpu_conv = o.cpu_conv;
    cpu_layout = o.cpu_layout;
    cuda_bn = o.cuda_bn;
    cuda_depthwise = o.cuda_depthwise;
    cudnn_find = o.cudnn_find;
    allow_tf32 = o.allow_tf32;
    async_uploads = o.async_uploads;
  }
};

Store& store() {
  static Store s(BackendOptions::from_env());  // a throwing from_env() leaves it for the next call
  return s;
}

const char* bn_name(CudaBatchNorm b) { return b == CudaBatchNorm::Own ? "own" : "cudnn"; }
const char* depthwise_name(CudaDepthwise d) { return d == CudaDepthwise::Own ? "own" : "cudnn"; }

}  // namespace

BackendOptions BackendOptions::defaults() {
  BackendOptions o;
  o.cpu_conv = cpu::onednn_compiled() ? cpu::ConvBackend::OneDnn : cpu::ConvBackend::Eigen;
  return o;
}

BackendOptions BackendOptions::from_env() {
  BackendOptions o = defaults();
  if (const char* v = env("PFQ_CPU_CONV")) {
    o.cpu_conv = cpu::parse_conv_backend(v, "environment variable PFQ_CPU_CONV: ");
    PFQ_CHECK(o.cpu_conv != cpu::ConvBackend::OneDnn || cpu::onednn_compiled(),
              "PFQ_CPU_CONV=onednn: this pfq was built without oneDNN (install libdnnl-dev and reconfigure)");
  }
  if (const char* v = env("PFQ_CPU_LAYOUT")) o.cpu_layout = cpu::parse_cpu_layout(v, "environment variable PFQ_CPU_LAYOUT: ");
  if (const char* v = env("PFQ_CUDA_BN")) {
    PFQ_CHECK(std::strcmp(v, "own") == 0 || std::strcmp(v, "cudnn") == 0, "PFQ_CUDA_BN=", v,
              ": expected own (pfq's batch-norm kernels) or cudnn (cuDNN's)");
    o.cuda_bn = std::strcmp(v, "own") == 0 ? CudaBatchNorm::Own : CudaBatchNorm::Cudnn;
  }
  if (const char* v = env("PFQ_CUDA_DEPTHWISE")) {
    PFQ_CHECK(std::strcmp(v, "cudnn") == 0 || std::strcmp(v, "own") == 0, "PFQ_CUDA_DEPTHWISE=", v,
              ": expected cudnn (cuDNN's kernels) or own (pfq's, core/cuda/depthwise.cu)");
    o.cuda_depthwise = std::strcmp(v, "own") == 0 ? CudaDepthwise::Own : CudaDepthwise::Cudnn;
  }
  o.cudnn_find = !env_is("PFQ_CUDNN_FIND", "0");
  o.allow_tf32 = env_is("PFQ_ALLOW_TF32", "1");
  o.async_uploads = !env_is("PFQ_SYNC_UPLOADS", "1");
  return o;
}

nlohmann::ordered_json BackendOptions::to_json() const {
  return {{"cpu_conv", cpu::conv_backend_name(cpu_conv)},   {"cpu_layout", cpu::cpu_layout_name(cpu_layout)},
          {"cuda_bn", bn_name(cuda_bn)},                     {"cuda_depthwise", depthwise_name(cuda_depthwise)},
          {"cudnn_find", cudnn_find},                        {"allow_tf32", allow_tf32},
          {"async_uploads", async_uploads}};
}

BackendOptions backend_options() {
  const Store& s = store();
  constexpr auto r = std::memory_order_relaxed;
  BackendOptions o;
  o.cpu_conv = s.cpu_conv.load(r);
  o.cpu_layout = s.cpu_layout.load(r);
  o.cuda_bn = s.cuda_bn.load(r);
  o.cuda_depthwise = s.cuda_depthwise.load(r);
  o.cudnn_find = s.cudnn_find.load(r);
  o.allow_tf32 = s.allow_tf32.load(r);
  o.async_uploads = s.async_uploads.load(r);
  return o;
}

void set_backend_options(const BackendOptions& o) {
  PFQ_CHECK(o.cpu_conv != cpu::ConvBackend::OneDnn || cpu::onednn_compiled(),
            "CPU convolution backend onednn: this pfq was built without oneDNN (install libdnnl-dev and reconfigure)");
  store().store(o);
}

nlohmann::ordered_json backend_options_json() { return backend_options().to_json(); }

}  // namespace pfq
