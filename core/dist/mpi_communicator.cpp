// mpi_communicator.cpp — the process group over MPI (communicator.h): MPI_Init_thread at start,
// CPU tensors reduced with MPI_Allreduce in place (MPI_Iallreduce when asynchronous), CUDA
// tensors handed to NCCL (nccl_ops.h),
// the ranks of one machine counted with MPI_Comm_split_type. Errors in MPI calls are returned,
// not fatal (MPI_ERRORS_RETURN), so they reach the user as pfq errors naming the call.
// Open MPI's and MPICH's deprecated C++ bindings are not used (the C API is).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <cstdio>

#include "core/dist/communicator.h"
#include "core/dist/nccl_ops.h"
#include "core/error.h"

namespace pfq::dist {

bool mpi_compiled() { return true; }

namespace {

void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  PFQ_FAIL(what, " failed: ", std::string(text, static_cast<size_t>(len)));
}

MPI_Datatype mpi_type(DType d) {
  switch (d) {
    case DType::Float32: return MPI_FLOAT;
    case DType::Float64: return MPI_DOUBLE;
    case DType::Int64: return MPI_INT64_T;
    default: PFQ_FAIL("collective: dtype ", dtype_name(d), " is not supported (float32, float64, int64)");
  }
}

MPI_Op mpi_op(ReduceOp op) { return op == ReduceOp::Sum ? MPI_SUM : op == ReduceOp::Min ? MPI_MIN : MPI_MAX; }

// An MPI_Iallreduce in flight. MPI_Test and MPI_Wait set the request to MPI_REQUEST_NULL once it
// completes, after which both return at once.
class MpiPending final : public PendingCollective {
 public:
  bool test() override {
    int done = 0;
    check_mpi(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Test");
    return done != 0;
  }
  void wait() override { check_mpi(MPI_Wait(&request, MPI_STATUS_IGNORE), "MPI_Wait"); }
  MPI_Request request = MPI_REQUEST_NULL;
};

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(const LaunchInfo& l) {
    int provided = 0;
    check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    PFQ_CHECK(rank_ == l.rank && size_ == l.size, "MPI says rank ", rank_, " of ", size_, " but the launcher (", l.launcher,
              ") said rank ", l.rank, " of ", l.size);
    check_mpi(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node_), "MPI_Comm_split_type");
    MPI_Comm_rank(node_, &local_rank_);
    MPI_Comm_size(node_, &local_size_);
  }
  ~MpiCommunicator() override {
    nccl_shutdown();
    MPI_Comm_free(&node_);
    MPI_Finalize();
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  int local_size() const override { return local_size_; }
  std::string backend() const override { return nccl_enabled() ? "mpi+nccl" : "mpi"; }

  void all_reduce(Tensor& t, ReduceOp op) override {
    check_tensor(t, "all_reduce");
    if (t.device().is_cuda()) return nccl_all_reduce(t, op);
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, t.raw_data(), static_cast<int>(t.numel()), mpi_type(t.dtype()), mpi_op(op), MPI_COMM_WORLD),
              "MPI_Allreduce");
  }
  AllReduceHandle all_reduce_async(Tensor t, ReduceOp op) override {
    check_tensor(t, "all_reduce_async");
    if (t.device().is_cuda()) return nccl_all_reduce_async(std::move(t), op);
    auto pending = std::make_unique<MpiPending>();
    check_mpi(MPI_Iallreduce(MPI_IN_PLACE, t.raw_data(), static_cast<int>(t.numel()), mpi_type(t.dtype()), mpi_op(op), MPI_COMM_WORLD,
                             &pending->request),
              "MPI_Iallreduce");
    return AllReduceHandle(std::move(t), std::move(pending));
  }
  void broadcast(Tensor& t, int root) override {
    check_tensor(t, "broadcast");
    PFQ_CHECK(root >= 0 && root < size_, "broadcast: root ", root, " is not a rank of ", size_);
    if (t.device().is_cuda()) return nccl_broadcast(t, root);
    check_mpi(MPI_Bcast(t.raw_data(), static_cast<int>(t.numel()), mpi_type(t.dtype()), root, MPI_COMM_WORLD), "MPI_Bcast");
  }
  std::vector<std::string> all_gather(const std::string& text) override {
    int len = static_cast<int>(text.size());
    std::vector<int> lens(size_), offs(size_);
    check_mpi(MPI_Allgather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, MPI_COMM_WORLD), "MPI_Allgather");
    int total = 0;
    for (int r = 0; r < size_; ++r) offs[r] = total, total += lens[r];
    std::string all(static_cast<size_t>(total), '\0');
    check_mpi(MPI_Allgatherv(text.data(), len, MPI_CHAR, all.data(), lens.data(), offs.data(), MPI_CHAR, MPI_COMM_WORLD),
              "MPI_Allgatherv");
    std::vector<std::string> out;
    for (int r = 0; r < size_; ++r) out.push_back(all.substr(offs[r], lens[r]));
    return out;
  }
  void barrier() override { check_mpi(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }
  [[noreturn]] void abort(int code) override {
    std::fflush(stdout);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }

 private:
  static void check_tensor(const Tensor& t, const char* what) {
    PFQ_CHECK(t.defined() && t.is_contiguous(), what, ": expected a defined contiguous tensor");
    PFQ_CHECK(t.numel() < (int64_t{1} << 31), what, ": ", t.numel(), " elements exceed one MPI message (2^31 - 1); split the buffer");
  }
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
  MPI_Comm node_ = MPI_COMM_NULL;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(const LaunchInfo& launch) { return std::make_unique<MpiCommunicator>(launch); }

// NCCL's unique id travels over MPI from rank 0 (nccl_communicator.cpp calls this).
void broadcast_bytes(void* data, size_t bytes, int root) {
  check_mpi(MPI_Bcast(data, static_cast<int>(bytes), MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
}

}  // namespace pfq::dist
