// file_io.h — reading dataset files, plain or gzip-compressed, with sizes checked before
// memory is allocated. Gzip is detected by its magic bytes (1f 8b), never by the extension.
// Offsets reported in errors count bytes of the (decompressed) content. No writing, no mmap.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pfq::data {

// Upper bound on the decompressed size of a gzip file: deflate cannot expand more than ~1032:1,
// so anything beyond that ratio (or beyond max_bytes) is a malformed header, not real data.
constexpr uint64_t kMaxDeflateRatio = 1032;

class InputFile {
 public:
  explicit InputFile(const std::string& path);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  const std::string& path() const { return path_; }
  bool is_gzip() const { return gzip_; }
  uint64_t file_size() const { return file_size_; }  // on disk (compressed for gzip)
  uint64_t offset() const { return offset_; }        // content bytes consumed so far
  // Most content bytes this file can hold: the exact size for plain files, the deflate bound
  // for gzip. Used to reject header sizes before allocating.
  uint64_t max_content_size() const;
  // Reads up to n bytes; returns how many were read (fewer only at the end of the content).
  // Throws pfq::Error naming the file and offset on I/O or decompression errors.
  size_t read(void* dst, size_t n);
  // Reads exactly n bytes or throws "truncated" naming the file, offset and `what`.
  void read_exact(void* dst, size_t n, const std::string& what);
  // Reads exactly n bytes into a buffer that grows only as data arrives (so a lying header
  // cannot make us allocate more than the file really holds).
  std::vector<uint8_t> read_bytes(uint64_t n, const std::string& what);
  // Throws if any content remains after the current offset.
  void expect_end(const std::string& what);

 private:
  std::string path_;
  bool gzip_ = false;
  uint64_t file_size_ = 0;
  uint64_t offset_ = 0;
  void* handle_ = nullptr;  // gzFile or FILE*
};

uint32_t read_be32(const uint8_t* p);
// "byte offset N" or, for gzip files, "decompressed byte offset N".
std::string offset_str(bool gzip, uint64_t offset);

}  // namespace pfq::data
