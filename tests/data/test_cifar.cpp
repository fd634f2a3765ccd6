// test_cifar.cpp — CIFAR-10/100 binary reader on files written here: exact pixels and labels,
// fine/coarse selection, the make_dataset file layout, and errors for bad sizes and labels.
#include <doctest/doctest.h>

#include "core/error.h"
#include "data/cifar.h"
#include "data/factory.h"
#include "data_test_util.h"

using namespace pfq::data;
using namespace pfq::data::testing;

namespace {

uint8_t pixel(int record, int c, int y, int x) { return static_cast<uint8_t>(record * 31 + c * 7 + y * 3 + x); }

// `n` records; labels = the given bytes per record (1 for CIFAR-10, 2 for CIFAR-100).
std::vector<uint8_t> records(int first, const std::vector<std::vector<uint8_t>>& labels) {
  std::vector<uint8_t> v;
  for (size_t r = 0; r < labels.size(); ++r) {
    v.insert(v.end(), labels[r].begin(), labels[r].end());
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x) v.push_back(pixel(first + static_cast<int>(r), c, y, x));
  }
  return v;
}

void check_pixels(const Sample& s, int record) {
  REQUIRE(s.image.channels == 3);
  REQUIRE(s.image.height == 32);
  REQUIRE(s.image.width == 32);
  int bad = 0;
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x)
        if (s.image.at(c, y, x) != static_cast<float>(pixel(record, c, y, x)) / 255.0f) ++bad;
  CHECK(bad == 0);
}

}  // namespace

TEST_SUITE("data") {

TEST_CASE("cifar10: records across files decode exactly") {
  TempDir dir;
  write_file(dir / "a.bin", records(0, {{3}, {9}}));
  write_file(dir / "b.bin", records(2, {{0}}));
  auto ds = load_cifar({dir / "a.bin", dir / "b.bin"}, CifarKind::Cifar10);
  REQUIRE(ds->size() == 3);
  CHECK(ds->num_classes() == 10);
  const int64_t want[3] = {3, 9, 0};
  for (int i = 0; i < 3; ++i) {
    Sample s = ds->get(i);
    CHECK(s.label == want[i]);
    check_pixels(s, i);
  }
}

TEST_CASE("cifar100: fine and coarse labels") {
  TempDir dir;
  write_file(dir / "train.bin", records(0, {{19, 99}, {4, 30}}));
  auto fine = load_cifar({dir / "train.bin"}, CifarKind::Cifar100Fine);
  auto coarse = load_cifar({dir / "train.bin"}, CifarKind::Cifar100Coarse);
  CHECK(fine->num_classes() == 100);
  CHECK(coarse->num_classes() == 20);
  CHECK(fine->get(0).label == 99);
  CHECK(fine->get(1).label == 30);
  CHECK(coarse->get(0).label == 19);
  CHECK(coarse->get(1).label == 4);
  check_pixels(fine->get(1), 1);
  check_pixels(coarse->get(0), 0);
}

TEST_CASE("cifar: make_dataset finds the standard files and sub-folders") {
  TempDir dir;
  for (int i = 1; i <= 5; ++i)
    write_file(dir / ("cifar-10-batches-bin/data_batch_" + std::to_string(i) + ".bin"), records(i, {{uint8_t(i)}}));
  write_file(dir / "cifar-10-batches-bin/test_batch.bin", records(7, {{7}, {8}}));
  auto train = make_dataset("cifar10", dir.path(), "train");
  REQUIRE(train->size() == 5);
  for (int i = 0; i < 5; ++i) CHECK(train->get(i).label == i + 1);
  check_pixels(train->get(4), 5);
  auto test = make_dataset("cifar10", dir.path(), "test");
  REQUIRE(test->size() == 2);
  CHECK(test->get(1).label == 8);

  write_file(dir / "c100/test.bin", records(0, {{2, 50}}));
  DatasetOptions opt;
  CHECK(make_dataset("cifar100", dir / "c100", "test")->get(0).label == 50);
  opt.cifar100_coarse = true;
  auto coarse = make_dataset("cifar100", dir / "c100", "test", opt);
  CHECK(coarse->get(0).label == 2);
  CHECK(data_info(*coarse, nullptr).num_classes == 20);
  CHECK_THROWS_WITH_AS(make_dataset("cifar100", dir / "c100", "train"), doctest::Contains("train.bin: file not found"),
                       pfq::Error);
}

TEST_CASE("cifar: size and label errors name file and offset") {
  TempDir dir;
  std::vector<uint8_t> two = records(0, {{1}, {2}});
  write_file(dir / "short.bin", std::vector<uint8_t>(two.begin(), two.end() - 5));
  std::string msg = error_of([&] { load_cifar({dir / "short.bin"}, CifarKind::Cifar10); });
  CHECK(msg.find(dir / "short.bin") != std::string::npos);
  CHECK(msg.find("file size 6141 is not a multiple of the 3073-byte record") != std::string::npos);
  CHECK(msg.find("partial record of 3068 bytes starts at byte offset 3073") != std::string::npos);

  // A CIFAR-10 file read as CIFAR-100 is caught by the record size (2 x 3073 = 6146 = 3074 + 3072).
  write_file(dir / "ten.bin", two);
  CHECK_THROWS_WITH_AS(load_cifar({dir / "ten.bin"}, CifarKind::Cifar100Fine),
                       doctest::Contains("partial record of 3072 bytes starts at byte offset 3074"), pfq::Error);

  write_file(dir / "empty.bin", {});
  CHECK_THROWS_WITH_AS(load_cifar({dir / "empty.bin"}, CifarKind::Cifar10), doctest::Contains("empty.bin: file is empty"),
                       pfq::Error);

  write_file(dir / "label.bin", records(0, {{1}, {10}}));
  CHECK_THROWS_WITH_AS(load_cifar({dir / "label.bin"}, CifarKind::Cifar10),
                       doctest::Contains("label.bin: byte offset 3073: label 10 of record 1 outside [0, 10)"),
                       pfq::Error);

  write_file(dir / "fine.bin", records(0, {{1, 2}, {3, 4}, {5, 100}}));
  CHECK_THROWS_WITH_AS(load_cifar({dir / "fine.bin"}, CifarKind::Cifar100Coarse),
                       doctest::Contains("fine.bin: byte offset 6149: fine label 100 of record 2 outside [0, 100)"),
                       pfq::Error);
  write_file(dir / "coarse.bin", records(0, {{20, 2}}));
  CHECK_THROWS_WITH_AS(load_cifar({dir / "coarse.bin"}, CifarKind::Cifar100Fine),
                       doctest::Contains("coarse.bin: byte offset 0: coarse label 20 of record 0 outside [0, 20)"),
                       pfq::Error);

  write_gz(dir / "gz.bin", two);
  CHECK_THROWS_WITH_AS(load_cifar({dir / "gz.bin"}, CifarKind::Cifar10), doctest::Contains("gz.bin: byte offset 0: gzip-compressed"),
                       pfq::Error);
}

}  // TEST_SUITE
