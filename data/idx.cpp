// idx.cpp — IDX reader (see idx.h). Layout: 4-byte magic 00 00 <type> <ndims>, ndims big-endian
// uint32 sizes, then the payload. Gzip is handled by InputFile.
#include "data/idx.h"

#include <cstdio>

#include "core/error.h"
#include "data/file_io.h"

namespace pfq::data {

static std::string hex4(const uint8_t* m) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%02x %02x %02x %02x", m[0], m[1], m[2], m[3]);
  return buf;
}

IdxArray read_idx(const std::string& path, int expected_ndims) {
  InputFile in(path);
  uint8_t magic[4];
  in.read_exact(magic, 4, "IDX magic");
  uint8_t want[4] = {0, 0, 0x08, static_cast<uint8_t>(expected_ndims)};
  PFQ_CHECK(magic[0] == 0 && magic[1] == 0 && magic[2] == 0x08 && magic[3] == expected_ndims, path,
            ": byte offset 0: expected IDX magic ", hex4(want), " (unsigned bytes, ", expected_ndims,
            " dimensions), found ", hex4(magic), in.is_gzip() ? " (after gzip decompression)" : "");
  IdxArray out;
  out.gzip = in.is_gzip();
  uint64_t total = 1;
  for (int d = 0; d < expected_ndims; ++d) {
    uint8_t b[4];
    uint64_t at = in.offset();
    in.read_exact(b, 4, "IDX dimension size");
    uint32_t v = read_be32(b);
    PFQ_CHECK(v > 0, path, ": ", offset_str(in.is_gzip(), at), ": dimension ", d, " has size 0");
    total *= v;  // <= 2^32 per step; checked against the file before it can overflow
    PFQ_CHECK(total <= in.max_content_size(), path, ": ", offset_str(in.is_gzip(), at), ": header sizes multiply to at least ",
              total, " bytes but the file (", in.file_size(), " bytes", in.is_gzip() ? " compressed" : "",
              ") cannot hold that many");
    out.dims.push_back(v);
  }
  uint64_t header = in.offset();
  if (!in.is_gzip()) {
    PFQ_CHECK(in.file_size() - header == total, path, ": header promises ", total, " payload bytes from byte offset ",
              header, " (file size ", header + total, ") but the file has ", in.file_size(), " bytes");
  }
  out.data = in.read_bytes(total, "IDX payload");
  in.expect_end("the IDX payload");
  return out;
}

std::shared_ptr<InMemoryDataset> load_idx(const std::string& images_path, const std::string& labels_path,
                                          int64_t num_classes, const std::string& description) {
  IdxArray images = read_idx(images_path, 3);
  IdxArray labels = read_idx(labels_path, 1);
  const int64_t n = images.dims[0];
  PFQ_CHECK(labels.dims[0] == n, labels_path, ": ", offset_str(labels.gzip, 4), ": ", labels.dims[0], " labels but ", images_path,
            " holds ", n, " images");
  const int64_t label_header = 8;
  std::vector<int64_t> lab(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    lab[static_cast<size_t>(i)] = labels.data[static_cast<size_t>(i)];
    PFQ_CHECK(lab[static_cast<size_t>(i)] < num_classes, labels_path, ": ", offset_str(labels.gzip, label_header + i),
              ": label ", lab[static_cast<size_t>(i)], " of sample ", i, " outside [0, ", num_classes, ")");
  }
  return std::make_shared<InMemoryDataset>(std::move(images.data), n, 1, images.dims[1], images.dims[2],
                                           std::move(lab), num_classes,
                                           detail::cat(description, ": ", n, " images 1x", images.dims[1], "x",
                                                       images.dims[2]));
}

}  // namespace pfq::data
