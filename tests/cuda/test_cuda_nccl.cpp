// test_cuda_nccl.cpp — NCCL as the data-parallel runs use it on GPUs, on a machine with one GPU
// and no MPI: a one-rank communicator reduces a CUDA tensor in place (sum, min, max of one rank:
// the tensor itself). Several GPUs: tools/gpu-check.sh runs `mpirun -np 2 pfq train --device cuda`.
#include <doctest/doctest.h>

#include "core/dist/communicator.h"
#include "core/dist/nccl_ops.h"
#include "tests/cuda/cuda_test_util.h"

using namespace pfq;

TEST_CASE("cuda: NCCL reduces a CUDA tensor with a one-rank communicator") {
  if (test::skip_without_gpu()) return;
  if (!dist::nccl_compiled()) {
    test::report_skip("pfq built without NCCL (meson option nccl)");
    return;
  }
  const std::vector<float> v = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f};
  Tensor t = Tensor::from_vector(v, {5}).to(test::gpu());
  dist::nccl_single_rank_check(t, 0);
  CHECK(t.to(Device::cpu()).to_vector<float>() == v);
}
