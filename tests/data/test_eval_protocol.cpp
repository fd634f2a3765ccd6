// test_eval_protocol.cpp — pfq's image decoding and ImageNet evaluation transform against PIL and
// torchvision, on the committed fixture tests/fixtures/images/ (tools/make_image_fixtures.py):
// full-size decodes equal PIL's (libjpeg-turbo for JPEGs) byte for byte, DCT-scaled ones equal
// libjpeg-turbo's scaled IDCT, and Resize + CenterCrop through an image folder's eval path (with
// the DCT-scaling hook active) is within 1/255 of torchvision's per pixel, before Normalize.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/random.h"
#include "data/factory.h"
#include "data/image_folder.h"
#include "data_test_util.h"
#include "tests/skip.h"

using namespace pfq::data;
using namespace pfq::data::testing;

namespace {

const std::string kDir = std::string(PFQ_SOURCE_ROOT) + "/tests/fixtures/images/";

nlohmann::json manifest() {
  const std::vector<uint8_t> b = read_file(kDir + "manifest.json");
  REQUIRE_MESSAGE(!b.empty(), kDir, "manifest.json is missing (tools/make_image_fixtures.py writes it)");
  return nlohmann::json::parse(b.begin(), b.end());
}

bool is_jpeg_name(const std::string& f) { return f.size() > 4 && f.substr(f.size() - 4) == ".jpg"; }

// Largest |round(img * 255) - ref| over all values; img is CHW in [0, 1], ref uint8 CHW.
int max_u8_diff(const Image& img, const std::vector<uint8_t>& ref) {
  REQUIRE(img.data.size() == ref.size());
  int worst = 0;
  for (size_t i = 0; i < ref.size(); ++i)
    worst = std::max(worst, std::abs(static_cast<int>(std::lround(img.data[i] * 255.0f)) - ref[i]));
  return worst;
}

void check_decodes(bool jpegs) {
  int checked = 0;
  const nlohmann::json m = manifest();
  for (const auto& e : m["images"]) {
    const std::string file = e["file"];
    if (!e.contains("decoded") || is_jpeg_name(file) != jpegs) continue;
    CAPTURE(file);
    const Image img = decode_image_file(kDir + file);
    CHECK(img.height == e["height"].get<int64_t>());
    CHECK(img.width == e["width"].get<int64_t>());
    CHECK(max_u8_diff(img, read_file(kDir + e["decoded"].get<std::string>())) == 0);
    ++checked;
  }
  CHECK(checked >= 4);
}

}  // namespace

TEST_SUITE("data") {

TEST_CASE("image decode: PNGs (RGB, RGBA, palette, 16-bit RGB and grey) equal PIL's convert('RGB') byte for byte") {
  check_decodes(false);
}

TEST_CASE("image decode: JPEGs (4:2:0, grey, CMYK, progressive) equal libjpeg-turbo's decode byte for byte") {
  if (!turbojpeg_compiled()) PFQ_SKIP("built without TurboJPEG (Meson option turbojpeg): stb_image decodes JPEGs");
  check_decodes(true);
}

TEST_CASE("image decode: a truncated JPEG is refused (as PIL does), naming the file; extra bytes after it are not") {
  if (!turbojpeg_compiled()) PFQ_SKIP("built without TurboJPEG: stb_image decodes a truncated JPEG's missing rows as grey");
  const std::vector<uint8_t> whole = read_file(kDir + "rgb420.jpg");
  REQUIRE(whole.size() > 1000);
  const std::vector<uint8_t> cut(whole.begin(), whole.begin() + static_cast<long>(whole.size() * 7 / 10));
  CHECK_THROWS_WITH_AS(decode_image_bytes(cut, "cut.jpg"), doctest::Contains("cut.jpg: cannot decode image (corrupt JPEG)"), pfq::Error);
  std::vector<uint8_t> padded = whole;
  padded.insert(padded.end(), {1, 2, 3});  // trailing junk: libjpeg warns, PIL and pfq decode
  CHECK(decode_image_bytes(padded, "padded.jpg").data == decode_image_bytes(whole, "whole.jpg").data);
}

TEST_CASE("image decode: DCT-domain scaling picks the smallest 1/2^k >= the needed scale and equals libjpeg-turbo's") {
  if (!turbojpeg_compiled()) PFQ_SKIP("built without TurboJPEG (Meson option turbojpeg)");
  CHECK(turbojpeg_scale(1.0) == std::pair<int, int>{1, 1});
  CHECK(turbojpeg_scale(0.5) == std::pair<int, int>{1, 2});
  CHECK(turbojpeg_scale(0.51) == std::pair<int, int>{1, 1});  // 5/8 exists but decodes slower than 1/1
  CHECK(turbojpeg_scale(0.3) == std::pair<int, int>{1, 2});
  CHECK(turbojpeg_scale(0.25) == std::pair<int, int>{1, 4});
  CHECK(turbojpeg_scale(0.01) == std::pair<int, int>{1, 8});
  CHECK(turbojpeg_scale(2.0) == std::pair<int, int>{1, 1});  // never enlarges
  int checked = 0;
  const nlohmann::json m = manifest();
  for (const auto& e : m["images"]) {
    if (!e.contains("half")) continue;
    const std::string file = e["file"];
    CAPTURE(file);
    const Image img = turbojpeg_decode(read_file(kDir + file), file, {1, 2});
    CHECK(img.height == e["half_height"].get<int64_t>());
    CHECK(img.width == e["half_width"].get<int64_t>());
    CHECK(max_u8_diff(img, read_file(kDir + e["half"].get<std::string>())) == 0);
    // decode_image_bytes reaches the same through the source-scale hook
    const Image hooked = decode_image_bytes(read_file(kDir + file), file, {}, [](int64_t, int64_t) { return 0.5; });
    CHECK(hooked.data == img.data);
    ++checked;
  }
  CHECK(checked >= 3);
}

TEST_CASE("eval protocol: Resize + CenterCrop of an image folder within 1/255 of torchvision's, before Normalize") {
  const nlohmann::json m = manifest();
  TempDir dir;
  int checked = 0;
  for (const auto& e : m["images"]) {
    const std::string file = e["file"];
    if (e["eval"].empty() || (is_jpeg_name(file) && !turbojpeg_compiled())) continue;  // stb's IDCT differs
    for (const auto& p : e["eval"]) {
      const int64_t r = p["resize"], c = p["crop"];
      CAPTURE(file);
      CAPTURE(r);
      // one class folder holding this image: the dataset's own decode path, as `pfq eval` runs it
      const std::string root = dir / (file + std::to_string(r));
      std::filesystem::create_directories(root + "/val/x");
      std::filesystem::copy_file(kDir + file, root + "/val/x/" + file);
      auto ds = make_dataset("imagefolder", root, "test");
      TransformOptions to;
      to.resize_size = r;
      to.image_size = c;
      const TransformPtr t = default_transform("imagefolder", false, to);
      pfq::Generator gen(0);
      CHECK(t->source_scale(e["height"], e["width"], gen) == 1.0);  // full decode: torchvision's protocol
      Image img = ds->get_transformed(0, t.get(), gen).image;
      REQUIRE(img.dims_str() == pfq::detail::cat("3x", c, "x", c));
      const NormStats s = norm_stats("imagefolder");
      const int64_t hw = c * c;
      for (int64_t ch = 0; ch < 3; ++ch)  // undo Normalize
        for (int64_t i = 0; i < hw; ++i) img.data[ch * hw + i] = img.data[ch * hw + i] * s.std[ch] + s.mean[ch];
      const std::vector<uint8_t> ref = read_file(kDir + p["file"].get<std::string>());
      REQUIRE(ref.size() == img.data.size());
      float worst = 0;
      for (size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, std::abs(img.data[i] - ref[i] / 255.0f));
      CHECK(worst <= 1.0f / 255.0f + 1e-5f);
      ++checked;
    }
  }
  CHECK(checked >= (turbojpeg_compiled() ? 10 : 5));
}

}  // TEST_SUITE
