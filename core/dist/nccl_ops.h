// nccl_ops.h — collectives on CUDA tensors for the MPI communicator (core/dist/, internal):
// NCCL when the build has it and enable_nccl() set it up, else a clear error naming the flag.
#pragma once
#include <cstddef>

#include "core/dist/communicator.h"

namespace pfq::dist {

bool nccl_enabled();
void nccl_all_reduce(Tensor& t, ReduceOp op);
// Queued on the communication stream after pfq's stream's work so far; the handle's wait()
// makes pfq's stream wait for it.
AllReduceHandle nccl_all_reduce_async(Tensor t, ReduceOp op);
void nccl_broadcast(Tensor& t, int root);
void nccl_shutdown();
// MPI_Bcast of raw bytes (mpi_communicator.cpp): how NCCL's unique id reaches every rank.
void broadcast_bytes(void* data, size_t bytes, int root);

}  // namespace pfq::dist

namespace pfq::dist {
// NCCL on this GPU without MPI (the GPU check of a machine with one GPU and no MPI): a one-rank
// communicator (ncclCommInitAll), an in-place all-reduce of t (CUDA, on `device_index`) with
// each op, then the data-parallel path on it (an all_reduce_async on the communication stream,
// waited for, and a blocking all-reduce), and the communicator destroyed. Throws where the build
// has no NCCL.
void nccl_single_rank_check(Tensor& t, int device_index);
}  // namespace pfq::dist
