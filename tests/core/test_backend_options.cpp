// test_backend_options.cpp — core/backend_options.h: the PFQ_* variables read into one struct
// (defaults when unset or empty, the same error per unknown value as before), code setting the
// choices the kernels then read, and the JSON a run echoes and saves.
#include <doctest/doctest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/backend_options.h"
#include "core/cpu/conv_backend.h"
#include "core/error.h"

using namespace pfq;

namespace {

const char* const kVars[] = {"PFQ_CPU_CONV", "PFQ_CPU_LAYOUT", "PFQ_CUDA_BN", "PFQ_CUDA_DEPTHWISE",
                             "PFQ_CUDNN_FIND", "PFQ_ALLOW_TF32", "PFQ_SYNC_UPLOADS"};

using Vars = std::vector<std::pair<const char*, const char*>>;

// Sets the given variables (and unsets the others of the seven) for one scope; restores all after.
struct EnvScope {
  std::vector<std::pair<std::string, std::string>> saved;  // name, value ("\x01": was unset)
  explicit EnvScope(const Vars& set) {
    for (const char* v : kVars) {
      const char* old = std::getenv(v);
      saved.emplace_back(v, old ? old : "\x01");
      unsetenv(v);
    }
    for (const auto& [name, value] : set) setenv(name, value, 1);
  }
  ~EnvScope() {
    for (const auto& [name, value] : saved)
      if (value == "\x01") unsetenv(name.c_str());
      else setenv(name.c_str(), value.c_str(), 1);
  }
};

}  // namespace

TEST_CASE("backend options: unset or empty variables give the build's defaults") {
  const BackendOptions d = BackendOptions::defaults();
  CHECK(d.cpu_conv == (cpu::onednn_compiled() ? cpu::ConvBackend::OneDnn : cpu::ConvBackend::Eigen));
  CHECK(d.cpu_layout == cpu::CpuLayout::Nhwc);
  CHECK(d.cuda_bn == CudaBatchNorm::Own);
  CHECK(d.cuda_depthwise == CudaDepthwise::Cudnn);
  CHECK(d.cudnn_find);
  CHECK_FALSE(d.allow_tf32);
  CHECK(d.async_uploads);
  {
    EnvScope env(Vars{});
    CHECK(BackendOptions::from_env().to_json() == d.to_json());
  }
  EnvScope env(Vars{{"PFQ_CPU_CONV", ""}, {"PFQ_CPU_LAYOUT", ""}, {"PFQ_CUDA_BN", ""}, {"PFQ_CUDA_DEPTHWISE", ""},
                {"PFQ_CUDNN_FIND", ""}, {"PFQ_ALLOW_TF32", ""}, {"PFQ_SYNC_UPLOADS", ""}});
  CHECK(BackendOptions::from_env().to_json() == d.to_json());
}

TEST_CASE("backend options: every variable is read, with its spelling of each choice") {
  EnvScope env(Vars{{"PFQ_CPU_CONV", "eigen"}, {"PFQ_CPU_LAYOUT", "nchw"}, {"PFQ_CUDA_BN", "cudnn"}, {"PFQ_CUDA_DEPTHWISE", "own"},
                {"PFQ_CUDNN_FIND", "0"}, {"PFQ_ALLOW_TF32", "1"}, {"PFQ_SYNC_UPLOADS", "1"}});
  // Each field its non-default value (eigen is the default only without oneDNN): all seven read.
  CHECK(BackendOptions::from_env().to_json().dump() ==
        R"({"cpu_conv":"eigen","cpu_layout":"nchw","cuda_bn":"cudnn","cuda_depthwise":"own","cudnn_find":false,)"
        R"("allow_tf32":true,"async_uploads":false})");
}

TEST_CASE("backend options: an unknown value is an error naming the variable") {
  auto fails = [](const char* var, const char* value, const char* message) {
    EnvScope env(Vars{{var, value}});
    CHECK_THROWS_WITH_AS(BackendOptions::from_env(), doctest::Contains(message), Error);
  };
  fails("PFQ_CPU_CONV", "mkl", "environment variable PFQ_CPU_CONV: unknown CPU convolution backend 'mkl': expected eigen or onednn");
  fails("PFQ_CPU_LAYOUT", "NHWC", "environment variable PFQ_CPU_LAYOUT: unknown CPU activation layout 'NHWC': expected nchw or nhwc");
  fails("PFQ_CUDA_BN", "fast", "PFQ_CUDA_BN=fast: expected own (pfq's batch-norm kernels) or cudnn (cuDNN's)");
  fails("PFQ_CUDA_DEPTHWISE", "mine", "PFQ_CUDA_DEPTHWISE=mine: expected cudnn (cuDNN's kernels) or own");
  if (!cpu::onednn_compiled()) fails("PFQ_CPU_CONV", "onednn", "PFQ_CPU_CONV=onednn: this pfq was built without oneDNN");
  // The three switches keep their one-value spelling: anything else is the default.
  EnvScope env(Vars{{"PFQ_CUDNN_FIND", "no"}, {"PFQ_ALLOW_TF32", "yes"}, {"PFQ_SYNC_UPLOADS", "true"}});
  const BackendOptions o = BackendOptions::from_env();
  CHECK(o.cudnn_find);
  CHECK_FALSE(o.allow_tf32);
  CHECK(o.async_uploads);
}

TEST_CASE("backend options: code sets the choices the kernels read; the per-field setters agree") {
  const BackendOptions saved = backend_options();
  BackendOptions o = saved;
  o.cpu_layout = cpu::CpuLayout::Nchw;
  o.allow_tf32 = true;
  set_backend_options(o);
  CHECK(cpu::cpu_layout() == cpu::CpuLayout::Nchw);
  CHECK(backend_options_json()["allow_tf32"] == true);
  cpu::set_cpu_layout(cpu::CpuLayout::Nhwc);
  CHECK(backend_options().cpu_layout == cpu::CpuLayout::Nhwc);
  CHECK(backend_options().allow_tf32);  // the other fields stay
  if (!cpu::onednn_compiled()) {
    o.cpu_conv = cpu::ConvBackend::OneDnn;
    CHECK_THROWS_WITH_AS(set_backend_options(o), doctest::Contains("built without oneDNN"), Error);
  }
  set_backend_options(saved);
  CHECK(backend_options().to_json() == saved.to_json());
}
