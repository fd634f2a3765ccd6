// communicator.cpp — the group of one, the launcher's environment and the process-wide group
// (communicator.h).
#include "core/dist/communicator.h"

#include <cstdlib>
#include <cstdio>

#include "core/error.h"

namespace pfq::dist {

namespace {

class SingleCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  int local_size() const override { return 1; }
  std::string backend() const override { return "single"; }
  void all_reduce(Tensor& t, ReduceOp) override { PFQ_CHECK(t.defined(), "all_reduce: undefined tensor"); }
  void broadcast(Tensor& t, int root) override {
    PFQ_CHECK(t.defined() && root == 0, "broadcast: undefined tensor or root ", root, " outside a group of one");
  }
  std::vector<std::string> all_gather(const std::string& text) override { return {text}; }
  void barrier() override {}
  [[noreturn]] void abort(int code) override { std::exit(code); }
};

std::unique_ptr<Communicator>& world_slot() {
  static std::unique_ptr<Communicator> w = make_single_communicator();
  return w;
}

// The first of `names` that is set, parsed as a non-negative int; -1 when none is.
int env_int(std::initializer_list<const char*> names) {
  for (const char* n : names) {
    const char* v = std::getenv(n);
    if (!v || !*v) continue;
    char* end = nullptr;
    const long x = std::strtol(v, &end, 10);
    PFQ_CHECK(*end == '\0' && x >= 0 && x < (1 << 24), "environment variable ", n, "='", v, "': expected a rank or a count");
    return static_cast<int>(x);
  }
  return -1;
}

}  // namespace

AllReduceHandle::AllReduceHandle(Tensor t, std::unique_ptr<PendingCollective> op) : t_(std::move(t)), op_(std::move(op)) {}

AllReduceHandle& AllReduceHandle::operator=(AllReduceHandle&& o) noexcept {
  if (this != &o) {
    abandon();
    t_ = std::move(o.t_);
    op_ = std::move(o.op_);
  }
  return *this;
}

AllReduceHandle::~AllReduceHandle() { abandon(); }

// Still in flight: the backend may write into the buffer and hold its request after this, so
// both are left alive on purpose (a leak that only a run ending with an error reaches).
void AllReduceHandle::abandon() {
  if (!op_) return;
  new Tensor(std::move(t_));
  (void)op_.release();
}

bool AllReduceHandle::test() {
  if (op_ && op_->test()) op_.reset();
  return !op_;
}

void AllReduceHandle::wait() {
  if (!op_) return;
  op_->wait();
  op_.reset();
}

AllReduceHandle Communicator::all_reduce_async(Tensor t, ReduceOp op) {
  all_reduce(t, op);
  return AllReduceHandle(std::move(t), nullptr);
}

std::unique_ptr<Communicator> make_single_communicator() { return std::make_unique<SingleCommunicator>(); }

LaunchInfo launch_from_environment() {
  LaunchInfo l;
  l.local_rank = l.local_size = -1;  // unknown until a launcher's variables say
  if (env_int({"OMPI_COMM_WORLD_SIZE"}) >= 0) {
    l.launcher = "mpirun";
    l.size = env_int({"OMPI_COMM_WORLD_SIZE"});
    l.rank = env_int({"OMPI_COMM_WORLD_RANK"});
    l.local_rank = env_int({"OMPI_COMM_WORLD_LOCAL_RANK"});
    l.local_size = env_int({"OMPI_COMM_WORLD_LOCAL_SIZE"});
  } else if (env_int({"SLURM_NTASKS"}) >= 0 && env_int({"SLURM_PROCID"}) >= 0) {
    l.launcher = "srun";
    l.size = env_int({"SLURM_NTASKS"});
    l.rank = env_int({"SLURM_PROCID"});
    l.local_rank = env_int({"SLURM_LOCALID"});
  } else if (env_int({"PMIX_SIZE", "PMI_SIZE"}) >= 0) {
    l.launcher = "pmi";
    l.size = env_int({"PMIX_SIZE", "PMI_SIZE"});
    l.rank = env_int({"PMIX_RANK", "PMI_RANK"});
    l.local_rank = env_int({"PMIX_LOCAL_RANK", "MPI_LOCALRANKID"});
    l.local_size = env_int({"PMIX_LOCAL_SIZE", "MPI_LOCALNRANKS"});
  }
  if (l.rank < 0) l.rank = 0;
  if (l.size < 1) l.size = 1;
  // Unknown from the environment: one machine (MPI's communicator counts the ranks per machine itself).
  if (l.local_rank < 0) l.local_rank = l.rank;
  if (l.local_size < 1) l.local_size = l.size;
  PFQ_CHECK(l.rank < l.size && l.local_rank < l.local_size, "launcher environment (", l.launcher, "): rank ", l.rank, " of ", l.size,
            ", local rank ", l.local_rank, " of ", l.local_size, " is inconsistent");
  return l;
}

void init_from_environment() {
  const LaunchInfo l = launch_from_environment();
  if (l.size <= 1) return;  // a single process: no MPI, exactly as without a launcher
  PFQ_CHECK(mpi_compiled(), "started as rank ", l.rank, " of ", l.size, " by ", l.launcher,
            ", but this pfq was built without MPI (meson option mpi; Debian: libopenmpi-dev): run one process, or rebuild with MPI");
  set_world(make_mpi_communicator(l));
}

// The group of one that a SoloScope puts in front of the run's group.
Communicator*& solo_override() {
  static Communicator* c = nullptr;
  return c;
}

SoloScope::SoloScope() : solo_(make_single_communicator()), outer_(solo_override()) { solo_override() = solo_.get(); }
SoloScope::~SoloScope() { solo_override() = outer_; }

Communicator& world() { return solo_override() ? *solo_override() : *world_slot(); }
void set_world(std::unique_ptr<Communicator> c) { world_slot() = std::move(c); }
void finalize() { world_slot() = make_single_communicator(); }

}  // namespace pfq::dist
