// cpu_arena.h — where the CPU caching allocator (core/allocator.cpp) puts large blocks: one
// reserved address range carved best-fit, freed neighbours merged, pages kept once touched.
// Not thread-safe (the allocator's mutex guards it); small blocks stay in allocator.cpp's classes.
//
// Why: caching every freed block in its own size class keeps each activation size of a network
// resident once used (MobileNetV2's inference held 2.9x its live bytes); carving one range lets a
// freed block serve any smaller or, merged with its neighbours, larger request, so the touched
// pages stay near the live peak, and a repeated step reuses them without new page faults.
#pragma once
#include <cstddef>
#include <map>
#include <set>
#include <utility>
#include <vector>

namespace pfq::detail {

/// Large CPU blocks from reserved address ranges (mmap PROT_NONE, made writable as they grow).
class CpuArena {
 public:
  /// Blocks are multiples of this (page-aligned starts).
  static constexpr size_t kGrain = 4096;
  CpuArena() = default;
  CpuArena(const CpuArena&) = delete;
  CpuArena& operator=(const CpuArena&) = delete;
  ~CpuArena();

  /// A block of at least `n` bytes (rounded to kGrain; the same rounding on free), or nullptr
  /// when the system refuses the address range or the pages. `reused` is set when the block lies
  /// wholly in pages touched before (no new page faults).
  void* alloc(size_t n, bool* reused);
  /// Returns a block of `n` bytes (the size given to alloc) from alloc.
  void free(void* p, size_t n);
  /// Gives the pages of every free block back to the system (MADV_DONTNEED); blocks in use stay.
  /// The holes between blocks in use are left out of later allocations (address space is
  /// plentiful; this runs between phases, not per step), the space above the last block is reused.
  void release_free_pages();

  /// Freed bytes whose pages may be resident: the holes between blocks in use and, in each range,
  /// the touched pages above its last block in use.
  size_t bytes_cached() const { return cached_; }
  /// Bytes handed out and not yet freed.
  size_t bytes_in_use() const { return in_use_; }

  static size_t rounded(size_t n) { return (n + kGrain - 1) / kGrain * kGrain; }

 private:
  struct Range {
    char* base = nullptr;
    size_t reserved = 0;   // address space
    size_t committed = 0;  // made writable (mprotect), from base
    size_t top = 0;        // everything at or above top is free and merged into the wilderness
    size_t high = 0;       // high-water mark of top: pages below may be resident
  };
  Range* new_range(size_t at_least);
  Range& range_of(char* p);
  bool grow_top(Range& r, size_t n, void** out, bool* reused);
  void insert_free(char* p, size_t n);
  void erase_free(std::map<char*, size_t>::iterator it);

  std::vector<Range> ranges_;
  std::map<char*, size_t> free_by_addr_;         // start -> size, blocks below their range's top
  std::set<std::pair<size_t, char*>> free_by_size_;  // (size, start): best fit
  size_t cached_ = 0, in_use_ = 0;
};

}  // namespace pfq::detail
