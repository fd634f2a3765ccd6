// no_cuda.cpp — a build without CUDA: every entry point of core/cuda/kernel_list.h as a stub,
// generated from that list (nothing here mirrors a declaration by hand). The plumbing and the
// kernels throw "built without CUDA" with how to get a CUDA build; the queries give the answer
// of a machine without GPUs (no devices, nothing cached, nothing pinned). Ops reach a kernel only
// with a CUDA tensor, which such a build cannot create, so those stubs are a safety net.
#include "core/cuda/kernels.h"
#include "core/error.h"

#pragma GCC diagnostic ignored "-Wunused-parameter"  // the stubs keep the list's parameter names

namespace pfq::cuda {

void fail_without_cuda(const char* what) {
  PFQ_FAIL(what, ": this pfq was built without CUDA: reconfigure with nvcc on PATH (meson setup -Dcuda=enabled) to use --device cuda");
}

#define PFQ_CUDA_RUNTIME(RET, NAME, PARAMS) \
  RET NAME PARAMS { fail_without_cuda("CUDA device memory or work"); }
#define PFQ_CUDA_KERNEL(RET, NAME, PARAMS) \
  RET NAME PARAMS { fail_without_cuda("cuda::" #NAME); }
#define PFQ_CUDA_QUERY(RET, NAME, PARAMS, NO_CUDA) \
  RET NAME PARAMS { return NO_CUDA; }
#include "core/cuda/kernel_list.h"

}  // namespace pfq::cuda
