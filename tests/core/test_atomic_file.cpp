// test_atomic_file.cpp — tests of core/io/atomic_file: new and replaced files, a producer that
// throws midway, a write that fails (file-size limit, like a full disk), a missing directory,
// and a process killed mid-write; the old file must survive and no temp file may be left.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/io/atomic_file.h"

namespace fs = std::filesystem;
using pfq::io::WriteBytes;

namespace {

struct AtomicTestDir {
  fs::path dir;
  AtomicTestDir() {
    static int counter = 0;
    dir = fs::temp_directory_path() /
          ("pfq-atomic-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~AtomicTestDir() { fs::remove_all(dir); }
  std::string file(const std::string& name) const { return (dir / name).string(); }
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
};

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7) % 26);
  return s;
}

}  // namespace

TEST_CASE("write_file_atomic creates and replaces a file, leaving no temp file") {
  AtomicTestDir t;
  const std::string path = t.file("out.bin");
  pfq::io::write_file_atomic(path, "first version");
  CHECK(slurp(path) == "first version");
  const std::string big = pattern(3 << 20);
  pfq::io::write_file_atomic(path, big);
  CHECK(slurp(path) == big);
  pfq::io::write_file_atomic(path, "");
  CHECK(fs::file_size(path) == 0);
  CHECK(t.entries() == std::vector<std::string>{"out.bin"});
}

TEST_CASE("write_file_atomic_streamed joins many pieces in order") {
  AtomicTestDir t;
  const std::string path = t.file("streamed.bin");
  // Pieces of varied sizes, some larger than the 1 MiB buffer, exercise every flush path.
  const std::string data = pattern((5 << 20) + 12345);
  const std::vector<size_t> sizes = {1, 0, 7, 1000, (1 << 20) - 3, 5, (2 << 20) + 1, 17};
  pfq::io::write_file_atomic_streamed(path, [&](const WriteBytes& write) {
    size_t pos = 0;
    for (size_t i = 0; pos < data.size(); ++i) {
      const size_t n = std::min(sizes[i % sizes.size()], data.size() - pos);
      write(data.data() + pos, n);
      pos += n;
    }
  });
  CHECK(slurp(path) == data);
  CHECK(t.entries() == std::vector<std::string>{"streamed.bin"});
}

TEST_CASE("a producer that throws midway leaves the old file intact and no temp file") {
  AtomicTestDir t;
  const std::string path = t.file("keep.txt");
  pfq::io::write_file_atomic(path, "old contents");
  const std::string big = pattern(3 << 20);  // larger than the buffer, so bytes reach the temp file
  CHECK_THROWS_WITH_AS(pfq::io::write_file_atomic_streamed(path,
                                                           [&](const WriteBytes& write) {
                                                             write(big.data(), big.size());
                                                             throw std::runtime_error("producer gave up");
                                                           }),
                       "producer gave up", std::runtime_error);
  CHECK(slurp(path) == "old contents");
  CHECK(t.entries() == std::vector<std::string>{"keep.txt"});
}

TEST_CASE("a failing write (file-size limit, as on a full disk) names the path and errno text") {
  AtomicTestDir t;
  const std::string path = t.file("limited.bin");
  pfq::io::write_file_atomic(path, "old contents");
  // RLIMIT_FSIZE makes write() fail with EFBIG once the temp file reaches 4096 bytes.
  struct LimitGuard {
    rlimit saved{};
    void (*old_handler)(int) = nullptr;
    LimitGuard() {
      getrlimit(RLIMIT_FSIZE, &saved);
      old_handler = signal(SIGXFSZ, SIG_IGN);
      rlimit lim = saved;
      lim.rlim_cur = 4096;
      setrlimit(RLIMIT_FSIZE, &lim);
    }
    ~LimitGuard() {
      setrlimit(RLIMIT_FSIZE, &saved);
      signal(SIGXFSZ, old_handler);
    }
  };
  {
    LimitGuard guard;
    const std::string big = pattern(3 << 20);
    CHECK_THROWS_WITH_AS(pfq::io::write_file_atomic(path, big), doctest::Contains(std::strerror(EFBIG)),
                         pfq::Error);
    CHECK_THROWS_WITH_AS(pfq::io::write_file_atomic(path, big), doctest::Contains(path.c_str()), pfq::Error);
  }
  CHECK(slurp(path) == "old contents");
  CHECK(t.entries() == std::vector<std::string>{"limited.bin"});
}

TEST_CASE("writing into a missing directory is a clear error") {
  AtomicTestDir t;
  const std::string path = t.file("no/such/dir/out.bin");
  CHECK_THROWS_WITH_AS(pfq::io::write_file_atomic(path, "x"), doctest::Contains(std::strerror(ENOENT)),
                       pfq::Error);
  CHECK_THROWS_WITH_AS(pfq::io::write_file_atomic(path, "x"), doctest::Contains(path.c_str()), pfq::Error);
  CHECK_THROWS_AS(pfq::io::write_file_atomic(t.file("dir/"), "x"), pfq::Error);
  CHECK(t.entries().empty());
}

TEST_CASE("a process killed mid-write leaves the old target intact") {
  AtomicTestDir t;
  const std::string path = t.file("ckpt.bin");
  pfq::io::write_file_atomic(path, "old contents");
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    try {
      const std::string big = pattern(3 << 20);
      pfq::io::write_file_atomic_streamed(path, [&](const WriteBytes& write) {
        write(big.data(), big.size());
        raise(SIGKILL);
      });
    } catch (...) {
    }
    _exit(3);  // only reached if the kill did not happen
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFSIGNALED(status));
  CHECK(slurp(path) == "old contents");
  // The killed writer's temp file stays behind (nothing can remove it), next to the target,
  // already holding the streamed bytes: proof they went there and not into the target.
  const auto entries = t.entries();
  REQUIRE(entries.size() == 2);
  const std::string temp = entries[0] == "ckpt.bin" ? entries[1] : entries[0];
  CHECK(temp.rfind(".ckpt.bin.tmp." + std::to_string(pid) + ".", 0) == 0);
  CHECK(fs::file_size(t.dir / temp) >= (1u << 20));
}
