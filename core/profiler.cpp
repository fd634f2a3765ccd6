// profiler.cpp — the table behind profiler.h. Ops run on the calling thread (kernels fan out
// to OpenMP inside a scope), so the scope stack is thread-local and the table takes a lock
// only when a scope closes with profiling on.
#include "core/profiler.h"

#include <algorithm>
#include <mutex>
#include <unordered_map>

namespace pfq::profiler {

namespace detail {
std::atomic<bool> g_enabled{false};
}

namespace {
std::mutex g_mutex;
std::unordered_map<std::string, Row>& table() {
  static std::unordered_map<std::string, Row> t;
  return t;
}
thread_local Scope* t_top = nullptr;  // innermost open scope of this thread
std::atomic<void (*)()> g_sync{nullptr};
std::atomic<bool> g_shapes{false};
}  // namespace

void set_shapes(bool on) { g_shapes.store(on, std::memory_order_relaxed); }
bool shapes() { return enabled() && g_shapes.load(std::memory_order_relaxed); }

void set_enabled(bool on) { detail::g_enabled.store(on, std::memory_order_relaxed); }
void set_device_sync(void (*sync)()) { g_sync.store(sync); }

void reset() {
  std::lock_guard<std::mutex> lock(g_mutex);
  table().clear();
}

std::vector<Row> rows() {
  std::vector<Row> out;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    for (const auto& [name, row] : table()) out.push_back(row);
  }
  std::sort(out.begin(), out.end(), [](const Row& a, const Row& b) { return a.total_ms > b.total_ms || (a.total_ms == b.total_ms && a.name < b.name); });
  return out;
}

void Scope::open(const char* name) {
  active_ = true;
  name_ = name;
  parent_ = t_top;
  t_top = this;
  if (auto* sync = g_sync.load(std::memory_order_relaxed)) sync();  // the parent's kernels so far are the parent's
  start_ = std::chrono::steady_clock::now();
}

void Scope::close() {
  if (auto* sync = g_sync.load(std::memory_order_relaxed)) sync();
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
  t_top = parent_;
  if (parent_) parent_->child_ms_ += ms;
  std::lock_guard<std::mutex> lock(g_mutex);
  Row& r = table()[name_];
  if (r.name.empty()) r.name = name_;
  r.total_ms += ms - child_ms_;
  r.calls += 1;
}

}  // namespace pfq::profiler
