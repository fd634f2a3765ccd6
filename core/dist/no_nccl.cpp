// no_nccl.cpp — a build without NCCL (meson option nccl, or no CUDA backend): CUDA tensors cannot
// be reduced across ranks; one rank per process on the CPU, or a single GPU process, still runs.
#include "core/dist/nccl_ops.h"
#include "core/error.h"

namespace pfq::dist {

bool nccl_compiled() { return false; }
bool nccl_enabled() { return false; }

void enable_nccl(int) {
  PFQ_CHECK(world().size() == 1, "--device cuda with ", world().size(),
            " ranks needs NCCL, and this pfq was built without it (meson option nccl; NCCL comes with the CUDA toolkit)");
}
void nccl_all_reduce(Tensor&, ReduceOp) { PFQ_FAIL("all_reduce of a CUDA tensor across ranks needs NCCL: this pfq was built without it"); }
AllReduceHandle nccl_all_reduce_async(Tensor, ReduceOp) {
  PFQ_FAIL("all_reduce_async of a CUDA tensor across ranks needs NCCL: this pfq was built without it");
}
void nccl_broadcast(Tensor&, int) { PFQ_FAIL("broadcast of a CUDA tensor across ranks needs NCCL: this pfq was built without it"); }
void nccl_shutdown() {}
void nccl_single_rank_check(Tensor&, int) { PFQ_FAIL("this pfq was built without NCCL (meson option nccl; needs the CUDA backend)"); }

}  // namespace pfq::dist
