// test_transforms.cpp — transforms on hand-checked images (crop/pad, flip, bilinear resize with
// antialiasing, normalize, resize + center crop rounding), the torchvision random-resized-crop
// rules, determinism for a seed, and the per-dataset default pipelines.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "core/error.h"
#include "data/factory.h"
#include "data/pixel_columns.h"
#include "data/transforms.h"

using namespace pfq::data;
using pfq::Generator;

namespace {

// C x H x W image with value 100*c + 10*y + x.
Image ramp(int64_t c, int64_t h, int64_t w) {
  Image img(c, h, w);
  for (int64_t k = 0; k < c; ++k)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) img.at(k, y, x) = static_cast<float>(100 * k + 10 * y + x);
  return img;
}

Image row(std::vector<float> v) {
  Image img(1, 1, static_cast<int64_t>(v.size()));
  img.data = std::move(v);
  return img;
}

// The resize's definition as dense matrices, in double: out = Wy * img * Wx^T per channel, where
// row i of W(in -> out) holds the triangle filter of support max(in/out, 1) centred at
// (i + 0.5) * in/out, over the source pixels (j + 0.5), normalised to sum 1.
std::vector<double> filter_matrix(int64_t in, int64_t out) {
  const double scale = static_cast<double>(in) / static_cast<double>(out), support = std::max(scale, 1.0);
  std::vector<double> m(static_cast<size_t>(out * in), 0.0);
  for (int64_t i = 0; i < out; ++i) {
    const double center = (static_cast<double>(i) + 0.5) * scale;
    double sum = 0;
    for (int64_t j = 0; j < in; ++j) {
      // PIL's window: the sources whose index rounds into (center - support, center + support)
      if (j < static_cast<int64_t>(center - support + 0.5) || j >= static_cast<int64_t>(center + support + 0.5)) continue;
      const double v = std::max(0.0, 1.0 - std::abs((static_cast<double>(j) + 0.5 - center) / support));
      m[static_cast<size_t>(i * in + j)] = v;
      sum += v;
    }
    for (int64_t j = 0; j < in && sum > 0; ++j) m[static_cast<size_t>(i * in + j)] /= sum;
  }
  return m;
}

Image resize_by_definition(const Image& img, int64_t out_h, int64_t out_w) {
  const std::vector<double> wy = filter_matrix(img.height, out_h), wx = filter_matrix(img.width, out_w);
  Image out(img.channels, out_h, out_w);
  for (int64_t c = 0; c < img.channels; ++c)
    for (int64_t i = 0; i < out_h; ++i)
      for (int64_t k = 0; k < out_w; ++k) {
        double acc = 0;
        for (int64_t y = 0; y < img.height; ++y)
          for (int64_t x = 0; x < img.width; ++x)
            acc += wy[static_cast<size_t>(i * img.height + y)] * wx[static_cast<size_t>(k * img.width + x)] * img.at(c, y, x);
        out.at(c, i, k) = static_cast<float>(acc);
      }
  return out;
}

}  // namespace

TEST_SUITE("data") {

TEST_CASE("transforms: crop with zero padding and flip") {
  Image img = ramp(2, 3, 3);
  Image c = crop(img, -1, 1, 3, 3);  // one row of padding on top, one column on the right
  REQUIRE(c.dims_str() == "2x3x3");
  CHECK(c.data == std::vector<float>{0, 0, 0, 1, 2, 0, 11, 12, 0, 0, 0, 0, 101, 102, 0, 111, 112, 0});
  Image all_out = crop(img, 5, 5, 2, 2);
  CHECK(all_out.data == std::vector<float>(8, 0.0f));
  Image f = hflip(ramp(1, 2, 3));
  CHECK(f.data == std::vector<float>{2, 1, 0, 12, 11, 10});
}

TEST_CASE("transforms: bilinear resize, hand-checked") {
  // Upscaling 2 -> 4 with half-pixel centres: sources at -0.25, 0.25, 0.75, 1.25 (clamped).
  CHECK(resize_bilinear(row({0, 4}), 1, 4).data == std::vector<float>{0, 1, 3, 4});
  // Downscaling 4 -> 2 widens the triangle to the footprint: weights (3, 3, 1) / 7.
  Image down = resize_bilinear(row({0, 7, 14, 21}), 1, 2);
  REQUIRE(down.data.size() == 2);
  CHECK(down.data[0] == doctest::Approx(5.0));
  CHECK(down.data[1] == doctest::Approx(16.0));
  // Separable: a 2x2 -> 4x4 upscale of a bilinear ramp in y.
  Image sq(1, 2, 2);
  sq.data = {0, 0, 8, 8};
  Image up = resize_bilinear(sq, 4, 4);
  for (int x = 0; x < 4; ++x) {
    CHECK(up.at(0, 0, x) == 0.0f);
    CHECK(up.at(0, 1, x) == 2.0f);
    CHECK(up.at(0, 2, x) == 6.0f);
    CHECK(up.at(0, 3, x) == 8.0f);
  }
  // Constants stay constant whatever the scale.
  Image flat(3, 7, 5, 0.25f);
  for (float v : resize_bilinear(flat, 3, 11).data) CHECK(v == doctest::Approx(0.25f));
  CHECK_THROWS_AS(resize_bilinear(flat, 0, 3), pfq::Error);
}

TEST_CASE("transforms: bilinear resize equals its definition on random images, shrinking and growing") {
  Generator gen(11);
  for (int t = 0; t < 40; ++t) {
    const int64_t c = 1 + static_cast<int64_t>(gen.randint(3)), h = 1 + static_cast<int64_t>(gen.randint(40)),
                  w = 1 + static_cast<int64_t>(gen.randint(40)), oh = 1 + static_cast<int64_t>(gen.randint(40)),
                  ow = 1 + static_cast<int64_t>(gen.randint(40));
    Image img(c, h, w);
    for (float& v : img.data) v = static_cast<float>(gen.uniform());
    CAPTURE(img.dims_str());
    CAPTURE(oh);
    CAPTURE(ow);
    const Image got = resize_bilinear(img, oh, ow), want = resize_by_definition(img, oh, ow);
    REQUIRE(got.data.size() == want.data.size());
    double worst = 0;
    for (size_t i = 0; i < got.data.size(); ++i) worst = std::max(worst, std::abs(double(got.data[i]) - want.data[i]));
    CHECK(worst <= 1e-5);
  }
}

TEST_CASE("transforms: normalize") {
  Image img = ramp(2, 1, 2);  // channel 0: 0, 1; channel 1: 100, 101
  pfq::Generator g(1);
  Image n = Normalize({1, 100}, {2, 4}).apply(img, g);
  CHECK(n.data == std::vector<float>{-0.5f, 0.0f, 0.0f, 0.25f});
  Image b = Normalize({1}, {2}).apply(img, g);  // one value for every channel
  CHECK(b.data == std::vector<float>{-0.5f, 0.0f, 49.5f, 50.0f});
  CHECK_THROWS_WITH_AS(Normalize({1, 2, 3}, {1, 1, 1}).apply(img, g),
                       doctest::Contains("3 mean/std values for an image with 2 channels"), pfq::Error);
  CHECK_THROWS_AS(Normalize({1}, {0}), pfq::Error);
}

TEST_CASE("transforms: random crop draws top then left, covers every offset, is seeded") {
  Image img = ramp(1, 4, 4);
  RandomCrop rc(4, 1);
  std::set<std::pair<int64_t, int64_t>> seen;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    Generator g(seed), replay(seed);
    Image out = rc.apply(img, g);
    const int64_t top = replay.randint(3), left = replay.randint(3);
    CHECK(out.data == crop(img, top - 1, left - 1, 4, 4).data);
    seen.insert({top, left});
    Generator again(seed);
    CHECK(rc.apply(img, again).data == out.data);
  }
  CHECK(seen.size() == 9);
  // No padding and same size: identity, and no random number consumed.
  Generator g(3), untouched(3);
  CHECK(RandomCrop(4, 0).apply(img, g).data == img.data);
  CHECK(g.next_u64() == untouched.next_u64());
}

TEST_CASE("transforms: random horizontal flip") {
  Image img = ramp(1, 2, 3);
  RandomHorizontalFlip flip;
  int flipped = 0;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    Generator g(seed), replay(seed);
    Image out = flip.apply(img, g);
    const bool want = replay.uniform() < 0.5;
    CHECK(out.data == (want ? hflip(img).data : img.data));
    flipped += want;
  }
  CHECK(flipped > 30);
  CHECK(flipped < 70);
  Generator g(0);
  CHECK(RandomHorizontalFlip(1.0).apply(img, g).data == hflip(img).data);
  CHECK(RandomHorizontalFlip(0.0).apply(img, g).data == img.data);
}

TEST_CASE("transforms: random resized crop follows torchvision's rules") {
  for (uint64_t seed = 0; seed < 300; ++seed) {
    Generator g(seed);
    CropBox b = random_resized_crop_box(60, 80, g, {0.08, 1.0}, {3.0 / 4.0, 4.0 / 3.0});
    REQUIRE(b.top >= 0);
    REQUIRE(b.left >= 0);
    REQUIRE(b.top + b.height <= 60);
    REQUIRE(b.left + b.width <= 80);
    const double area = static_cast<double>(b.height * b.width) / (60.0 * 80.0);
    const double aspect = static_cast<double>(b.width) / static_cast<double>(b.height);
    if (b.height == 60 && b.width == 80) continue;  // central fallback (ratio 4/3 fits)
    CHECK(area >= 0.06);  // 0.08 up to rounding of both sides
    CHECK(aspect >= 0.70);
    CHECK(aspect <= 1.42);
  }
  // Impossible scale: after 10 attempts, the central crop clamped to the largest ratio.
  Generator g(1);
  CropBox wide = random_resized_crop_box(10, 40, g, {2.0, 3.0}, {3.0 / 4.0, 4.0 / 3.0});
  CHECK(wide.height == 10);
  CHECK(wide.width == 13);  // round(10 * 4/3)
  CHECK(wide.top == 0);
  CHECK(wide.left == 13);   // (40 - 13) / 2
  CropBox tall = random_resized_crop_box(40, 10, g, {2.0, 3.0}, {3.0 / 4.0, 4.0 / 3.0});
  CHECK(tall.width == 10);
  CHECK(tall.height == 13);  // round(10 / (3/4))
  CHECK(tall.top == 13);
  CropBox fits = random_resized_crop_box(30, 30, g, {2.0, 3.0}, {3.0 / 4.0, 4.0 / 3.0});
  CHECK((fits.top == 0 && fits.left == 0 && fits.height == 30 && fits.width == 30));

  RandomResizedCrop rrc(16);
  Image img = ramp(3, 40, 50);
  Generator a(9), b(9);
  Image out = rrc.apply(img, a);
  CHECK(out.dims_str() == "3x16x16");
  CHECK(out.data == rrc.apply(img, b).data);
  Generator replay(9);
  CropBox box = random_resized_crop_box(40, 50, replay, {0.08, 1.0}, {3.0 / 4.0, 4.0 / 3.0});
  CHECK(out.data == resize_bilinear(crop(img, box.top, box.left, box.height, box.width), 16, 16).data);
}

TEST_CASE("transforms: 8-bit input (apply_u8) gives apply(to_float)'s bits; source_scale follows the crop box") {
  Generator noise(3);
  ImageU8 u8;
  u8.height = 61;
  u8.width = 83;
  for (int64_t i = 0; i < 61 * 83 * 3; ++i) u8.hwc.push_back(static_cast<uint8_t>(noise.randint(256)));
  const Image f = to_float(u8);
  CHECK(f.at(2, 5, 7) == static_cast<float>(u8.hwc[(5 * 83 + 7) * 3 + 2]) / 255.0f);
  CHECK(to_float(u8, 4, 9, 3, 2).at(1, 2, 1) == f.at(1, 6, 10));
  CHECK_THROWS_AS(to_float(u8, 60, 0, 2, 1), pfq::Error);
  const auto pipeline = default_transform("imagefolder", true, {24, 32});  // RandomResizedCrop(24), flip, normalize
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Generator a(seed), b(seed);
    CAPTURE(seed);
    const Image via_u8 = pipeline->apply_u8(u8, a);
    const Image via_float = pipeline->apply(f, b);
    REQUIRE(via_u8.dims_str() == "3x24x24");
    CHECK(via_u8.data == via_float.data);
    CHECK(a.next_u64() == b.next_u64());  // the same draws
  }
  // source_scale: RandomResizedCrop's box (drawn from a copy: the generator does not move) shrunk
  // to its output size; Resize and the rest need the full image
  RandomResizedCrop rrc(16);
  Generator g(7), g_copy(7);
  const double s = rrc.source_scale(400, 300, g);
  CHECK(g.next_u64() == g_copy.next_u64());
  Generator box_gen(7);
  const CropBox box = random_resized_crop_box(400, 300, box_gen, {0.08, 1.0}, {3.0 / 4.0, 4.0 / 3.0});
  CHECK(s == doctest::Approx(16.0 / static_cast<double>(std::min(box.height, box.width))));
  CHECK(RandomResizedCrop(1000).source_scale(400, 300, g) == 1.0);  // never above 1
  CHECK(Resize(16).source_scale(400, 300, g) == 1.0);
  Generator g7(7);
  CHECK(Compose({std::make_shared<RandomResizedCrop>(16), std::make_shared<RandomHorizontalFlip>()}).source_scale(400, 300, g7) == s);
}

TEST_CASE("transforms: pixel_columns_16 and rows_of_columns_16 (16 x 16 transposes) equal the one-value-at-a-time references") {
  Generator noise(11);
  for (int64_t w : {1, 5, 6, 16, 21, 224, 301}) {
    CAPTURE(w);
    std::vector<std::vector<uint8_t>> rows(16, std::vector<uint8_t>(static_cast<size_t>(3 * w)));
    const uint8_t* ptrs[16];
    for (int r = 0; r < 16; ++r) {
      // every byte value appears (the division by 255 of each), the rest random
      for (int64_t j = 0; j < 3 * w; ++j)
        rows[r][static_cast<size_t>(j)] = static_cast<uint8_t>(r * 16 + j < 256 ? r * 16 + j : noise.randint(256));
      ptrs[r] = rows[r].data();
    }
    std::vector<float> fast(static_cast<size_t>(48 * w), -1.0f), slow(static_cast<size_t>(48 * w), -2.0f);
    pixel_columns_16(ptrs, w, fast.data());
    pixel_columns_16_scalar(ptrs, w, 0, slow.data());
    CHECK(fast == slow);
    CHECK(slow[static_cast<size_t>((2 * w + w - 1) * 16 + 15)] == static_cast<float>(rows[15][static_cast<size_t>(3 * w - 1)]) / 255.0f);
    // and back: rows of the first nrows of 16, other values untouched
    for (int64_t nrows : {16, 7}) {
      std::vector<float> back(static_cast<size_t>(16 * 3 * w), -1.0f), back_slow(back.size(), -1.0f);
      rows_of_columns_16(fast.data(), 3 * w, nrows, back.data(), 3 * w);
      rows_of_columns_16_scalar(fast.data(), 3 * w, 0, nrows, back_slow.data(), 3 * w);
      CHECK(back == back_slow);
      CHECK(back[static_cast<size_t>((nrows - 1) * 3 * w + w)] == fast[static_cast<size_t>(w * 16 + nrows - 1)]);
      if (nrows < 16) CHECK(back[static_cast<size_t>(nrows * 3 * w)] == -1.0f);  // the first row not asked for
    }
  }
}

TEST_CASE("transforms: resize shorter side, center crop rounding and padding") {
  Generator g(0);
  CHECK(Resize(5).apply(ramp(1, 10, 20), g).dims_str() == "1x5x10");
  CHECK(Resize(5).apply(ramp(1, 20, 10), g).dims_str() == "1x10x5");
  CHECK(Resize(256).output_dims({3, 375, 500}) == Dims{3, 256, 341});  // 341.33 truncated
  CHECK(Resize(256).output_dims({3, 0, 0}) == Dims{3, 0, 0});
  // 5 -> 3: offset 1.
  CHECK(CenterCrop(3).apply(ramp(1, 5, 5), g).data == crop(ramp(1, 5, 5), 1, 1, 3, 3).data);
  // 4 -> 3: offset round(0.5) = 0; 6 -> 3: offset round(1.5) = 2 (half to even, as Python).
  CHECK(CenterCrop(3).apply(ramp(1, 4, 4), g).at(0, 0, 0) == 0.0f);
  CHECK(CenterCrop(3).apply(ramp(1, 6, 6), g).at(0, 0, 0) == 22.0f);
  // 2 -> 4: zero-padded by one on each side.
  Image p = CenterCrop(4).apply(ramp(1, 2, 2), g);
  CHECK(p.data == std::vector<float>{0, 0, 0, 0, 0, 0, 1, 0, 0, 10, 11, 0, 0, 0, 0, 0});
}

TEST_CASE("transforms: per-dataset defaults") {
  auto fm_train = default_transform("fashion-mnist", true);
  CHECK(fm_train->describe() ==
        "Compose(RandomCrop(28, padding=2), RandomHorizontalFlip(p=0.5), Normalize(mean=0.286 std=0.353))");
  CHECK(default_transform("mnist", true)->describe() ==
        "Compose(RandomCrop(28, padding=2), Normalize(mean=0.1307 std=0.3081))");
  CHECK(default_transform("cifar10", true)->describe() ==
        "Compose(RandomCrop(32, padding=4), RandomHorizontalFlip(p=0.5), Normalize(mean=0.4914,0.4822,0.4465 "
        "std=0.247,0.2435,0.2616))");
  CHECK(default_transform("cifar100", false)->describe() ==
        "Compose(Normalize(mean=0.5071,0.4865,0.4409 std=0.2673,0.2564,0.2762))");
  CHECK(default_transform("imagefolder", true)->describe() ==
        "Compose(RandomResizedCrop(224, scale=(0.08, 1), ratio=(0.75, 1.33333)), RandomHorizontalFlip(p=0.5), "
        "Normalize(mean=0.485,0.456,0.406 std=0.229,0.224,0.225))");
  CHECK(default_transform("imagefolder", false)->describe() ==
        "Compose(Resize(256), CenterCrop(224), Normalize(mean=0.485,0.456,0.406 std=0.229,0.224,0.225))");
  CHECK(fm_train->output_dims({1, 28, 28}) == Dims{1, 28, 28});
  CHECK(default_transform("imagefolder", false)->output_dims({3, 0, 0}) == Dims{3, 224, 224});

  // Eval for CIFAR is normalize only: exact per-channel values.
  Image img(3, 2, 2, 0.5f);
  Generator g(0);
  Image out = default_transform("cifar10", false)->apply(img, g);
  CHECK(out.at(0, 1, 1) == (0.5f - 0.4914f) / 0.2470f);
  CHECK(out.at(2, 0, 1) == (0.5f - 0.4465f) / 0.2616f);
  // Train transforms are deterministic for a seed and vary across seeds.
  Image big(3, 32, 32);
  for (size_t i = 0; i < big.data.size(); ++i) big.data[i] = static_cast<float>(i % 97) / 97.0f;
  auto tr = default_transform("cifar10", true);
  Generator s1(11), s2(11), s3(12);
  const Image a = tr->apply(big, s1);
  CHECK(a.data == tr->apply(big, s2).data);
  CHECK(a.data != tr->apply(big, s3).data);
  CHECK_THROWS_WITH_AS(default_transform("imagenet", true), doctest::Contains("unknown dataset 'imagenet'"), pfq::Error);
}

}  // TEST_SUITE
