/// \file
/// idx.h — the IDX format of MNIST and Fashion-MNIST (plain or gzip-compressed files).
/// Reads unsigned-byte IDX arrays (type 0x08) only; the signed/short/int/float IDX types are
/// left out because no dataset pfq uses has them. Errors name the file and byte offset.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace pfq::data {

/// The contents of an IDX file (the MNIST family's format).
struct IdxArray {
  std::vector<int64_t> dims;  ///< e.g. {60000, 28, 28}
  std::vector<uint8_t> data;  ///< row-major, product(dims) bytes
  bool gzip = false;          ///< offsets in errors then count decompressed bytes
};

/// Reads an IDX file with magic 00 00 08 \<ndims\>. Checks ndims == expected_ndims, every dim > 0
/// and that the payload exactly fills the (decompressed) file before allocating it.
IdxArray read_idx(const std::string& path, int expected_ndims);

/// Images [N, rows, cols] + labels [N] -> dataset of 1 x rows x cols images. Checks equal counts
/// and labels < num_classes (the error names the label file and the label's byte offset).
std::shared_ptr<InMemoryDataset> load_idx(const std::string& images_path, const std::string& labels_path,
                                          int64_t num_classes = 10, const std::string& description = "idx");

}  // namespace pfq::data
