// nccl_communicator.cpp — CUDA tensors' collectives through NCCL (nccl_ops.h): one ncclComm per
// process on the rank's GPU, its unique id made by rank 0 and broadcast over MPI, collectives
// queued on pfq's CUDA stream (core/cuda/launch.cuh: the legacy default stream), so they run in
// order with the backward kernels that produced the gradients.
#include <cuda_runtime_api.h>
#include <nccl.h>

#include "core/cuda/cuda_check.h"
#include "core/dist/nccl_ops.h"
#include "core/error.h"

namespace pfq::dist {

bool nccl_compiled() { return true; }

namespace {

ncclComm_t g_comm = nullptr;
int g_device = -1;

void check_nccl(ncclResult_t rc, const char* what) {
  if (rc == ncclSuccess) return;
  PFQ_FAIL("NCCL call ", what, " failed: ", ncclGetErrorString(rc), " (", ncclGetLastError(g_comm), ")");
}

ncclDataType_t nccl_type(DType d) {
  switch (d) {
    case DType::Float32: return ncclFloat32;
    case DType::Float64: return ncclFloat64;
    case DType::Int64: return ncclInt64;
    default: PFQ_FAIL("NCCL collective: dtype ", dtype_name(d), " is not supported (float32, float64, int64)");
  }
}

void check_cuda_tensor(const Tensor& t, const char* what) {
  PFQ_CHECK(g_comm, what, " of a CUDA tensor across ranks needs NCCL, which this run did not set up (--device cuda sets it up)");
  PFQ_CHECK(t.device().index == g_device, what, ": tensor on ", t.device().str(), " but this rank's NCCL communicator is on cuda:", g_device);
}

}  // namespace

void enable_nccl(int device_index) {
  Communicator& w = world();
  if (w.size() == 1 || g_comm) return;
  PFQ_CUDA_CHECK(cudaSetDevice(device_index));
  ncclUniqueId id{};
  if (w.rank() == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  broadcast_bytes(&id, sizeof id, 0);
  check_nccl(ncclCommInitRank(&g_comm, w.size(), id, w.rank()), "ncclCommInitRank");
  g_device = device_index;
}

bool nccl_enabled() { return g_comm != nullptr; }

void nccl_all_reduce(Tensor& t, ReduceOp op) {
  check_cuda_tensor(t, "all_reduce");
  const ncclRedOp_t nop = op == ReduceOp::Sum ? ncclSum : op == ReduceOp::Min ? ncclMin : ncclMax;
  check_nccl(ncclAllReduce(t.raw_data(), t.raw_data(), static_cast<size_t>(t.numel()), nccl_type(t.dtype()), nop, g_comm, cudaStreamLegacy),
             "ncclAllReduce");
}

void nccl_broadcast(Tensor& t, int root) {
  check_cuda_tensor(t, "broadcast");
  check_nccl(ncclBroadcast(t.raw_data(), t.raw_data(), static_cast<size_t>(t.numel()), nccl_type(t.dtype()), root, g_comm, cudaStreamLegacy),
             "ncclBroadcast");
}

void nccl_single_rank_check(Tensor& t, int device_index) {
  PFQ_CHECK(t.device().is_cuda() && t.device().index == device_index && t.is_contiguous(), "nccl_single_rank_check: expected a contiguous tensor on cuda:",
            device_index, ", got ", t.describe());
  ncclComm_t comm = nullptr;
  check_nccl(ncclCommInitAll(&comm, 1, &device_index), "ncclCommInitAll");
  for (const ncclRedOp_t op : {ncclSum, ncclMin, ncclMax}) {
    const ncclResult_t rc = ncclAllReduce(t.raw_data(), t.raw_data(), static_cast<size_t>(t.numel()), nccl_type(t.dtype()), op, comm, cudaStreamLegacy);
    if (rc != ncclSuccess) {
      ncclCommDestroy(comm);
      check_nccl(rc, "ncclAllReduce");
    }
  }
  PFQ_CUDA_CHECK(cudaStreamSynchronize(cudaStreamLegacy));
  ncclCommDestroy(comm);
}

void nccl_shutdown() {
  if (!g_comm) return;
  ncclCommDestroy(g_comm);
  g_comm = nullptr;
  g_device = -1;
}

}  // namespace pfq::dist
