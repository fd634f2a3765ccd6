// test_image_folder.cpp — image folders written here with stb_image_write (PNG lossless, JPEG
// approximate): class order, labels, RGB/grey/RGBA decoding, lazy decode errors for corrupt or
// truncated files, non-image files, empty class folders, skip_bad counting and size limits.
#include <doctest/doctest.h>

#include <stb/stb_image_write.h>

#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/random.h"
#include "data/transforms.h"
#include "data/factory.h"
#include "data/image_folder.h"
#include "data_test_util.h"

using namespace pfq::data;
using namespace pfq::data::testing;

namespace {

void png(const std::string& path, int w, int h, int comp, const std::vector<uint8_t>& pix) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  REQUIRE(pix.size() == static_cast<size_t>(w * h * comp));
  REQUIRE(stbi_write_png(path.c_str(), w, h, comp, pix.data(), w * comp) != 0);
}

void jpg(const std::string& path, int w, int h, uint8_t r, uint8_t g, uint8_t b) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::vector<uint8_t> pix;
  for (int i = 0; i < w * h; ++i) pix.insert(pix.end(), {r, g, b});
  REQUIRE(stbi_write_jpg(path.c_str(), w, h, 3, pix.data(), 100) != 0);
}

// RGB 3x2 image with distinct values: pixel (y, x) channel c = 40*y + 10*x + c + 1.
std::vector<uint8_t> rgb_pixels() {
  std::vector<uint8_t> v;
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 3; ++x)
      for (int c = 0; c < 3; ++c) v.push_back(static_cast<uint8_t>(40 * y + 10 * x + c + 1));
  return v;
}

void make_tree(const TempDir& dir) {
  png(dir / "root/dog/b.png", 3, 2, 3, rgb_pixels());
  png(dir / "root/dog/a.png", 2, 2, 1, {0, 85, 170, 255});
  png(dir / "root/cat/x.png", 2, 1, 4, {10, 20, 30, 0, 40, 50, 60, 255});
  jpg(dir / "root/cat/y.JPG", 8, 8, 200, 100, 50);
  png(dir / "root/Bird/nested/z.png", 1, 1, 3, {1, 2, 3});
}

}  // namespace

TEST_SUITE("data") {

TEST_CASE("image folder: classes, labels and decoded pixels") {
  TempDir dir;
  make_tree(dir);
  ImageFolderDataset ds(dir / "root");
  REQUIRE(ds.classes() == std::vector<std::string>{"Bird", "cat", "dog"});  // byte order, like sorted()
  REQUIRE(ds.size() == 5);
  CHECK(ds.num_classes() == 3);
  CHECK(ds.channels() == 3);
  const std::vector<std::string> files = {"Bird/nested/z.png", "cat/x.png", "cat/y.JPG", "dog/a.png", "dog/b.png"};
  const int64_t labels[5] = {0, 1, 1, 2, 2};
  for (int i = 0; i < 5; ++i) {
    CHECK(ds.path(i) == dir / ("root/" + files[static_cast<size_t>(i)]));
    CHECK(ds.label(i) == labels[i]);
  }
  Sample rgb = ds.get(4);
  CHECK(rgb.label == 2);
  REQUIRE(rgb.image.dims_str() == "3x2x3");
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 2; ++y)
      for (int x = 0; x < 3; ++x) CHECK(rgb.image.at(c, y, x) == static_cast<float>(40 * y + 10 * x + c + 1) / 255.0f);

  Sample grey = ds.get(3);  // grey replicated into 3 channels
  REQUIRE(grey.image.dims_str() == "3x2x2");
  const float g[4] = {0, 85, 170, 255};
  for (int c = 0; c < 3; ++c)
    for (int p = 0; p < 4; ++p) CHECK(grey.image.at(c, p / 2, p % 2) == g[p] / 255.0f);

  Sample rgba = ds.get(1);  // alpha dropped
  REQUIRE(rgba.image.dims_str() == "3x1x2");
  CHECK(rgba.image.at(0, 0, 0) == 10 / 255.0f);
  CHECK(rgba.image.at(2, 0, 0) == 30 / 255.0f);
  CHECK(rgba.image.at(1, 0, 1) == 50 / 255.0f);

  Sample jpeg = ds.get(2);
  REQUIRE(jpeg.image.dims_str() == "3x8x8");
  const float want[3] = {200, 100, 50};
  float worst = 0;
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 8; ++x) worst = std::max(worst, std::abs(jpeg.image.at(c, y, x) * 255.0f - want[c]));
  CHECK(worst <= 3.0f);  // JPEG is lossy, even at quality 100
}

TEST_CASE("image folder: corrupt and truncated images fail in get(), naming the file") {
  TempDir dir;
  make_tree(dir);
  write_file(dir / "root/dog/c.png", {0x89, 'P', 'N', 'G', 1, 2, 3, 4, 5, 6, 7});  // corrupt PNG
  std::vector<uint8_t> good = read_file(dir / "root/dog/b.png");
  write_file(dir / "root/dog/d.png", std::vector<uint8_t>(good.begin(), good.begin() + static_cast<long>(good.size() / 2)));
  ImageFolderDataset ds(dir / "root");  // listing does not decode
  REQUIRE(ds.size() == 7);
  CHECK(ds.path(5) == dir / "root/dog/c.png");
  CHECK_THROWS_WITH_AS(ds.get(5), doctest::Contains((dir / "root/dog/c.png" + ": cannot decode image").c_str()), pfq::Error);
  CHECK_THROWS_WITH_AS(ds.get(6), doctest::Contains((dir / "root/dog/d.png" + ": cannot decode image").c_str()), pfq::Error);
  CHECK(ds.get(4).image.dims_str() == "3x2x3");  // good files still decode
  CHECK(ds.skipped() == 0);

  ImageFolderOptions skip;
  skip.skip_bad = true;
  ImageFolderDataset tolerant(dir / "root", skip);
  Sample s = tolerant.get(5);  // c.png and d.png are bad: wraps around to the first image
  CHECK(s.label == 0);
  CHECK(s.image.dims_str() == "3x1x1");
  CHECK(tolerant.skipped() == 2);
  tolerant.get(6);
  CHECK(tolerant.skipped() == 2);  // counted once per file
  CHECK(tolerant.skipped_files() == std::vector<std::string>{dir / "root/dog/c.png", dir / "root/dog/d.png"});

  // the loader's path (decode to 8 bits, then the transform) stops or skips alike
  const auto t = std::make_shared<RandomResizedCrop>(4);
  pfq::Generator g(0);
  CHECK_THROWS_WITH_AS(ds.get_transformed(6, t.get(), g), doctest::Contains((dir / "root/dog/d.png" + ": cannot decode image").c_str()),
                       pfq::Error);
  ImageFolderDataset tolerant2(dir / "root", skip);
  Sample w = tolerant2.get_transformed(6, t.get(), g);  // d.png is bad: wraps around to the first image
  CHECK(w.label == 0);
  CHECK(w.image.dims_str() == "3x4x4");
  CHECK(tolerant2.skipped_files() == std::vector<std::string>{dir / "root/dog/d.png"});
}

TEST_CASE("image folder: non-image files, empty classes, missing folders") {
  TempDir dir;
  make_tree(dir);
  write_file(dir / "root/cat/notes.txt", {'h', 'i'});
  write_file(dir / "root/cat/.hidden", {'x'});  // hidden files are ignored
  CHECK_THROWS_WITH_AS(ImageFolderDataset(dir / "root"),
                       doctest::Contains((dir / "root/cat/notes.txt" + ": not an image file").c_str()), pfq::Error);
  ImageFolderOptions skip;
  skip.skip_bad = true;
  ImageFolderDataset tolerant(dir / "root", skip);
  CHECK(tolerant.size() == 5);
  CHECK(tolerant.skipped() == 1);
  CHECK(tolerant.skipped_files() == std::vector<std::string>{dir / "root/cat/notes.txt"});

  std::filesystem::create_directories(dir / "root/empty");
  CHECK_THROWS_WITH_AS(ImageFolderDataset(dir / "root", skip), doctest::Contains("class folder 'empty' contains no images"),
                       pfq::Error);
  std::filesystem::create_directories(dir / "none");
  CHECK_THROWS_WITH_AS(ImageFolderDataset(dir / "none"), doctest::Contains("none: no class folders"), pfq::Error);
  CHECK_THROWS_WITH_AS(ImageFolderDataset(dir / "nope"), doctest::Contains("nope: image folder not found"), pfq::Error);
}

TEST_CASE("image folder: pixel and file size limits are checked before decoding") {
  TempDir dir;
  png(dir / "img.png", 64, 64, 3, std::vector<uint8_t>(64 * 64 * 3, 9));
  CHECK(decode_image_file(dir / "img.png").dims_str() == "3x64x64");
  CHECK_THROWS_WITH_AS(decode_image_file(dir / "img.png", 4095),
                       doctest::Contains("image header claims 64x64 pixels, more than the limit of 4095"), pfq::Error);
  CHECK_THROWS_WITH_AS(decode_image_file(dir / "img.png", 1 << 20, 10), doctest::Contains("exceeds the limit of 10 bytes"),
                       pfq::Error);
  write_file(dir / "empty.png", {});
  CHECK_THROWS_WITH_AS(decode_image_file(dir / "empty.png"), doctest::Contains("the file is empty"), pfq::Error);
  CHECK(has_image_extension("a/b.JpEg"));
  CHECK_FALSE(has_image_extension("a/b.gif"));
}

TEST_CASE("image folder: make_dataset uses train/ and val/ with the ImageNet transforms") {
  TempDir dir;
  png(dir / "in/train/n01/a.png", 40, 30, 3, std::vector<uint8_t>(40 * 30 * 3, 128));
  png(dir / "in/val/n01/b.png", 20, 10, 3, std::vector<uint8_t>(20 * 10 * 3, 255));
  png(dir / "in/val/n02/c.png", 20, 10, 3, std::vector<uint8_t>(20 * 10 * 3, 0));
  auto train = make_dataset("imagefolder", dir / "in", "train");
  auto val = make_dataset("imagefolder", dir / "in", "test");
  CHECK(train->size() == 1);
  CHECK(val->size() == 2);
  CHECK(val->num_classes() == 2);
  TransformOptions small;
  small.image_size = 8;
  small.resize_size = 12;
  auto eval_tf = default_transform("imagefolder", false, small);
  const DataInfo info = data_info(*val, eval_tf.get());
  CHECK(info.num_classes == 2);
  CHECK(info.channels == 3);
  CHECK(info.height == 8);
  CHECK(info.width == 8);
  pfq::Generator gen(0);
  Image out = eval_tf->apply(val->get(0).image, gen);  // white: (1 - mean) / std everywhere
  REQUIRE(out.dims_str() == "3x8x8");
  CHECK(out.at(0, 3, 5) == doctest::Approx((1.0 - 0.485) / 0.229).epsilon(1e-5));
  CHECK(out.at(2, 7, 0) == doctest::Approx((1.0 - 0.406) / 0.225).epsilon(1e-5));
  CHECK(default_transform("imagefolder", true, small)->output_dims({3, 0, 0}) == Dims{3, 8, 8});
}

}  // TEST_SUITE
