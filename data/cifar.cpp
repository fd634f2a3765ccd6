// cifar.cpp — CIFAR binary reader (see cifar.h). Whole files are read at once: the size is
// validated first, so memory is bounded by what is on disk (~180 MB for CIFAR-10 train).
#include "data/cifar.h"

#include "core/error.h"
#include "data/file_io.h"

namespace pfq::data {

int64_t cifar_record_bytes(CifarKind kind) { return kCifarImageBytes + (kind == CifarKind::Cifar10 ? 1 : 2); }

int64_t cifar_num_classes(CifarKind kind) {
  switch (kind) {
    case CifarKind::Cifar10: return 10;
    case CifarKind::Cifar100Fine: return 100;
    case CifarKind::Cifar100Coarse: return 20;
  }
  PFQ_FAIL("cifar: unknown kind");
}

std::shared_ptr<InMemoryDataset> load_cifar(const std::vector<std::string>& files, CifarKind kind,
                                            const std::string& description) {
  PFQ_CHECK(!files.empty(), description, ": no files given");
  const int64_t rec = cifar_record_bytes(kind);
  const int64_t classes = cifar_num_classes(kind);
  // Which byte of a record holds the label we keep: CIFAR-100 has coarse first, then fine.
  const int64_t label_byte = kind == CifarKind::Cifar100Fine ? 1 : 0;
  std::vector<uint8_t> pixels;
  std::vector<int64_t> labels;
  for (const std::string& path : files) {
    InputFile in(path);
    PFQ_CHECK(!in.is_gzip(), path, ": byte offset 0: gzip-compressed; expected the raw CIFAR binary (",
              rec, "-byte records); decompress it first");
    const uint64_t size = in.file_size();
    const uint64_t partial = size % static_cast<uint64_t>(rec);
    PFQ_CHECK(size > 0, path, ": file is empty; expected ", rec, "-byte records");
    PFQ_CHECK(partial == 0, path, ": file size ", size, " is not a multiple of the ", rec, "-byte record (",
              rec - kCifarImageBytes, " label byte(s) + 3072 pixels): a partial record of ", partial,
              " bytes starts at byte offset ", size - partial);
    std::vector<uint8_t> bytes = in.read_bytes(size, "CIFAR records");
    const int64_t n = static_cast<int64_t>(size) / rec;
    pixels.reserve(pixels.size() + static_cast<size_t>(n * kCifarImageBytes));
    for (int64_t i = 0; i < n; ++i) {
      const uint8_t* r = bytes.data() + i * rec;
      if (kind == CifarKind::Cifar10) {
        PFQ_CHECK(r[0] < 10, path, ": byte offset ", i * rec, ": label ", int(r[0]), " of record ", i,
                  " outside [0, 10)");
      } else {  // both labels are validated whichever one is kept
        PFQ_CHECK(r[0] < 20, path, ": byte offset ", i * rec, ": coarse label ", int(r[0]), " of record ", i,
                  " outside [0, 20)");
        PFQ_CHECK(r[1] < 100, path, ": byte offset ", i * rec + 1, ": fine label ", int(r[1]), " of record ", i,
                  " outside [0, 100)");
      }
      const int64_t label = r[label_byte];
      labels.push_back(label);
      const uint8_t* img = r + (rec - kCifarImageBytes);
      pixels.insert(pixels.end(), img, img + kCifarImageBytes);
    }
  }
  const int64_t total = static_cast<int64_t>(labels.size());
  return std::make_shared<InMemoryDataset>(std::move(pixels), total, 3, 32, 32, std::move(labels), classes,
                                           detail::cat(description, ": ", total, " images 3x32x32"));
}

std::vector<std::string> cifar_files(const std::string& dir, CifarKind kind, const std::string& split) {
  PFQ_CHECK(split == "train" || split == "test", "cifar: split must be \"train\" or \"test\", got \"", split, "\"");
  std::vector<std::string> out;
  if (kind == CifarKind::Cifar10) {
    if (split == "train")
      for (int i = 1; i <= 5; ++i) out.push_back(dir + "/data_batch_" + std::to_string(i) + ".bin");
    else
      out.push_back(dir + "/test_batch.bin");
  } else {
    out.push_back(dir + "/" + split + ".bin");
  }
  return out;
}

}  // namespace pfq::data
