// test_jpeg_window.cpp — crop-window JPEG decoding (data/jpeg_window.cpp: libjpeg's
// jpeg_crop_scanline + jpeg_skip_scanlines at a DCT scale) against libjpeg-turbo's own whole
// decode at the same scale (TurboJPEG's tjDecompress2), on the committed fixture JPEGs (4:2:0,
// 4:4:4, grey, CMYK, progressive): every pixel of the window equal, byte for byte; an image
// folder's training samples the same as from the whole decode; damaged files refused naming the file.
#include <doctest/doctest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/random.h"
#include "data/factory.h"
#include "data/image_decode.h"
#include "data/image_folder.h"
#include "data/transforms.h"
#include "data_test_util.h"
#include "tests/skip.h"

using namespace pfq::data;
using namespace pfq::data::testing;

namespace {

const std::string kDir = std::string(PFQ_SOURCE_ROOT) + "/tests/fixtures/images/";
const std::vector<std::string> kJpegs = {"rgb420.jpg", "rgb444_big.jpg", "gray.jpg", "cmyk.jpg", "progressive.jpg"};
const std::vector<std::pair<int, int>> kScales = {{1, 1}, {1, 2}, {1, 4}, {1, 8}};

// The number of window pixels (all channels) whose stored value differs from `whole`'s.
int64_t window_mismatches(const ImageU8& win, const ImageU8& whole, const CropBox& b) {
  REQUIRE(win.top <= b.top);
  REQUIRE(win.left <= b.left);
  REQUIRE(win.top + win.height >= b.top + b.height);
  REQUIRE(win.left + win.width >= b.left + b.width);
  int64_t bad = 0;
  for (int64_t y = b.top; y < b.top + b.height; ++y)
    for (int64_t x = b.left; x < b.left + b.width; ++x)
      for (int64_t c = 0; c < 3; ++c)
        bad += win.hwc[static_cast<size_t>(((y - win.top) * win.width + x - win.left) * 3 + c)] !=
               whole.hwc[static_cast<size_t>((y * whole.width + x) * 3 + c)];
  return bad;
}

// Windows of an h x w picture: random ones, and ones touching each edge and the 8- / 16-pixel grid.
std::vector<CropBox> windows(int64_t h, int64_t w, pfq::Generator& g) {
  std::vector<CropBox> out = {{0, 0, h, w}, {0, 0, 1, 1}, {h - 1, w - 1, 1, 1}, {0, w / 2, h, w - w / 2}};
  for (int64_t a : {8, 16})
    if (a < w && a < h) out.push_back({a, a, h - a, std::min<int64_t>(a, w - a)});
  for (int i = 0; i < 40; ++i) {
    const int64_t bh = 1 + g.randint(h), bw = 1 + g.randint(w);
    out.push_back({g.randint(h - bh + 1), g.randint(w - bw + 1), bh, bw});
  }
  return out;
}

}  // namespace

TEST_SUITE("data") {

TEST_CASE("jpeg window: every window pixel equals libjpeg-turbo's whole decode at the same DCT scale") {
  if (!jpeg_window_compiled()) PFQ_SKIP("built without libjpeg-turbo's libjpeg API (Meson option turbojpeg)");
  pfq::Generator g(29);
  int checked = 0;
  for (const std::string& file : kJpegs) {
    const std::vector<uint8_t> bytes = read_file(kDir + file);
    REQUIRE(!bytes.empty());
    for (const auto& scale : kScales) {
      CAPTURE(file);
      CAPTURE(scale.second);
      const ImageU8 whole = turbojpeg_decode_u8(bytes, file, scale);
      for (const CropBox& b : windows(whole.height, whole.width, g)) {
        CAPTURE(b.top);
        CAPTURE(b.left);
        CAPTURE(b.height);
        CAPTURE(b.width);
        const ImageU8 win = jpeg_decode_window_u8(bytes, file, scale, b);
        CHECK(win.picture_height() == whole.height);
        CHECK(win.picture_width() == whole.width);
        CHECK(win.top == b.top);               // rows: exactly the window's
        CHECK(win.height == b.height);
        CHECK(win.width <= b.width + 16 + 1);  // columns: up to an iMCU (16 at most) more left, one right
        CHECK(window_mismatches(win, whole, b) == 0);
        // the transforms read it through picture coordinates
        CHECK(to_float(win, b.top, b.left, b.height, b.width).data == to_float(whole, b.top, b.left, b.height, b.width).data);
        ++checked;
      }
    }
  }
  CHECK(checked >= 5 * 4 * 40);
  // a window outside the picture is refused, naming the file
  const std::vector<uint8_t> bytes = read_file(kDir + "rgb420.jpg");
  CHECK_THROWS_WITH_AS(jpeg_decode_window_u8(bytes, "rgb420.jpg", {1, 1}, {100, 0, 14, 10}),
                       doctest::Contains("rgb420.jpg: JPEG window 14x10 at (100, 0) outside the 113x150 picture"), pfq::Error);
}

TEST_CASE("jpeg window: an image folder's training samples are those of the whole decode") {
  if (!jpeg_window_compiled()) PFQ_SKIP("built without libjpeg-turbo's libjpeg API (Meson option turbojpeg)");
  TempDir dir;
  for (const std::string& file : kJpegs) write_file(dir / ("a/" + file), read_file(kDir + file));
  ImageFolderDataset ds(dir.path());
  const auto train = default_transform("imagefolder", true, {24, 32});  // RandomResizedCrop(24), flip, normalize
  const DecodeLimits limits;
  int windowed = 0;
  for (int64_t i = 0; i < ds.size(); ++i)
    for (uint64_t seed = 0; seed < 12; ++seed) {
      CAPTURE(ds.path(i));
      CAPTURE(seed);
      pfq::Generator a(seed), b(seed);
      const Sample s = ds.get_transformed(i, train.get(), a);
      // before: the whole picture at the same scale, then the same transform
      const std::vector<uint8_t> bytes = read_file(ds.path(i));
      const SourceScaleFn scale = [&](int64_t h, int64_t w) { return train->source_scale(h, w, b); };
      const ImageU8 whole = decode_image_bytes_u8(bytes, ds.path(i), limits, scale);
      const ImageU8 part = decode_image_bytes_u8(bytes, ds.path(i), limits, scale, [&](int64_t h, int64_t w) {
        return train->source_window(h, w, b);
      });
      windowed += !part.whole();
      CHECK(s.image.data == train->apply_u8(whole, b).data);
      CHECK(a.next_u64() == b.next_u64());  // the same draws
    }
  CHECK(windowed > 20);  // most crops decode a window only
}

TEST_CASE("jpeg window: truncated and corrupt JPEGs are refused, naming the file") {
  if (!jpeg_window_compiled()) PFQ_SKIP("built without libjpeg-turbo's libjpeg API (Meson option turbojpeg)");
  const std::vector<uint8_t> whole = read_file(kDir + "rgb420.jpg");
  const std::vector<uint8_t> cut(whole.begin(), whole.begin() + static_cast<long>(whole.size() * 7 / 10));
  // through the decoder's entry point: no EOI at the end, so the whole file is decoded and refused
  const SourceWindowFn corner = [](int64_t, int64_t) { return CropBox{0, 0, 16, 16}; };
  CHECK_THROWS_WITH_AS(decode_image_bytes_u8(cut, "cut.jpg", {}, {}, corner),
                       doctest::Contains("cut.jpg: cannot decode image (corrupt JPEG): Premature end of JPEG file"), pfq::Error);
  // the window decoder itself, with a window reaching the missing rows
  CHECK_THROWS_WITH_AS(jpeg_decode_window_u8(cut, "cut.jpg", {1, 1}, {90, 0, 23, 150}),
                       doctest::Contains("cut.jpg: cannot decode image (corrupt JPEG): Premature end of JPEG file"), pfq::Error);
  // a fatal libjpeg error after the header (longjmp out of libjpeg): a progressive file whose
  // second scan claims impossible spectral parameters
  std::vector<uint8_t> bad = read_file(kDir + "progressive.jpg");
  size_t sos = 0;
  for (size_t i = 0, seen = 0; i + 1 < bad.size(); ++i)
    if (bad[i] == 0xFF && bad[i + 1] == 0xDA && ++seen == 2) {
      sos = i;
      break;
    }
  REQUIRE(sos > 0);
  const size_t ns = bad[sos + 4];
  bad[sos + 5 + 2 * ns] = 63;  // Ss
  bad[sos + 6 + 2 * ns] = 1;   // Se < Ss
  CHECK_THROWS_WITH_AS(jpeg_decode_window_u8(bad, "bad.jpg", {1, 1}, {0, 0, 8, 8}),
                       doctest::Contains("bad.jpg: cannot decode image (corrupt JPEG): Invalid progressive parameters"),
                       pfq::Error);
  CHECK_THROWS_WITH_AS(turbojpeg_decode_u8(bad, "bad.jpg"), doctest::Contains("bad.jpg: cannot decode image (corrupt JPEG)"),
                       pfq::Error);  // as the whole decode does
}

}  // TEST_SUITE
