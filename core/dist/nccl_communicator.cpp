// nccl_communicator.cpp — CUDA tensors' collectives through NCCL (nccl_ops.h): one ncclComm per
// process on the rank's GPU, its unique id made by rank 0 and broadcast over MPI. Every
// collective runs on one communication stream (non-blocking, so it does not serialise with
// pfq's stream, core/cuda/launch.cuh's legacy default stream): it starts after an event recorded
// on pfq's stream (the kernels that produced its input), and pfq's stream waits for its
// completion event before it uses the result. One stream for all of them keeps them in the
// order they were issued, the same on every rank (NCCL's requirement). Blocking calls wait at
// once; all_reduce_async leaves pfq's stream free to run the rest of the backward pass meanwhile.
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
cudaStream_t g_comm_stream = nullptr;  // the communication stream (cudaStreamNonBlocking)
cudaEvent_t g_inputs_ready = nullptr;  // recorded on pfq's stream before each collective

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

// A collective queued on the communication stream: its completion event, destroyed with it (CUDA
// releases an event recorded for unfinished work once that work ends).
class NcclPending final : public PendingCollective {
 public:
  NcclPending() { PFQ_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming)); }
  ~NcclPending() override { cudaEventDestroy(done); }
  bool test() override {
    const cudaError_t rc = cudaEventQuery(done);
    if (rc == cudaErrorNotReady) return false;
    PFQ_CUDA_CHECK(rc);
    return true;
  }
  // pfq's stream waits; the host goes on. Memory freed after this is reused only by work queued
  // on pfq's stream (ordered after the event) or by cudaFree (which synchronises).
  void wait() override { PFQ_CUDA_CHECK(cudaStreamWaitEvent(cudaStreamLegacy, done, 0)); }
  cudaEvent_t done = nullptr;
};

// Runs `collective` on the communication stream after pfq's stream's work so far; the returned
// event completes with it.
template <typename F>
std::unique_ptr<NcclPending> on_comm_stream(F collective) {
  PFQ_CUDA_CHECK(cudaEventRecord(g_inputs_ready, cudaStreamLegacy));
  PFQ_CUDA_CHECK(cudaStreamWaitEvent(g_comm_stream, g_inputs_ready, 0));
  auto pending = std::make_unique<NcclPending>();
  collective(g_comm_stream);
  PFQ_CUDA_CHECK(cudaEventRecord(pending->done, g_comm_stream));
  return pending;
}

ncclRedOp_t nccl_op(ReduceOp op) { return op == ReduceOp::Sum ? ncclSum : op == ReduceOp::Min ? ncclMin : ncclMax; }

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
  PFQ_CUDA_CHECK(cudaStreamCreateWithFlags(&g_comm_stream, cudaStreamNonBlocking));
  PFQ_CUDA_CHECK(cudaEventCreateWithFlags(&g_inputs_ready, cudaEventDisableTiming));
}

bool nccl_enabled() { return g_comm != nullptr; }

AllReduceHandle nccl_all_reduce_async(Tensor t, ReduceOp op) {
  check_cuda_tensor(t, "all_reduce");
  auto pending = on_comm_stream([&](cudaStream_t s) {
    check_nccl(ncclAllReduce(t.raw_data(), t.raw_data(), static_cast<size_t>(t.numel()), nccl_type(t.dtype()), nccl_op(op), g_comm, s),
               "ncclAllReduce");
  });
  return AllReduceHandle(std::move(t), std::move(pending));
}

void nccl_all_reduce(Tensor& t, ReduceOp op) { nccl_all_reduce_async(t, op).wait(); }

void nccl_broadcast(Tensor& t, int root) {
  check_cuda_tensor(t, "broadcast");
  on_comm_stream([&](cudaStream_t s) {
    check_nccl(ncclBroadcast(t.raw_data(), t.raw_data(), static_cast<size_t>(t.numel()), nccl_type(t.dtype()), root, g_comm, s), "ncclBroadcast");
  })->wait();
}

void nccl_single_rank_check(Tensor& t, int device_index) {
  PFQ_CHECK(t.device().is_cuda() && t.device().index == device_index && t.is_contiguous(), "nccl_single_rank_check: expected a contiguous tensor on cuda:",
            device_index, ", got ", t.describe());
  PFQ_CHECK(!g_comm, "nccl_single_rank_check: this process already runs NCCL across ranks");
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
  // The data-parallel path on this communicator: an all-reduce on the communication stream
  // (events both ways) and a blocking one, as the gradient buckets and sync BN use them.
  g_comm = comm;
  g_device = device_index;
  try {
    PFQ_CUDA_CHECK(cudaStreamCreateWithFlags(&g_comm_stream, cudaStreamNonBlocking));
    PFQ_CUDA_CHECK(cudaEventCreateWithFlags(&g_inputs_ready, cudaEventDisableTiming));
    AllReduceHandle h = nccl_all_reduce_async(t, ReduceOp::Sum);
    h.wait();
    nccl_all_reduce(t, ReduceOp::Max);
    PFQ_CUDA_CHECK(cudaStreamSynchronize(cudaStreamLegacy));
  } catch (...) {
    nccl_shutdown();
    throw;
  }
  nccl_shutdown();
}

void nccl_shutdown() {
  if (!g_comm) return;
  if (g_comm_stream) cudaStreamSynchronize(g_comm_stream);  // nothing left in flight on the communicator
  ncclCommDestroy(g_comm);
  if (g_inputs_ready) cudaEventDestroy(g_inputs_ready);
  if (g_comm_stream) cudaStreamDestroy(g_comm_stream);
  g_comm = nullptr;
  g_device = -1;
  g_comm_stream = nullptr;
  g_inputs_ready = nullptr;
}

}  // namespace pfq::dist
