/// \file
/// allocator.h — memory for tensor storage on CPU and CUDA.
/// CPU memory comes from a caching allocator: on these VMs first-touch page faults make fresh
/// allocations ~20x slower to write than reused ones, so freed memory is kept and handed out
/// again on the next step: small blocks in size buckets, large ones (from 256 KiB) carved from
/// one address range whose free pieces merge, so a step's memory stays near its live peak.
/// CUDA memory goes through core/cuda's cache.
#pragma once
#include <cstddef>
#include <memory>

#include "core/dtype.h"

namespace pfq {

/// A block of raw bytes on one device. Returned to its allocator's cache on destruction.
class Storage {
 public:
  /// Takes `nbytes` from the device's caching allocator.
  Storage(size_t nbytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  /// Start of the block.
  void* data() const { return data_; }
  /// Size in bytes.
  size_t nbytes() const { return nbytes_; }
  /// Where the block lives.
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
};

/// Counters of the CPU caching allocator. bytes_in_use + bytes_cached is the memory it holds
/// (an upper bound of its resident pages: a block's untouched tail is counted too).
struct AllocatorStats {
  size_t bytes_in_use = 0;     ///< held by live storages
  size_t bytes_cached = 0;     ///< freed, kept for reuse
  /// Largest bytes_in_use seen (since the start or cpu_allocator_reset_peaks).
  size_t peak_bytes_in_use = 0;
  /// Largest bytes_in_use + bytes_cached seen (since the start or cpu_allocator_reset_peaks).
  size_t peak_bytes_held = 0;
  /// Bytes taken from the system so far: what requests needed beyond the cache (fresh pages).
  size_t bytes_from_system = 0;
  size_t allocations = 0;      ///< requests served
  /// Requests served from the cache (memory touched before, no new pages).
  size_t cache_hits = 0;
};

/// The CPU allocator's counters now.
AllocatorStats cpu_allocator_stats();
/// Returns every cached CPU block to the system (e.g. between benchmark phases).
void cpu_allocator_release_cache();
/// Whether blocks from 256 KiB come from the arena: not in AddressSanitizer builds, which keep
/// every block apart (size classes only) so that their redzones catch overruns.
bool cpu_allocator_uses_arena();
/// Starts the peak counters afresh from the current bytes in use and held.
void cpu_allocator_reset_peaks();

}  // namespace pfq
