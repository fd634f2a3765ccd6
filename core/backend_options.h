// backend_options.h — every run-time choice between kernels that compute the same op, in one
// struct: the CPU convolution backend and activation layout, the CUDA batch-norm and depthwise
// kernels, cuDNN's algorithm search, TF32, asynchronous batch uploads. Read from the environment
// once (the PFQ_* variables below) on first use, settable by code (command-line flags), and
// printable (to_json) for a run's config echo and config.json. Leaves out test fault injectors.
#pragma once
#include <nlohmann/json_fwd.hpp>
#include <string>

namespace pfq {

namespace cpu {
// float32 CPU convolutions: oneDNN (when compiled in) or pfq's own im2col + Eigen GEMM kernels.
enum class ConvBackend { Eigen, OneDnn };
// Activations around oneDNN's CPU convolutions: NCHW (reordered on every call) or channels-last.
enum class CpuLayout { Nchw, Nhwc };
bool onednn_compiled();  // the build has oneDNN (meson option onednn)
// "eigen" | "onednn" and "nchw" | "nhwc"; otherwise an error that starts with context (e.g. the
// flag or variable).
ConvBackend parse_conv_backend(const std::string& name, const std::string& context = "");
const char* conv_backend_name(ConvBackend b);
CpuLayout parse_cpu_layout(const std::string& name, const std::string& context = "");
const char* cpu_layout_name(CpuLayout l);
}  // namespace cpu

// CUDA batch norm in training: pfq's own kernels (activation fused) or cuDNN's.
enum class CudaBatchNorm { Own, Cudnn };
// CUDA depthwise convolutions: cuDNN's or pfq's own deterministic kernels (core/cuda/depthwise.h).
enum class CudaDepthwise { Cudnn, Own };

struct BackendOptions {
  cpu::ConvBackend cpu_conv = cpu::ConvBackend::Eigen;  // PFQ_CPU_CONV=eigen|onednn (default: onednn if compiled)
  cpu::CpuLayout cpu_layout = cpu::CpuLayout::Nhwc;     // PFQ_CPU_LAYOUT=nchw|nhwc
  CudaBatchNorm cuda_bn = CudaBatchNorm::Own;           // PFQ_CUDA_BN=own|cudnn
  CudaDepthwise cuda_depthwise = CudaDepthwise::Cudnn;  // PFQ_CUDA_DEPTHWISE=cudnn|own
  bool cudnn_find = true;     // PFQ_CUDNN_FIND=0: cuDNN's heuristic instead of measured algorithms
  bool allow_tf32 = false;    // PFQ_ALLOW_TF32=1: TF32 tensor cores in float32 GEMM and convolution
  bool async_uploads = true;  // PFQ_SYNC_UPLOADS=1: synchronous batch uploads (A/B timing)

  static BackendOptions defaults();  // this build's defaults, ignoring the environment
  // defaults() overridden by the environment; an unknown value is an error naming the variable.
  static BackendOptions from_env();
  // {"cpu_conv": "onednn", "cpu_layout": "nhwc", "cuda_bn": "own", ...}, in the order above.
  nlohmann::ordered_json to_json() const;
};

// The process's choices: BackendOptions::from_env() on first use (errors then), afterwards what
// set_backend_options stored. Cheap (a few relaxed atomic loads): kernels read it per call.
BackendOptions backend_options();
// Replaces every choice (flags: start from backend_options(), change fields, set). Throws, storing
// nothing, for a choice this build cannot make (onednn without oneDNN).
void set_backend_options(const BackendOptions& o);
// backend_options().to_json(): what a command echoes and saves in its run's config.json.
nlohmann::ordered_json backend_options_json();

}  // namespace pfq
