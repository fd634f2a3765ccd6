/// \file
/// safetensors.h — checkpoint files in the safetensors format (core/io), readable by PyTorch
/// and every safetensors tool: u64 little-endian header length N, N bytes of JSON header,
/// then the tensors' bytes back to back. Saving is atomic; loading validates everything.
/// Dtypes: F32, F64, I64, I32, I8, U8 round-trip; F16 and BF16 load converted to float32; the other
/// standard dtypes (BOOL, I16, U16..U64, F8_*) are reported by read_safetensors_header but rejected
/// by load_safetensors. Leaves out: memory mapping and lazy loading (files are read whole).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace pfq::io {

/// The "__metadata__" object: string keys to string values.
using Metadata = std::map<std::string, std::string>;

/// One header entry, as stored in the file.
struct TensorInfo {
  std::string name;      ///< tensor name (the header key)
  std::string dtype;     ///< the file's spelling: "F32", "BF16", ...
  Shape shape;           ///< every dim >= 0; {} is a 0-d tensor (one element)
  uint64_t data_begin;   ///< byte offsets relative to the start of the data buffer
  uint64_t data_end;     ///< one past the last byte, relative to the data buffer
};

/// The parsed header of a safetensors file: tensor entries and metadata.
struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;  ///< in header (JSON) order
  Metadata metadata;                ///< "__metadata__"; empty when absent
  uint64_t header_size = 0;         ///< N, the JSON length including padding
  uint64_t data_size = 0;           ///< bytes after the header
};

/// A whole safetensors file read into CPU tensors.
struct SafetensorsFile {
  std::string path;  ///< where it was loaded from (for error messages)
  std::vector<std::pair<std::string, Tensor>> tensors;  ///< in header order, CPU, contiguous
  Metadata metadata;  ///< "__metadata__"; empty when absent

  /// True when a tensor of that name is in the file.
  bool contains(const std::string& name) const;
  /// Throws pfq::Error naming the missing tensor and listing the ones present.
  const Tensor& at(const std::string& name) const;
};

/// Headers larger than this are rejected before anything is allocated (as the reference does).
inline constexpr uint64_t kMaxHeaderSize = 100'000'000;

/// Writes `tensors` in the given order (moved to CPU and made contiguous as needed) with
/// `metadata` in "__metadata__", atomically (see atomic_file.h).
/// requires: names unique, non-empty, not "__metadata__".
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const Metadata& metadata = {});

/// Reads and validates the header only (names, dtypes, shapes, offsets, metadata): the data
/// buffer is never read. Throws pfq::Error naming the file and the problem.
SafetensorsHeader read_safetensors_header(const std::string& path);

/// Reads and validates the whole file. Throws pfq::Error naming the file and the problem.
SafetensorsFile load_safetensors(const std::string& path);

}  // namespace pfq::io
