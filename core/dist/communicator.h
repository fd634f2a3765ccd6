// communicator.h — the process group of a data-parallel run (core/dist/): which rank this process
// is, how many there are, and the collectives the training loop needs (all-reduce, broadcast,
// all-gather of text), on CPU tensors through MPI and on CUDA tensors through NCCL. A process
// started without mpirun / srun is a group of one whose collectives copy nothing, so every caller
// is written once for both. Leaves out the model-level uses (gradient buckets, BN statistics:
// apps/data_parallel.h; sync BN: core/dist/sync_stats.h).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace pfq::dist {

enum class ReduceOp { Sum, Min, Max };

// What a started collective is to its backend (MPI request, NCCL's completion event): test()
// moves it on and says whether it is complete; wait() completes it.
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  virtual bool test() = 0;
  virtual void wait() = 0;
};

// A non-blocking all-reduce (Communicator::all_reduce_async). It holds the tensor, so the
// buffer outlives the collective whatever the caller drops. wait() completes it: a CPU tensor
// then holds the result; a CUDA tensor holds it for every kernel queued after wait() (pfq's
// stream waits for the communication stream). test() is a non-blocking check that also lets MPI
// progress the transfer (Open MPI moves non-blocking collectives only inside MPI calls). A
// handle destroyed before its collective completed (an error is ending the run) keeps the buffer
// alive rather than wait: waiting could hang on ranks that stopped. Move-only; an empty
// (default) handle is complete.
class AllReduceHandle {
 public:
  AllReduceHandle() = default;
  AllReduceHandle(Tensor t, std::unique_ptr<PendingCollective> op);
  AllReduceHandle(AllReduceHandle&& o) noexcept = default;
  AllReduceHandle& operator=(AllReduceHandle&& o) noexcept;
  ~AllReduceHandle();
  bool test();  // true once complete
  void wait();
  const Tensor& tensor() const { return t_; }

 private:
  void abandon();
  Tensor t_;
  std::unique_ptr<PendingCollective> op_;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;        // 0 .. size() - 1
  virtual int size() const = 0;        // ranks in the run
  virtual int local_rank() const = 0;  // among the ranks on this machine (picks the GPU)
  virtual int local_size() const = 0;  // ranks on this machine (splits the CPU cores)
  virtual std::string backend() const = 0;  // "single", "mpi", "mpi+nccl"

  // In place: every rank's t becomes the element-wise reduction of all ranks' t, identical on
  // every rank. t: contiguous float32 / float64 / int64, same shape everywhere; on the CPU (MPI)
  // or a CUDA device (NCCL, when the run has it).
  virtual void all_reduce(Tensor& t, ReduceOp op) = 0;
  // all_reduce started without waiting (same contract on t), completed by the handle's wait().
  // Collectives, blocking or not, must be started in the same order on every rank. The MPI
  // group uses MPI_Iallreduce; CUDA tensors go to NCCL on a communication stream that starts
  // after the work already queued on pfq's stream. This default (the group of one) completes at once.
  virtual AllReduceHandle all_reduce_async(Tensor t, ReduceOp op);
  // In place: every rank's t becomes root's.
  virtual void broadcast(Tensor& t, int root) = 0;
  // Every rank's text, in rank order, on every rank.
  virtual std::vector<std::string> all_gather(const std::string& text) = 0;
  virtual void barrier() = 0;
  // Ends every rank of the run at once with exit status `code` (after this rank printed its error):
  // what a rank that failed calls so the others do not wait forever in a collective.
  [[noreturn]] virtual void abort(int code) = 0;
};

// The launcher's view of this process from the environment (Open MPI's OMPI_COMM_WORLD_*,
// PMIx / PMI, Slurm's srun): world size 1 when none is set.
struct LaunchInfo {
  int rank = 0, size = 1, local_rank = 0, local_size = 1;
  std::string launcher;  // "", "mpirun", "srun", "pmi"
};
LaunchInfo launch_from_environment();

// Sets up the process group once, at the start of main: a group of one unless the environment
// says this process is one of several ranks, then MPI (MPI_Init_thread). Throws a clear error
// when several ranks are asked for and this build has no MPI. finalize() ends it (MPI_Finalize).
void init_from_environment();
void finalize();
bool mpi_compiled();   // meson option mpi
bool nccl_compiled();  // meson option nccl (needs the CUDA backend)

// The run's process group (a group of one before init_from_environment).
Communicator& world();
inline bool is_main_rank() { return world().rank() == 0; }

// While alive, world() on this process is a group of one: work that one rank does alone (the
// workflow's import, PfQ and integer checks, on rank 0 while the others wait) then cannot enter a
// collective that the other ranks never join. Scopes nest; the run's group comes back at the end.
class SoloScope {
 public:
  SoloScope();
  ~SoloScope();
  SoloScope(const SoloScope&) = delete;
  SoloScope& operator=(const SoloScope&) = delete;

 private:
  std::unique_ptr<Communicator> solo_;
  Communicator* outer_;
};

// Ranks' collectives on CUDA tensors go through NCCL, set up by this call (the unique id
// broadcast over MPI; each rank on `device`). Throws when the build has no NCCL and size() > 1.
void enable_nccl(int device_index);

// Implementations (communicator.cpp, mpi_communicator.cpp, nccl_communicator.cpp).
std::unique_ptr<Communicator> make_single_communicator();
std::unique_ptr<Communicator> make_mpi_communicator(const LaunchInfo& launch);
void set_world(std::unique_ptr<Communicator> c);

}  // namespace pfq::dist
