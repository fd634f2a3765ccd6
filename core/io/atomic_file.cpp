// atomic_file.cpp — POSIX implementation of the temp-file + fsync + rename protocol.
// Errors carry the path and strerror(errno), so "No space left on device" reaches the user.
#include "core/io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "core/error.h"

namespace pfq::io {
namespace {

std::string errno_text(int err) { return std::string(std::strerror(err)); }

// Fault injection for tools/kill-harness.sh: PFQ_FAULT_WRITE_DELAY_MS=<ms> pauses in the middle
// of every write and before the rename, so that a SIGKILL reliably lands inside a write.
int fault_write_delay_ms() {
  static const int ms = [] {
    const char* v = std::getenv("PFQ_FAULT_WRITE_DELAY_MS");
    return v ? std::atoi(v) : 0;
  }();
  return ms;
}

void fault_pause() {
  if (fault_write_delay_ms() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(fault_write_delay_ms()));
}

std::string parent_dir(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string base_name(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Owns the temp file until commit(); the destructor closes and unlinks it if not committed.
class TempFile {
 public:
  explicit TempFile(const std::string& target) : target_(target) {
    PFQ_CHECK(!target.empty() && target.back() != '/', "write_file_atomic: '", target,
              "' is not a file path");
    static std::atomic<unsigned> counter{0};
    const std::string prefix = parent_dir(target) + "/." + base_name(target) + ".tmp." +
                               std::to_string(static_cast<long>(::getpid())) + ".";
    for (int attempt = 0; attempt < 100; ++attempt) {
      tmp_path_ = prefix + std::to_string(counter.fetch_add(1));
      fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd_ >= 0) return;
      if (errno != EEXIST) break;
    }
    const int err = errno;
    PFQ_FAIL("cannot write '", target_, "': creating temp file '", tmp_path_, "' failed: ",
             errno_text(err));
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_path_.c_str());
  }

  void write(const void* data, size_t size) {
    const char* p = static_cast<const char*>(data);
    if (fault_write_delay_ms() > 0 && size > 1) {  // half now, half after the pause
      const size_t half = size / 2;
      write_all(p, half);
      fault_pause();
      p += half;
      size -= half;
    }
    write_all(p, size);
  }

  void write_all(const char* p, size_t size) {
    while (size > 0) {
      const ssize_t n = ::write(fd_, p, size);
      if (n < 0) {
        if (errno == EINTR) continue;
        fail("writing", errno);
      }
      p += n;
      size -= static_cast<size_t>(n);
    }
  }

  // fsync + close + rename over the target + fsync of the directory.
  void commit() {
    if (::fsync(fd_) != 0) fail("fsync of the temp file", errno);
    fault_pause();
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail("closing the temp file", errno);
    if (::rename(tmp_path_.c_str(), target_.c_str()) != 0) fail("renaming the temp file", errno);
    committed_ = true;
    const std::string dir = parent_dir(target_);
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) fail("opening directory '" + dir + "' for fsync", errno);
    const int rc = ::fsync(dfd);
    const int err = errno;
    ::close(dfd);
    // The new contents are in place but their directory entry may not be durable yet.
    if (rc != 0) fail("fsync of directory '" + dir + "'", err);
  }

 private:
  [[noreturn]] void fail(const std::string& what, int err) {
    PFQ_FAIL("cannot write '", target_, "': ", what, " failed: ", errno_text(err),
             err == ENOSPC || err == EDQUOT ? " (free some disk space; the old file is intact)" : "");
  }

  std::string target_;
  std::string tmp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace

namespace {
bool g_writes_enabled = true;
}  // namespace

void disable_writes_on_this_process() { g_writes_enabled = false; }
bool writes_enabled() { return g_writes_enabled; }

void write_file_atomic(const std::string& path, std::string_view bytes) {
  if (!g_writes_enabled) return;
  TempFile tmp(path);
  tmp.write(bytes.data(), bytes.size());
  tmp.commit();
}

void write_file_atomic_streamed(const std::string& path,
                                const std::function<void(const WriteBytes& write)>& producer) {
  if (!g_writes_enabled) return;
  TempFile tmp(path);
  // Small writes are gathered so that a producer emitting many pieces costs few syscalls.
  constexpr size_t kBufferSize = size_t{1} << 20;
  std::vector<char> buffer;
  buffer.reserve(kBufferSize);
  const WriteBytes write = [&](const void* data, size_t size) {
    if (size == 0) return;
    if (buffer.size() + size > kBufferSize) {
      tmp.write(buffer.data(), buffer.size());
      buffer.clear();
    }
    if (size >= kBufferSize) {
      tmp.write(data, size);
    } else {
      const char* p = static_cast<const char*>(data);
      buffer.insert(buffer.end(), p, p + size);
    }
  };
  producer(write);
  tmp.write(buffer.data(), buffer.size());
  tmp.commit();
}

}  // namespace pfq::io
