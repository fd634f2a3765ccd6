// allocator.cpp — the CPU caching allocator and Storage's dispatch to CPU or CUDA memory.
// Blocks are rounded up (64 B alignment, sizes to 1/8-octave classes) and cached per class.
#include "core/allocator.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

#include "core/cuda/kernels.h"
#include "core/error.h"

namespace pfq {
namespace {

constexpr size_t kAlign = 64;

// Rounds to a size class so that blocks of nearly equal sizes are interchangeable.
size_t size_class(size_t n) {
  if (n <= 4096) return (n + kAlign - 1) / kAlign * kAlign;
  size_t p = 1;
  while (p * 2 <= n) p *= 2;
  size_t step = p / 8;
  return (n + step - 1) / step * step;
}

struct CpuCache {
  std::mutex mu;
  std::multimap<size_t, void*> free_blocks;
  AllocatorStats stats;

  void* alloc(size_t n) {
    size_t c = size_class(std::max<size_t>(n, 1));
    std::lock_guard<std::mutex> lock(mu);
    stats.allocations++;
    void* p = nullptr;
    auto it = free_blocks.find(c);
    if (it != free_blocks.end()) {
      p = it->second;
      free_blocks.erase(it);
      stats.bytes_cached -= c;
      stats.cache_hits++;
    } else {
      p = std::aligned_alloc(kAlign, c);
      if (!p) {
        release_locked();
        p = std::aligned_alloc(kAlign, c);
      }
      PFQ_CHECK(p, "out of CPU memory allocating ", n, " bytes");
    }
    stats.bytes_in_use += c;
    stats.peak_bytes_in_use = std::max(stats.peak_bytes_in_use, stats.bytes_in_use);
    return p;
  }
  void free(void* p, size_t n) {
    size_t c = size_class(std::max<size_t>(n, 1));
    std::lock_guard<std::mutex> lock(mu);
    stats.bytes_in_use -= c;
    free_blocks.emplace(c, p);
    stats.bytes_cached += c;
  }
  void release_locked() {
    for (auto& kv : free_blocks) std::free(kv.second);
    free_blocks.clear();
    stats.bytes_cached = 0;
  }
  ~CpuCache() { release_locked(); }
};

CpuCache& cpu_cache() {
  static CpuCache* cache = new CpuCache();  // never destroyed: storages may outlive statics
  return *cache;
}

}  // namespace

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  if (device.is_cpu()) {
    data_ = cpu_cache().alloc(nbytes);
  } else {
    data_ = cuda::device_alloc(nbytes, device.index);
  }
}

Storage::~Storage() {
  if (!data_) return;
  if (device_.is_cpu()) {
    cpu_cache().free(data_, nbytes_);
  } else {
    cuda::device_free(data_, nbytes_, device_.index);
  }
}

AllocatorStats cpu_allocator_stats() {
  std::lock_guard<std::mutex> lock(cpu_cache().mu);
  return cpu_cache().stats;
}

void cpu_allocator_release_cache() {
  std::lock_guard<std::mutex> lock(cpu_cache().mu);
  cpu_cache().release_locked();
}

}  // namespace pfq
