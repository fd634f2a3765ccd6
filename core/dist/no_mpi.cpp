// no_mpi.cpp — a build without MPI (meson option mpi): a process is a group of one; asking for
// more ranks is the clear error of init_from_environment.
#include "core/dist/communicator.h"
#include "core/error.h"

namespace pfq::dist {

bool mpi_compiled() { return false; }

std::unique_ptr<Communicator> make_mpi_communicator(const LaunchInfo& l) {
  PFQ_FAIL("rank ", l.rank, " of ", l.size, ": this pfq was built without MPI (meson option mpi; Debian: libopenmpi-dev)");
}

void broadcast_bytes(void*, size_t, int) { PFQ_FAIL("broadcast_bytes: this pfq was built without MPI"); }

}  // namespace pfq::dist
