// profiler.h — a per-op time breakdown for `pfq bench --profile`: scopes at the op entry
// points (forward kernels, each autograd node's backward, gradient accumulation, optimizer
// steps) add their wall time to a table keyed by name. Times are exclusive: a scope's time
// excludes the scopes opened inside it, so the rows add up to the profiled total.
// Off by default; a disabled scope costs one relaxed atomic load. On a GPU, kernels run after
// their launch returns: set_device_sync() makes every scope wait for the device when it opens
// and closes, so a row holds its kernels' time (and the step runs slower by the waits).
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace pfq::profiler {

namespace detail {
extern std::atomic<bool> g_enabled;
}

inline bool enabled() { return detail::g_enabled.load(std::memory_order_relaxed); }
void set_enabled(bool on);
// Shape rows (`pfq bench --profile-shapes`): ops that support it (conv2d) also open an inner
// scope named for the pass and geometry, so their time splits by layer shape.
void set_shapes(bool on);
bool shapes();
void reset();  // forgets every row
// Called at each scope's open and close while profiling (nullptr: none, the default).
void set_device_sync(void (*sync)());

struct Row {
  std::string name;
  double total_ms = 0;  // exclusive wall time over all calls
  int64_t calls = 0;
};
std::vector<Row> rows();  // largest total first

class Scope {
 public:
  explicit Scope(const char* name) {
    if (enabled()) open(name);
  }
  explicit Scope(std::string name) {
    if (enabled()) {
      owned_ = std::move(name);
      open(owned_.c_str());
    }
  }
  ~Scope() {
    if (active_) close();
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  void open(const char* name);
  void close();
  bool active_ = false;
  const char* name_ = nullptr;
  std::string owned_;  // names built at run time ("conv2d bwd")
  std::chrono::steady_clock::time_point start_;
  double child_ms_ = 0;
  Scope* parent_ = nullptr;
};

}  // namespace pfq::profiler

#define PFQ_PROFILE_CAT2(a, b) a##b
#define PFQ_PROFILE_CAT(a, b) PFQ_PROFILE_CAT2(a, b)
// Times the rest of the enclosing block under `name` when profiling is on.
#define PFQ_PROFILE(name) ::pfq::profiler::Scope PFQ_PROFILE_CAT(pfq_profile_scope_, __LINE__)(name)
