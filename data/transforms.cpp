// transforms.cpp — the transforms of transforms.h. Random draws happen in a fixed order per
// transform (crop: top then left; flip: one uniform) so a Generator state fixes the result.
#include "data/transforms.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "data/pixel_columns.h"

namespace pfq::data {

// ---- building blocks ----

Image crop(const Image& img, int64_t top, int64_t left, int64_t h, int64_t w) {
  PFQ_CHECK(h > 0 && w > 0, "crop: size must be positive, got ", h, "x", w);
  Image out(img.channels, h, w, 0.0f);
  const int64_t y0 = std::max<int64_t>(0, -top), y1 = std::min<int64_t>(h, img.height - top);
  const int64_t x0 = std::max<int64_t>(0, -left), x1 = std::min<int64_t>(w, img.width - left);
  if (y0 >= y1 || x0 >= x1) return out;
  for (int64_t c = 0; c < img.channels; ++c)
    for (int64_t y = y0; y < y1; ++y) {
      // First in-image pixel of the row (left + x0 >= 0): never form a pointer before the buffer.
      const float* src = img.data.data() + ((c * img.height + y + top) * img.width + left + x0);
      std::copy(src, src + (x1 - x0), &out.at(c, y, 0) + x0);
    }
  return out;
}

namespace {
void reverse_rows(Image& img) {
  for (int64_t c = 0; c < img.channels; ++c)
    for (int64_t y = 0; y < img.height; ++y) {
      float* row = &img.at(c, y, 0);
      std::reverse(row, row + img.width);
    }
}
}  // namespace

Image hflip(const Image& img) {
  Image out = img;
  reverse_rows(out);
  return out;
}

namespace {

// Per output index i: taps count[i] source indices from start[i], weights at w[first[i]..]
// (PIL's precompute_coeffs for the bilinear (triangle) filter, normalised per output index).
struct Taps {
  std::vector<int64_t> start, count, first;
  std::vector<float> w;
};

Taps bilinear_taps(int64_t in, int64_t out) {
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  const double support = std::max(scale, 1.0);  // filter support 1, widened when shrinking
  const double inv = 1.0 / support;
  Taps t;
  t.start.resize(static_cast<size_t>(out));
  t.count.resize(static_cast<size_t>(out));
  t.first.resize(static_cast<size_t>(out));
  std::vector<double> w;
  for (int64_t i = 0; i < out; ++i) {
    const double center = (static_cast<double>(i) + 0.5) * scale;
    const int64_t lo = std::max<int64_t>(0, static_cast<int64_t>(center - support + 0.5));
    const int64_t hi = std::min<int64_t>(in, static_cast<int64_t>(center + support + 0.5));
    w.clear();
    double sum = 0;
    for (int64_t j = lo; j < hi; ++j) {
      const double v = std::max(0.0, 1.0 - std::abs((static_cast<double>(j) - center + 0.5) * inv));
      w.push_back(v);
      sum += v;
    }
    t.start[static_cast<size_t>(i)] = lo;
    t.count[static_cast<size_t>(i)] = hi - lo;
    t.first[static_cast<size_t>(i)] = static_cast<int64_t>(t.w.size());
    for (double v : w) t.w.push_back(static_cast<float>(sum > 0 ? v / sum : 0.0));
  }
  return t;
}

// The vertical pass of resize_window: mid (channels x mid_h x out_w floats, the horizontal pass's
// output) to out_h rows, a whole row at a time (vectorised over x). The output starts at zero (the
// Image constructor's fill) and each row adds its taps in index order.
Image resize_vertical(const float* mid, int64_t channels, int64_t mid_h, int64_t out_w, const Taps& ty, int64_t out_h) {
  Image out(channels, out_h, out_w);
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t y = 0; y < out_h; ++y) {
      const float* wy = ty.w.data() + ty.first[static_cast<size_t>(y)];
      const int64_t s = ty.start[static_cast<size_t>(y)], n = ty.count[static_cast<size_t>(y)];
      float* o = &out.at(c, y, 0);
      for (int64_t k = 0; k < n; ++k) {
        const float wk = wy[k];
        const float* m = mid + (c * mid_h + s + k) * out_w;
#pragma omp simd
        for (int64_t x = 0; x < out_w; ++x) o[x] += wk * m[x];
      }
    }
  return out;
}

// The window [top, top+h) x [left, left+w) of img (inside it) resized to out_h x out_w: the
// horizontal pass first, as PIL does, then the vertical one. Each output sums its taps in index
// order, the same order as one tap loop per pixel. A window already of the output size is copied.
Image resize_window(const Image& img, int64_t top, int64_t left, int64_t h, int64_t w, int64_t out_h, int64_t out_w) {
  if (out_h == h && out_w == w) return crop(img, top, left, h, w);
  const Taps tx = bilinear_taps(w, out_w), ty = bilinear_taps(h, out_h);
  Image mid(img.channels, h, out_w);
  for (int64_t c = 0; c < img.channels; ++c)
    for (int64_t y = 0; y < h; ++y) {
      const float* src = img.data.data() + ((c * img.height + top + y) * img.width + left);
      float* dst = &mid.at(c, y, 0);
      for (int64_t x = 0; x < out_w; ++x) {
        const float* wx = tx.w.data() + tx.first[static_cast<size_t>(x)];
        const float* s = src + tx.start[static_cast<size_t>(x)];
        const int64_t n = tx.count[static_cast<size_t>(x)];
        float acc = 0;
        for (int64_t k = 0; k < n; ++k) acc += wx[k] * s[k];
        dst[x] = acc;
      }
    }
  return resize_vertical(mid.data.data(), mid.channels, mid.height, mid.width, ty, out_h);
}

// Throws unless the picture window [top, top+h) x [left, left+w) lies inside img's stored pixels.
void check_stored(const ImageU8& img, int64_t top, int64_t left, int64_t h, int64_t w, const char* what) {
  PFQ_CHECK(h >= 0 && w >= 0 && top >= img.top && left >= img.left && top + h <= img.top + img.height &&
                left + w <= img.left + img.width,
            what, ": window ", h, "x", w, " at (", top, ", ", left, ") outside the stored ", img.height, "x", img.width,
            " pixels at (", img.top, ", ", img.left, ") of the ", img.picture_height(), "x", img.picture_width(), " image");
}

// v / 255.0f for every byte: what to_float() stores, so the uint8 paths give the float path's bits.
const float* u8_to_unit() {
  static const auto table = [] {
    std::array<float, 256> t{};
    for (int v = 0; v < 256; ++v) t[static_cast<size_t>(v)] = static_cast<float>(v) / 255.0f;
    return t;
  }();
  return table.data();
}

// Makes v hold at least n floats (new ones zero; existing ones are left as they are).
void grow(std::vector<float>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
}

// resize_window reading an 8-bit HWC image: the same taps, values and summation order as
// resize_window(to_float(img), ...) (each output sums wx[k] * pixel over its taps in k order),
// without the float copy of the whole image. The horizontal pass runs on blocks of kRows rows,
// transposed (column-major) so that one output column of all the block's rows is one vector
// operation per tap instead of a scalar loop per pixel. The window is in picture coordinates
// and lies inside img's stored pixels (check_stored).
Image resize_window_u8(const ImageU8& img, int64_t top, int64_t left, int64_t h, int64_t w, int64_t out_h, int64_t out_w) {
  if (out_h == h && out_w == w) return to_float(img, top, left, h, w);
  check_stored(img, top, left, h, w, "RandomResizedCrop");
  constexpr int64_t kRows = 16;
  const Taps tx = bilinear_taps(w, out_w), ty = bilinear_taps(h, out_h);
  static_assert(kRows == 16, "pixel_columns_16 fills blocks of 16 rows");
  // scratch kept per loader thread (every value is written before it is read): a training image
  // then costs no allocation, zero fill or page faults for these
  thread_local std::vector<float> mid, in, acc;
  // mid[(c * h + y) * out_w + x]: the horizontal pass's output; in[(c * w + x) * kRows + r]: pixel
  // (y0 + r, x) of channel c; acc likewise per output column
  grow(mid, 3 * h * out_w);
  grow(in, 3 * w * kRows);
  grow(acc, 3 * out_w * kRows);
  for (int64_t y0 = 0; y0 < h; y0 += kRows) {
    const int64_t rows = std::min(kRows, h - y0);  // a last, partial block computes repeated rows too, unused
    // the block's rows (a partial block repeats its last row) as columns: each (channel, column)
    // gets its kRows floats in one contiguous run
    const uint8_t* rowp[kRows];
    for (int64_t r = 0; r < kRows; ++r)
      rowp[r] = img.hwc.data() + ((top - img.top + y0 + std::min(r, rows - 1)) * img.width + left - img.left) * 3;
    pixel_columns_16(rowp, w, in.data());
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t x = 0; x < out_w; ++x) {
        const float* wx = tx.w.data() + tx.first[static_cast<size_t>(x)];
        const int64_t start = tx.start[static_cast<size_t>(x)], n = tx.count[static_cast<size_t>(x)];
        float o[kRows] = {};  // a local sum the compiler keeps in a register, stored once
        for (int64_t k = 0; k < n; ++k) {
          const float wk = wx[k];
          const float* src = in.data() + (c * w + start + k) * kRows;
#pragma omp simd
          for (int64_t r = 0; r < kRows; ++r) o[r] += wk * src[r];
        }
        std::copy(o, o + kRows, acc.data() + (c * out_w + x) * kRows);
      }
    for (int64_t c = 0; c < 3; ++c) rows_of_columns_16(acc.data() + c * out_w * kRows, out_w, rows, mid.data() + (c * h + y0) * out_w, out_w);
  }
  return resize_vertical(mid.data(), 3, h, out_w, ty, out_h);
}

}  // namespace

Image resize_bilinear(const Image& img, int64_t out_h, int64_t out_w) {
  PFQ_CHECK(out_h > 0 && out_w > 0, "resize: output size must be positive, got ", out_h, "x", out_w);
  PFQ_CHECK(img.height > 0 && img.width > 0, "resize: empty input image ", img.dims_str());
  return resize_window(img, 0, 0, img.height, img.width, out_h, out_w);
}

static int64_t round_half_even(double v) { return static_cast<int64_t>(std::nearbyint(v)); }

CropBox random_resized_crop_box(int64_t h, int64_t w, Generator& gen, std::array<double, 2> scale,
                                std::array<double, 2> ratio) {
  const double area = static_cast<double>(h) * static_cast<double>(w);
  const double log_lo = std::log(ratio[0]), log_hi = std::log(ratio[1]);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * gen.uniform(scale[0], scale[1]);
    const double aspect = std::exp(gen.uniform(log_lo, log_hi));
    const int64_t cw = round_half_even(std::sqrt(target * aspect));
    const int64_t ch = round_half_even(std::sqrt(target / aspect));
    if (cw > 0 && cw <= w && ch > 0 && ch <= h) {
      const int64_t top = gen.randint(h - ch + 1);
      const int64_t left = gen.randint(w - cw + 1);
      return {top, left, ch, cw};
    }
  }
  const double in_ratio = static_cast<double>(w) / static_cast<double>(h);
  int64_t cw = w, ch = h;
  if (in_ratio < ratio[0]) {
    ch = round_half_even(static_cast<double>(w) / ratio[0]);
  } else if (in_ratio > ratio[1]) {
    cw = round_half_even(static_cast<double>(h) * ratio[1]);
  }
  return {(h - ch) / 2, (w - cw) / 2, ch, cw};
}

Image to_float(const ImageU8& img, int64_t top, int64_t left, int64_t h, int64_t w) {
  check_stored(img, top, left, h, w, "to_float");
  const float* unit = u8_to_unit();
  Image out(3, h, w);
  for (int64_t y = 0; y < h; ++y) {
    const uint8_t* row = img.hwc.data() + ((top - img.top + y) * img.width + left - img.left) * 3;
    for (int64_t c = 0; c < 3; ++c) {
      float* d = &out.at(c, y, 0);
      for (int64_t x = 0; x < w; ++x) d[x] = unit[row[3 * x + c]];
    }
  }
  return out;
}

Image to_float(const ImageU8& img) { return to_float(img, 0, 0, img.picture_height(), img.picture_width()); }

// ---- transforms ----

Image Transform::apply_u8(ImageU8 img, Generator& gen) const { return apply(to_float(img), gen); }

double Transform::source_scale(int64_t, int64_t, const Generator&) const { return 1.0; }

CropBox Transform::source_window(int64_t h, int64_t w, const Generator&) const { return {0, 0, h, w}; }

CropBox Compose::source_window(int64_t h, int64_t w, const Generator& gen) const {
  return steps_.empty() ? CropBox{0, 0, h, w} : steps_.front()->source_window(h, w, gen);
}

double Compose::source_scale(int64_t h, int64_t w, const Generator& gen) const {
  return steps_.empty() ? 1.0 : steps_.front()->source_scale(h, w, gen);
}

Image Compose::apply(Image img, Generator& gen) const {
  for (const auto& s : steps_) img = s->apply(std::move(img), gen);
  return img;
}

Image Compose::apply_u8(ImageU8 img, Generator& gen) const {
  if (steps_.empty()) return to_float(img);
  Image out = steps_.front()->apply_u8(std::move(img), gen);
  for (size_t i = 1; i < steps_.size(); ++i) out = steps_[i]->apply(std::move(out), gen);
  return out;
}

Dims Compose::output_dims(Dims in) const {
  for (const auto& s : steps_) in = s->output_dims(in);
  return in;
}

std::string Compose::describe() const {
  std::string out = "Compose(";
  for (size_t i = 0; i < steps_.size(); ++i) out += (i ? ", " : "") + steps_[i]->describe();
  return out + ")";
}

static std::string join(const std::vector<float>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ',';
    s += detail::cat(v[i]);
  }
  return s;
}

Normalize::Normalize(std::vector<float> mean, std::vector<float> std) : mean_(std::move(mean)), std_(std::move(std)) {
  PFQ_CHECK(!mean_.empty() && mean_.size() == std_.size(), "Normalize: mean (", mean_.size(), " values) and std (",
            std_.size(), " values) must be non-empty and of equal length");
  for (float s : std_) PFQ_CHECK(s > 0, "Normalize: std values must be positive, got ", join(std_));
}

Image Normalize::apply(Image img, Generator&) const {
  const bool broadcast = mean_.size() == 1;
  PFQ_CHECK(broadcast || static_cast<int64_t>(mean_.size()) == img.channels, "Normalize: ", mean_.size(),
            " mean/std values for an image with ", img.channels, " channels (", img.dims_str(), ")");
  const int64_t hw = img.height * img.width;
  for (int64_t c = 0; c < img.channels; ++c) {
    const float m = mean_[broadcast ? 0 : static_cast<size_t>(c)], s = std_[broadcast ? 0 : static_cast<size_t>(c)];
    float* p = img.data.data() + c * hw;
    for (int64_t i = 0; i < hw; ++i) p[i] = (p[i] - m) / s;
  }
  return img;
}

std::string Normalize::describe() const { return "Normalize(mean=" + join(mean_) + " std=" + join(std_) + ")"; }

RandomCrop::RandomCrop(int64_t size, int64_t padding) : size_(size), padding_(padding) {
  PFQ_CHECK(size > 0 && padding >= 0, "RandomCrop: need size > 0 and padding >= 0, got size ", size, " padding ",
            padding);
}

Image RandomCrop::apply(Image img, Generator& gen) const {
  const int64_t ph = img.height + 2 * padding_, pw = img.width + 2 * padding_;
  PFQ_CHECK(ph >= size_ && pw >= size_, "RandomCrop: crop ", size_, "x", size_, " larger than the padded image ", ph,
            "x", pw);
  // torchvision draws nothing when the padded image already has the crop size.
  const int64_t top = ph == size_ && pw == size_ ? 0 : gen.randint(ph - size_ + 1);
  const int64_t left = ph == size_ && pw == size_ ? 0 : gen.randint(pw - size_ + 1);
  return crop(img, top - padding_, left - padding_, size_, size_);
}

std::string RandomCrop::describe() const { return detail::cat("RandomCrop(", size_, ", padding=", padding_, ")"); }

Image RandomHorizontalFlip::apply(Image img, Generator& gen) const {
  if (gen.uniform() < p_) reverse_rows(img);  // img is this call's own: flipped in place
  return img;
}

std::string RandomHorizontalFlip::describe() const { return detail::cat("RandomHorizontalFlip(p=", p_, ")"); }

RandomResizedCrop::RandomResizedCrop(int64_t size, std::array<double, 2> scale, std::array<double, 2> ratio)
    : size_(size), scale_(scale), ratio_(ratio) {
  PFQ_CHECK(size > 0, "RandomResizedCrop: size must be positive, got ", size);
  PFQ_CHECK(0 < scale[0] && scale[0] <= scale[1] && 0 < ratio[0] && ratio[0] <= ratio[1],
            "RandomResizedCrop: need 0 < scale[0] <= scale[1] and 0 < ratio[0] <= ratio[1], got scale (", scale[0],
            ", ", scale[1], ") ratio (", ratio[0], ", ", ratio[1], ")");
}

Image RandomResizedCrop::apply(Image img, Generator& gen) const {
  const CropBox b = random_resized_crop_box(img.height, img.width, gen, scale_, ratio_);
  // the box lies inside the image: resize that window in place of a crop's copy
  return resize_window(img, b.top, b.left, b.height, b.width, size_, size_);
}

double RandomResizedCrop::source_scale(int64_t h, int64_t w, const Generator& gen) const {
  Generator g = gen;
  const CropBox b = random_resized_crop_box(h, w, g, scale_, ratio_);
  const double need = static_cast<double>(size_) / static_cast<double>(std::min(b.height, b.width));
  return std::min(1.0, need);
}

CropBox RandomResizedCrop::source_window(int64_t h, int64_t w, const Generator& gen) const {
  Generator g = gen;
  return random_resized_crop_box(h, w, g, scale_, ratio_);
}

Image RandomResizedCrop::apply_u8(ImageU8 img, Generator& gen) const {
  const CropBox b = random_resized_crop_box(img.picture_height(), img.picture_width(), gen, scale_, ratio_);
  return resize_window_u8(img, b.top, b.left, b.height, b.width, size_, size_);
}

std::string RandomResizedCrop::describe() const {
  return detail::cat("RandomResizedCrop(", size_, ", scale=(", scale_[0], ", ", scale_[1], "), ratio=(", ratio_[0],
                     ", ", ratio_[1], "))");
}

Resize::Resize(int64_t size) : size_(size) { PFQ_CHECK(size > 0, "Resize: size must be positive, got ", size); }

Dims Resize::output_dims(Dims in) const {
  if (in[1] <= 0 || in[2] <= 0) return {in[0], 0, 0};
  const int64_t h = in[1], w = in[2];
  if (w <= h) return {in[0], size_ * h / w, size_};
  return {in[0], size_, size_ * w / h};
}

Image Resize::apply(Image img, Generator&) const {
  const Dims d = output_dims({img.channels, img.height, img.width});
  return resize_bilinear(img, d[1], d[2]);
}

std::string Resize::describe() const { return detail::cat("Resize(", size_, ")"); }

CenterCrop::CenterCrop(int64_t size) : size_(size) {
  PFQ_CHECK(size > 0, "CenterCrop: size must be positive, got ", size);
}

Image CenterCrop::apply(Image img, Generator&) const {
  auto offset = [&](int64_t have) {
    return have < size_ ? -((size_ - have) / 2) : round_half_even(static_cast<double>(have - size_) / 2.0);
  };
  return crop(img, offset(img.height), offset(img.width), size_, size_);
}

std::string CenterCrop::describe() const { return detail::cat("CenterCrop(", size_, ")"); }

}  // namespace pfq::data
