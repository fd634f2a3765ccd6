// test_idx.cpp — IDX reader: plain and gzip files written here, decoded values checked
// exactly; malformed headers, truncation and bad labels give errors naming file and offset;
// the real Fashion-MNIST test set when /usr/share/datasets/fashion-mnist is installed.
#include <doctest/doctest.h>

#include <filesystem>
#include <functional>
#include <string>

#include "core/error.h"
#include "data/factory.h"
#include "data/idx.h"
#include "data_test_util.h"
#include "tests/skip.h"

using namespace pfq::data;
using namespace pfq::data::testing;

namespace {

// 3 images of 2x4 with pixel value 10*i + k, labels {0, 9, 4}.
std::vector<uint8_t> image_payload() {
  std::vector<uint8_t> p;
  for (int i = 0; i < 3; ++i)
    for (int k = 0; k < 8; ++k) p.push_back(static_cast<uint8_t>(10 * i + k + (i == 2 ? 200 : 0)));
  return p;
}

void check_contents(const InMemoryDataset& ds) {
  REQUIRE(ds.size() == 3);
  CHECK(ds.channels() == 1);
  CHECK(ds.height() == 2);
  CHECK(ds.width() == 4);
  CHECK(ds.num_classes() == 10);
  const int64_t want_labels[3] = {0, 9, 4};
  for (int i = 0; i < 3; ++i) {
    Sample s = ds.get(i);
    CHECK(s.label == want_labels[i]);
    REQUIRE(s.image.data.size() == 8);
    for (int k = 0; k < 8; ++k) CHECK(s.image.data[k] == static_cast<float>(10 * i + k + (i == 2 ? 200 : 0)) / 255.0f);
  }
}

}  // namespace

TEST_SUITE("data") {

TEST_CASE("idx: plain files decode exactly") {
  TempDir dir;
  write_file(dir / "img", idx_bytes({3, 2, 4}, image_payload()));
  write_file(dir / "lab", idx_bytes({3}, {0, 9, 4}));
  check_contents(*load_idx(dir / "img", dir / "lab"));
}

TEST_CASE("idx: gzip is detected by magic, not by extension") {
  TempDir dir;
  write_gz(dir / "images.idx", idx_bytes({3, 2, 4}, image_payload()));  // gzip without .gz
  write_file(dir / "labels.gz", idx_bytes({3}, {0, 9, 4}));             // plain despite .gz
  check_contents(*load_idx(dir / "images.idx", dir / "labels.gz"));
}

TEST_CASE("idx: wrong magic names file, offset and expectation") {
  TempDir dir;
  write_file(dir / "img", idx_bytes({3}, {1, 2, 3}));  // 1-d file where 3-d images are expected
  std::string msg = error_of([&] { read_idx(dir / "img", 3); });
  CHECK(msg.find(dir / "img") != std::string::npos);
  CHECK(msg.find("byte offset 0: expected IDX magic 00 00 08 03") != std::string::npos);
  CHECK(msg.find("found 00 00 08 01") != std::string::npos);

  std::vector<uint8_t> floats = idx_bytes({3}, {1, 2, 3});
  floats[2] = 0x0D;  // float IDX type
  write_gz(dir / "f.gz", floats);
  msg = error_of([&] { read_idx(dir / "f.gz", 1); });
  CHECK(msg.find("found 00 00 0d 01 (after gzip decompression)") != std::string::npos);
}

TEST_CASE("idx: truncated and oversized files") {
  TempDir dir;
  std::vector<uint8_t> bytes = idx_bytes({3, 2, 4}, image_payload());
  std::vector<uint8_t> cut(bytes.begin(), bytes.end() - 5);
  write_file(dir / "cut", cut);
  CHECK_THROWS_WITH_AS(read_idx(dir / "cut", 3),
                       doctest::Contains("header promises 24 payload bytes from byte offset 16 (file size 40) but the file has 35 bytes"),
                       pfq::Error);
  write_gz(dir / "cut.gz", cut);
  std::string msg = error_of([&] { read_idx(dir / "cut.gz", 3); });
  CHECK(msg.find(dir / "cut.gz") != std::string::npos);
  CHECK(msg.find("truncated at decompressed byte offset 35") != std::string::npos);

  std::vector<uint8_t> extra = bytes;
  extra.push_back(7);
  write_gz(dir / "extra.gz", extra);
  CHECK_THROWS_WITH_AS(read_idx(dir / "extra.gz", 3),
                       doctest::Contains("1 unexpected extra bytes at decompressed byte offset 40"), pfq::Error);

  // Truncated header (inside the dimension sizes).
  write_file(dir / "hdr", std::vector<uint8_t>(bytes.begin(), bytes.begin() + 10));
  CHECK_THROWS_WITH_AS(read_idx(dir / "hdr", 3), doctest::Contains("truncated at byte offset 10"), pfq::Error);
}

TEST_CASE("idx: header sizes are validated before allocating") {
  TempDir dir;
  // Claims 4e9 x 4e9 x 4e9 bytes in a tiny gzip file: rejected at the first dimension
  // (offset 4), long before any allocation of that size could be attempted.
  write_gz(dir / "huge.gz", idx_bytes({0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu}, {1, 2, 3}));
  std::string msg = error_of([&] { read_idx(dir / "huge.gz", 3); });
  CHECK(msg.find("huge.gz: decompressed byte offset 4: header sizes multiply to at least") != std::string::npos);
  CHECK(msg.find("cannot hold that many") != std::string::npos);
  // A plausible but still too large claim (within the deflate bound): the growing buffer hits
  // the end of the data first.
  write_gz(dir / "big.gz", idx_bytes({10, 28, 28}, std::vector<uint8_t>(100, 1)));
  CHECK_THROWS_WITH_AS(read_idx(dir / "big.gz", 3), doctest::Contains("found only 100"), pfq::Error);
  write_file(dir / "zero", idx_bytes({3, 0, 4}, {}));
  CHECK_THROWS_WITH_AS(read_idx(dir / "zero", 3), doctest::Contains("byte offset 8: dimension 1 has size 0"),
                       pfq::Error);
}

TEST_CASE("idx: labels are checked for range and count") {
  TempDir dir;
  write_file(dir / "img", idx_bytes({3, 2, 4}, image_payload()));
  write_gz(dir / "bad.gz", idx_bytes({3}, {0, 10, 4}));
  CHECK_THROWS_WITH_AS(load_idx(dir / "img", dir / "bad.gz"),
                       doctest::Contains("bad.gz: decompressed byte offset 9: label 10 of sample 1 outside [0, 10)"),
                       pfq::Error);
  write_file(dir / "two", idx_bytes({2}, {0, 1}));
  CHECK_THROWS_WITH_AS(load_idx(dir / "img", dir / "two"), doctest::Contains("two: byte offset 4: 2 labels but"),
                       pfq::Error);
  CHECK_THROWS_WITH_AS(read_idx(dir / "missing", 1), doctest::Contains("missing: file not found"), pfq::Error);
}

TEST_CASE("idx: corrupt gzip stream is an error naming the file") {
  TempDir dir;
  write_gz(dir / "c.gz", idx_bytes({3, 2, 4}, image_payload()));
  std::vector<uint8_t> gz = read_file(dir / "c.gz");
  gz[gz.size() - 6] ^= 0xFF;  // inside the CRC32 trailer
  write_file(dir / "c.gz", gz);
  std::string msg = error_of([&] { read_idx(dir / "c.gz", 3); });
  CHECK(msg.find(dir / "c.gz") != std::string::npos);
  CHECK(msg.find("gzip decompression failed") != std::string::npos);
}

TEST_CASE("idx: make_dataset reads the standard MNIST file names") {
  TempDir dir;
  write_gz(dir / "t10k-images-idx3-ubyte.gz", idx_bytes({3, 2, 4}, image_payload()));
  write_file(dir / "t10k-labels-idx1-ubyte", idx_bytes({3}, {0, 9, 4}));
  auto ds = make_dataset("mnist", dir.path(), "test");
  CHECK(ds->size() == 3);
  CHECK(ds->get(1).label == 9);
  CHECK(ds->description().find("mnist test") == 0);
  CHECK_THROWS_WITH_AS(make_dataset("mnist", dir.path(), "train"), doctest::Contains("train-images-idx3-ubyte.gz"),
                       pfq::Error);
  CHECK_THROWS_WITH_AS(make_dataset("mnist", dir.path(), "val"), doctest::Contains("split must be"), pfq::Error);
  CHECK_THROWS_WITH_AS(make_dataset("svhn", dir.path(), "test"), doctest::Contains("unknown dataset 'svhn'"),
                       pfq::Error);
}

TEST_CASE("idx: the real Fashion-MNIST test set") {
  const std::string dir = default_data_dir("fashion-mnist");
  if (!std::filesystem::is_directory(dir)) {
    PFQ_SKIP(dir + " is not installed (Debian package dataset-fashion-mnist)");
  }
  auto ds = make_dataset("fashion-mnist", "", "test");
  REQUIRE(ds->size() == 10000);
  const DataInfo info = data_info(*ds, default_transform("fashion-mnist", false).get());
  CHECK(info.num_classes == 10);
  CHECK(info.channels == 1);
  CHECK(info.height == 28);
  CHECK(info.width == 28);
  auto* mem = dynamic_cast<InMemoryDataset*>(ds.get());
  REQUIRE(mem != nullptr);
  std::vector<int> counts(10, 0);
  for (int64_t i = 0; i < ds->size(); ++i) {
    const int64_t l = mem->label(i);
    REQUIRE((l >= 0 && l < 10));
    ++counts[static_cast<size_t>(l)];
  }
  for (int c = 0; c < 10; ++c) CHECK(counts[static_cast<size_t>(c)] == 1000);  // the test set is balanced
  Sample s = ds->get(0);
  CHECK(s.label == 9);  // the first test image is an ankle boot
  CHECK(s.image.data.size() == 784);
  double sum = 0;
  for (float v : s.image.data) sum += v;
  CHECK(sum > 10.0);  // not an empty image
}

}  // TEST_SUITE
