// allocator.cpp — the CPU caching allocator and Storage's dispatch to CPU or CUDA memory.
// Small blocks are rounded up (64 B alignment, sizes to 1/8-octave classes) and cached per class;
// large ones (activations, big weights) come from one arena (core/cpu_arena.h) carved best-fit,
// so that a freed activation's pages serve the next one of any size.
#include "core/allocator.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

#include "core/cpu_arena.h"
#include "core/cuda/kernels.h"
#include "core/error.h"

namespace pfq {
namespace {

constexpr size_t kAlign = 64;
// From this size on blocks come from the arena: at 64 pages the rounding to whole pages costs
// under 2%, and below it the size classes' caches stay small. AddressSanitizer builds keep
// every block apart (size classes only), so that its redzones still catch overruns.
#if defined(__SANITIZE_ADDRESS__)
#define PFQ_ASAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PFQ_ASAN_BUILD 1
#endif
#endif
#ifdef PFQ_ASAN_BUILD
constexpr size_t kArenaMin = SIZE_MAX;
#else
constexpr size_t kArenaMin = size_t{256} << 10;
#endif

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
  std::multimap<size_t, void*> free_blocks;  // small blocks by size class
  detail::CpuArena arena;                    // large blocks
  size_t small_in_use = 0, small_cached = 0;
  AllocatorStats stats;

  size_t held() const { return small_in_use + small_cached + arena.bytes_in_use() + arena.bytes_cached(); }
  void alloc_stats(size_t held_before, bool hit) {
    stats.allocations++;
    if (hit) stats.cache_hits++;
    const size_t now = held();
    stats.bytes_from_system += now - held_before;
    stats.bytes_in_use = small_in_use + arena.bytes_in_use();
    stats.bytes_cached = small_cached + arena.bytes_cached();
    stats.peak_bytes_in_use = std::max(stats.peak_bytes_in_use, stats.bytes_in_use);
    stats.peak_bytes_held = std::max(stats.peak_bytes_held, now);
  }

  void* alloc(size_t n) {
    std::lock_guard<std::mutex> lock(mu);
    size_t before = held();
    if (n >= kArenaMin) {
      bool reused = false;
      void* p = arena.alloc(n, &reused);
      if (!p) {
        release_locked();
        before = held();
        p = arena.alloc(n, &reused);
      }
      PFQ_CHECK(p, "out of CPU memory allocating ", n, " bytes (", arena.bytes_in_use(), " bytes of large blocks in use)");
      alloc_stats(before, reused);
      return p;
    }
    size_t c = size_class(std::max<size_t>(n, 1));
    void* p = nullptr;
    auto it = free_blocks.find(c);
    const bool hit = it != free_blocks.end();
    if (hit) {
      p = it->second;
      free_blocks.erase(it);
      small_cached -= c;
    } else {
      p = std::aligned_alloc(kAlign, c);
      if (!p) {
        release_locked();
        before = held();
        p = std::aligned_alloc(kAlign, c);
      }
      PFQ_CHECK(p, "out of CPU memory allocating ", n, " bytes");
    }
    small_in_use += c;
    alloc_stats(before, hit);
    return p;
  }
  void free(void* p, size_t n) {
    std::lock_guard<std::mutex> lock(mu);
    if (n >= kArenaMin) {
      arena.free(p, n);
    } else {
      size_t c = size_class(std::max<size_t>(n, 1));
      small_in_use -= c;
      free_blocks.emplace(c, p);
      small_cached += c;
    }
    stats.bytes_in_use = small_in_use + arena.bytes_in_use();
    stats.bytes_cached = small_cached + arena.bytes_cached();
  }
  void release_locked() {
    for (auto& kv : free_blocks) std::free(kv.second);
    free_blocks.clear();
    small_cached = 0;
    arena.release_free_pages();
    stats.bytes_cached = arena.bytes_cached();
  }
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

bool cpu_allocator_uses_arena() { return kArenaMin != SIZE_MAX; }

void cpu_allocator_reset_peaks() {
  CpuCache& c = cpu_cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.stats.peak_bytes_in_use = c.stats.bytes_in_use;
  c.stats.peak_bytes_held = c.held();
}

}  // namespace pfq
