// file_io.cpp — InputFile over stdio (plain) or zlib's gzread (gzip); see file_io.h.
#include "data/file_io.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace pfq::data {

namespace fs = std::filesystem;

InputFile::InputFile(const std::string& path) : path_(path) {
  std::error_code ec;
  PFQ_CHECK(fs::exists(path, ec), path, ": file not found");
  PFQ_CHECK(fs::is_regular_file(path, ec), path, ": not a regular file");
  file_size_ = fs::file_size(path, ec);
  PFQ_CHECK(!ec, path, ": cannot read the file size: ", ec.message());
  FILE* f = std::fopen(path.c_str(), "rb");
  PFQ_CHECK(f, path, ": cannot open: ", std::strerror(errno));
  unsigned char magic[2] = {0, 0};
  size_t got = std::fread(magic, 1, 2, f);
  gzip_ = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
  if (!gzip_) {
    std::rewind(f);
    handle_ = f;
    return;
  }
  std::fclose(f);
  gzFile gz = gzopen(path.c_str(), "rb");
  PFQ_CHECK(gz, path, ": cannot open as gzip");
  gzbuffer(gz, 1 << 17);
  handle_ = gz;
}

InputFile::~InputFile() {
  if (!handle_) return;
  if (gzip_)
    gzclose(static_cast<gzFile>(handle_));
  else
    std::fclose(static_cast<FILE*>(handle_));
}

uint64_t InputFile::max_content_size() const { return gzip_ ? file_size_ * kMaxDeflateRatio : file_size_; }

size_t InputFile::read(void* dst, size_t n) {
  size_t total = 0;
  auto* out = static_cast<uint8_t*>(dst);
  while (total < n) {
    size_t want = std::min<size_t>(n - total, size_t{1} << 30);
    size_t got = 0;
    if (gzip_) {
      int r = gzread(static_cast<gzFile>(handle_), out + total, static_cast<unsigned>(want));
      if (r < 0) {
        int errnum = 0;
        const char* msg = gzerror(static_cast<gzFile>(handle_), &errnum);
        PFQ_FAIL(path_, ": gzip decompression failed at decompressed byte offset ", offset_ + total, ": ",
                 msg ? msg : "unknown error");
      }
      got = static_cast<size_t>(r);
    } else {
      got = std::fread(out + total, 1, want, static_cast<FILE*>(handle_));
      PFQ_CHECK(!std::ferror(static_cast<FILE*>(handle_)), path_, ": read error at byte offset ", offset_ + total,
                ": ", std::strerror(errno));
    }
    total += got;
    if (got < want) break;
  }
  offset_ += total;
  return total;
}

std::string offset_str(bool gzip, uint64_t offset) {
  return (gzip ? "decompressed byte offset " : "byte offset ") + std::to_string(offset);
}

void InputFile::read_exact(void* dst, size_t n, const std::string& what) {
  uint64_t start = offset_;
  size_t got = read(dst, n);
  PFQ_CHECK(got == n, path_, ": truncated at ", offset_str(gzip_, start + got), ": expected ", n, " bytes of ", what,
            " starting at ", offset_str(gzip_, start), ", the file ends after ", got);
}

std::vector<uint8_t> InputFile::read_bytes(uint64_t n, const std::string& what) {
  uint64_t start = offset_;
  PFQ_CHECK(n <= max_content_size() - std::min(start, max_content_size()), path_, ": header promises ", n,
            " bytes of ", what, " from ", offset_str(gzip_, start), " but the file (", file_size_, " bytes",
            gzip_ ? " compressed" : "", ") cannot hold that many");
  constexpr uint64_t kChunk = uint64_t{1} << 24;
  std::vector<uint8_t> buf;
  while (buf.size() < n) {
    size_t have = buf.size();
    size_t want = static_cast<size_t>(std::min<uint64_t>(kChunk, n - have));
    buf.resize(have + want);
    size_t got = read(buf.data() + have, want);
    if (got < want) {
      PFQ_FAIL(path_, ": truncated at ", offset_str(gzip_, start + have + got), ": expected ", n, " bytes of ", what,
               " starting at ", offset_str(gzip_, start), ", found only ", have + got);
    }
  }
  return buf;
}

void InputFile::expect_end(const std::string& what) {
  uint64_t at = offset_;
  uint8_t extra[4096];
  uint64_t count = 0;
  size_t got;
  while ((got = read(extra, sizeof extra)) > 0) count += got;
  PFQ_CHECK(count == 0, path_, ": ", count, " unexpected extra bytes at ", offset_str(gzip_, at), " after ", what);
}

uint32_t read_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

}  // namespace pfq::data
