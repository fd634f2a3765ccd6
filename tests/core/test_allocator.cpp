// test_allocator.cpp — the CPU caching allocator: the large-block arena's best fit, merging and
// release (core/cpu_arena.h), and a network's repeated inference batches holding memory near
// their live peak without taking new memory after the first batch (core/allocator.h).
#include <doctest/doctest.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <vector>

#include "core/allocator.h"
#include "core/autograd.h"
#include "core/cpu_arena.h"
#include "core/tensor.h"
#include "layers/models/registry.h"

using namespace pfq;

namespace {
constexpr size_t kMiB = size_t{1} << 20;
}

TEST_CASE("allocator: the arena serves a request from freed neighbours merged, and its pages again after all is freed") {
  detail::CpuArena arena;
  bool reused = true;
  char* a = static_cast<char*>(arena.alloc(1 * kMiB, &reused));
  CHECK_FALSE(reused);
  char* b = static_cast<char*>(arena.alloc(2 * kMiB, &reused));
  char* c = static_cast<char*>(arena.alloc(1 * kMiB, &reused));
  REQUIRE((a && b && c));
  CHECK(b == a + 1 * kMiB);
  CHECK(c == b + 2 * kMiB);
  arena.free(a, 1 * kMiB);
  arena.free(b, 2 * kMiB);  // merges with a's hole: one hole of 3 MiB below c
  CHECK(arena.bytes_cached() == 3 * kMiB);
  char* d = static_cast<char*>(arena.alloc(3 * kMiB, &reused));
  CHECK(d == a);
  CHECK(reused);
  // A smaller request takes the smallest hole that fits, leaving the rest a hole.
  arena.free(d, 3 * kMiB);
  char* e = static_cast<char*>(arena.alloc(kMiB / 2, &reused));
  CHECK(e == a);
  CHECK(arena.bytes_cached() == 3 * kMiB - kMiB / 2);
  arena.free(e, kMiB / 2);
  arena.free(c, 1 * kMiB);  // the whole range is free: everything merged back above the bottom
  CHECK(arena.bytes_in_use() == 0);
  CHECK(arena.bytes_cached() == 4 * kMiB);
  char* f = static_cast<char*>(arena.alloc(4 * kMiB, &reused));
  CHECK(f == a);
  CHECK(reused);
  // Sizes round up to whole pages, on free as on alloc.
  char* g = static_cast<char*>(arena.alloc(100, &reused));
  CHECK(g == f + 4 * kMiB);
  CHECK(arena.bytes_in_use() == 4 * kMiB + detail::CpuArena::kGrain);
  arena.free(g, 100);
  arena.free(f, 4 * kMiB);
  arena.release_free_pages();
  CHECK(arena.bytes_cached() == 0);
  char* h = static_cast<char*>(arena.alloc(1 * kMiB, &reused));
  CHECK(h == a);
  CHECK_FALSE(reused);  // its pages went back to the system
  arena.free(h, 1 * kMiB);
}

TEST_CASE("allocator: repeated inference batches take no new memory after the first and hold near their live peak") {
  models::ModelConfig cfg;
  cfg.arch = "mobilenetv2";  // many activation sizes (expansions 6x), the case size classes kept resident
  cfg.in_channels = 3;
  cfg.input_size = 32;
  cfg.num_classes = 10;
  ModulePtr model = models::build_model(cfg);
  model->train(false);
  Generator gen(3);
  const Tensor full = Tensor::randn({16, 3, 32, 32}, gen);
  const Tensor last = Tensor::randn({11, 3, 32, 32}, gen);  // an evaluation's short last batch
  auto run = [&](const Tensor& x) {
    NoGradGuard ng;
    Tensor y = model->forward(x);
    REQUIRE(y.size(0) == x.size(0));
  };
  auto held = [](const AllocatorStats& s) { return s.bytes_in_use + s.bytes_cached; };
  cpu_allocator_release_cache();
  cpu_allocator_reset_peaks();
  // A "dataset" of three full batches and a short one, evaluated three times.
  std::vector<AllocatorStats> after_batch, after_pass;
  for (int pass = 0; pass < 3; ++pass) {
    for (int i = 0; i < 3; ++i) {
      run(full);
      after_batch.push_back(cpu_allocator_stats());
    }
    run(last);
    after_pass.push_back(cpu_allocator_stats());
  }
  // The first pass: the full batches after the first take nothing new.
  for (size_t i = 1; i < 3; ++i) {
    INFO("full batch ", i + 1, ": held ", held(after_batch[i]), " from system ", after_batch[i].bytes_from_system, "; after the first: held ",
         held(after_batch[0]), " from system ", after_batch[0].bytes_from_system);
    CHECK(after_batch[i].bytes_from_system == after_batch[0].bytes_from_system);
    CHECK(held(after_batch[i]) == held(after_batch[0]));
  }
  // The short batch's sizes may take some memory once; after the first pass no batch does.
  for (size_t i = 3; i < after_batch.size(); ++i) {
    INFO("full batch ", i + 1, ": held ", held(after_batch[i]), " from system ", after_batch[i].bytes_from_system, "; after the first pass: held ",
         held(after_pass[0]), " from system ", after_pass[0].bytes_from_system);
    CHECK(after_batch[i].bytes_from_system == after_pass[0].bytes_from_system);
    CHECK(held(after_batch[i]) == held(after_pass[0]));
  }
  for (size_t i = 1; i < after_pass.size(); ++i) {
    INFO("pass ", i + 1, ": held ", held(after_pass[i]), " from system ", after_pass[i].bytes_from_system, "; after the first: held ",
         held(after_pass[0]), " from system ", after_pass[0].bytes_from_system);
    CHECK(after_pass[i].bytes_from_system == after_pass[0].bytes_from_system);
    CHECK(held(after_pass[i]) == held(after_pass[0]));
    CHECK(after_pass[i].cache_hits - after_pass[i - 1].cache_hits == after_pass[i].allocations - after_pass[i - 1].allocations);
  }
  const AllocatorStats& end = after_pass.back();
  // What the allocator holds at its peak against what was in use at the peak (the weights and the
  // live activations): size classes alone (the allocator before the arena) held 3.9x here, the
  // arena holds 1.16x.
  INFO("peak held ", end.peak_bytes_held, " peak in use ", end.peak_bytes_in_use);
  MESSAGE("peak held / peak in use ", static_cast<double>(end.peak_bytes_held) / static_cast<double>(end.peak_bytes_in_use));
  if (!cpu_allocator_uses_arena()) {
    MESSAGE("AddressSanitizer build: size classes only, the held / in-use ratio is not checked");
    return;
  }
  CHECK(static_cast<double>(end.peak_bytes_held) <= 1.2 * static_cast<double>(end.peak_bytes_in_use));
}

TEST_CASE("allocator: under an address-space limit (ulimit -v) the arena reserves less and still serves large blocks") {
  if (cpu_allocator_uses_arena() == false) {
    MESSAGE("skipped: sanitizer build (no arena)");
    return;
  }
  // in a child process: the limit cannot be lifted again once set
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    rlimit lim{};
    getrlimit(RLIMIT_AS, &lim);
    // the address space in use now plus 2 GiB: far below one 64 GiB reservation
    long pages = 0;
    if (FILE* f = std::fopen("/proc/self/statm", "r")) {
      if (std::fscanf(f, "%ld", &pages) != 1) pages = 0;
      std::fclose(f);
    }
    lim.rlim_cur = static_cast<rlim_t>(pages) * static_cast<rlim_t>(sysconf(_SC_PAGESIZE)) + (rlim_t{2} << 30);
    if (setrlimit(RLIMIT_AS, &lim) != 0) _exit(3);
    detail::CpuArena arena;
    bool reused = false;
    void* p = arena.alloc(256 * kMiB, &reused);
    if (!p) _exit(1);
    static_cast<char*>(p)[256 * kMiB - 1] = 1;  // the pages are usable
    arena.free(p, 256 * kMiB);
    _exit(0);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
