// cpu_arena.cpp — the large-block arena of the CPU caching allocator (core/cpu_arena.h).
// Each range is reserved PROT_NONE (no memory accounted) and made writable in steps as its top
// grows; a block freed next to another free block or to the top merges with it.
#include "core/cpu_arena.h"

#include <sys/mman.h>

#include <algorithm>
#include <iterator>

#include "core/error.h"

namespace pfq::detail {
namespace {

constexpr size_t kReserve = size_t{64} << 30;  // address space per range (a new range when full)
constexpr size_t kCommitStep = size_t{64} << 20;

}  // namespace

CpuArena::~CpuArena() {
  for (Range& r : ranges_) munmap(r.base, r.reserved);
}

CpuArena::Range* CpuArena::new_range(size_t at_least) {
  // 64 GiB of address space when the process may have it; under an address-space limit
  // (ulimit -v, RLIMIT_AS: batch schedulers set one) halves until the reservation fits, down to
  // the block itself
  const size_t need = (at_least + kCommitStep - 1) / kCommitStep * kCommitStep;
  for (size_t bytes = std::max(kReserve, need);; bytes = std::max(need, bytes / 2)) {
    void* p = mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p != MAP_FAILED) {
      ranges_.push_back(Range{static_cast<char*>(p), bytes, 0, 0, 0});
      return &ranges_.back();
    }
    if (bytes == need) return nullptr;
  }
}

CpuArena::Range& CpuArena::range_of(char* p) {
  for (Range& r : ranges_)
    if (p >= r.base && p < r.base + r.reserved) return r;
  PFQ_CHECK(false, "CPU allocator: block ", static_cast<void*>(p), " freed into the large-block arena lies in none of its ranges");
  return ranges_.front();
}

// Carves n bytes at r's top, making pages writable as needed; false when they do not fit or
// the system refuses them.
bool CpuArena::grow_top(Range& r, size_t n, void** out, bool* reused) {
  if (n > r.reserved - r.top) return false;
  const size_t end = r.top + n;
  if (end > r.committed) {
    const size_t to = std::min(r.reserved, (end + kCommitStep - 1) / kCommitStep * kCommitStep);
    if (mprotect(r.base + r.committed, to - r.committed, PROT_READ | PROT_WRITE) != 0) return false;
    r.committed = to;
  }
  *out = r.base + r.top;
  *reused = end <= r.high;
  cached_ -= std::min(r.high, end) - std::min(r.high, r.top);  // the touched pages it takes back
  r.top = end;
  r.high = std::max(r.high, end);
  in_use_ += n;
  return true;
}

void CpuArena::insert_free(char* p, size_t n) {
  free_by_addr_.emplace(p, n);
  free_by_size_.emplace(n, p);
}

void CpuArena::erase_free(std::map<char*, size_t>::iterator it) {
  free_by_size_.erase({it->second, it->first});
  free_by_addr_.erase(it);
}

void* CpuArena::alloc(size_t n, bool* reused) {
  const size_t c = rounded(std::max<size_t>(n, 1));
  // The smallest hole that fits; its tail stays a hole.
  if (auto fit = free_by_size_.lower_bound({c, nullptr}); fit != free_by_size_.end()) {
    auto [size, p] = *fit;
    erase_free(free_by_addr_.find(p));
    if (size > c) insert_free(p + c, size - c);
    cached_ -= c;
    in_use_ += c;
    *reused = true;
    return p;
  }
  void* p = nullptr;
  for (Range& r : ranges_)
    if (grow_top(r, c, &p, reused)) return p;
  Range* r = new_range(c);
  if (r && grow_top(*r, c, &p, reused)) return p;
  return nullptr;
}

void CpuArena::free(void* ptr, size_t n) {
  char* p = static_cast<char*>(ptr);
  size_t c = rounded(std::max<size_t>(n, 1));
  in_use_ -= c;
  cached_ += c;
  Range& r = range_of(p);
  // Merge with the holes on either side (never across ranges: each range is its own mapping).
  if (auto next = free_by_addr_.find(p + c); next != free_by_addr_.end() && p + c < r.base + r.top) {
    c += next->second;
    erase_free(next);
  }
  if (auto after = free_by_addr_.lower_bound(p); after != free_by_addr_.begin()) {
    auto prev = std::prev(after);
    if (prev->first + prev->second == p && prev->first >= r.base) {
      p = prev->first;
      c += prev->second;
      erase_free(prev);
    }
  }
  if (p + c == r.base + r.top) {
    r.top = static_cast<size_t>(p - r.base);  // back into the space above the last block
  } else {
    insert_free(p, c);
  }
}

void CpuArena::release_free_pages() {
  for (auto& [p, size] : free_by_addr_) madvise(p, size, MADV_DONTNEED);
  for (auto& [p, size] : free_by_addr_) cached_ -= size;
  free_by_addr_.clear();
  free_by_size_.clear();
  for (Range& r : ranges_) {
    if (r.high > r.top) madvise(r.base + r.top, r.high - r.top, MADV_DONTNEED);
    cached_ -= r.high - r.top;
    r.high = r.top;
  }
}

}  // namespace pfq::detail
