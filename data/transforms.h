/// \file
/// transforms.h — image transforms on float CHW images (data/dataset.h's Image), torchvision
/// semantics: Normalize, RandomCrop (zero padding), RandomHorizontalFlip, RandomResizedCrop,
/// Resize (shorter side), CenterCrop, Compose. Randomness comes only from the Generator passed
/// to apply(). Left out: colour jitter, rotation, and PIL's uint8 rounding between steps.
#pragma once
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "core/random.h"
#include "data/dataset.h"

namespace pfq::data {

using Dims = std::array<int64_t, 3>;  ///< {C, H, W}; 0 means "varies per image"

/// A per-sample image transform; random ones draw from the generator they are given.
class Transform {
 public:
  virtual ~Transform() = default;
  /// The transformed image; random choices come from `gen`.
  virtual Image apply(Image img, Generator& gen) const = 0;
  /// Output dims for input dims `in` (0 where they vary per image).
  virtual Dims output_dims(Dims in) const { return in; }
  /// e.g. "RandomCrop(32, padding=4)".
  virtual std::string describe() const = 0;
  /// The smallest factor 0 < f <= 1 by which an h x w source may be shrunk before apply() without
  /// the output losing resolution (the JPEG decoder then decodes at a DCT scale >= f, as PIL's
  /// draft mode); `gen` is apply()'s generator, read through a copy so that apply() makes the same
  /// draws. 1 (the default): apply() needs the image at full size.
  virtual double source_scale(int64_t h, int64_t w, const Generator& gen) const;
  /// apply() to an 8-bit image as decoded (image folders): the default converts it to float
  /// (to_float) first; RandomResizedCrop reads the bytes of its window only. Same result either way.
  virtual Image apply_u8(ImageU8 img, Generator& gen) const;
  /// The window of an h x w picture (as decoded, after source_scale's shrinking) that apply_u8
  /// reads, so that the decoder may decode only it (image_decode.h); `gen` is read through a copy
  /// as in source_scale. The default, the whole picture: apply_u8 needs every pixel.
  virtual CropBox source_window(int64_t h, int64_t w, const Generator& gen) const;
};
/// A shared, immutable transform.
using TransformPtr = std::shared_ptr<const Transform>;

// ---- deterministic building blocks ----
/// An 8-bit picture's window [top, top+h) x [left, left+w) (inside its stored pixels: picture
/// coordinates, ImageU8's top / left) as float CHW, values v / 255.
Image to_float(const ImageU8& img, int64_t top, int64_t left, int64_t h, int64_t w);
/// The whole 8-bit picture as float CHW, values v / 255 (it must hold the whole picture).
Image to_float(const ImageU8& img);
/// Window [top, top+h) x [left, left+w) of img; pixels outside img are 0 (zero padding).
Image crop(const Image& img, int64_t top, int64_t left, int64_t h, int64_t w);
/// Mirror image (left-right).
Image hflip(const Image& img);
/// Bilinear resize with half-pixel centres; when shrinking, the filter widens to cover the
/// source footprint (antialiasing as PIL and torchvision's antialias=True do).
Image resize_bilinear(const Image& img, int64_t out_h, int64_t out_w);

/// torchvision RandomResizedCrop.get_params: up to 10 tries of area fraction ~ U(scale) and
/// log-aspect ~ U(log ratio); then the central crop clamped to the ratio range.
CropBox random_resized_crop_box(int64_t h, int64_t w, Generator& gen, std::array<double, 2> scale,
                                std::array<double, 2> ratio);

// ---- transforms ----
/// Applies transforms in order.
class Compose : public Transform {
 public:
  /// The transforms to apply, first to last.
  explicit Compose(std::vector<TransformPtr> steps) : steps_(std::move(steps)) {}
  Image apply(Image img, Generator& gen) const override;
  Dims output_dims(Dims in) const override;
  std::string describe() const override;
  double source_scale(int64_t h, int64_t w, const Generator& gen) const override;  ///< the first step's
  Image apply_u8(ImageU8 img, Generator& gen) const override;  ///< the first step's apply_u8, then apply()
  CropBox source_window(int64_t h, int64_t w, const Generator& gen) const override;  ///< the first step's
  /// The transforms, first to last.
  const std::vector<TransformPtr>& steps() const { return steps_; }

 private:
  std::vector<TransformPtr> steps_;
};

/// (x - mean[c]) / std[c]; mean/std have one entry per channel, or one entry for all channels.
class Normalize : public Transform {
 public:
  /// Per-channel mean and standard deviation (one entry each, or one for all channels).
  Normalize(std::vector<float> mean, std::vector<float> std);
  Image apply(Image img, Generator& gen) const override;
  std::string describe() const override;

 private:
  std::vector<float> mean_, std_;
};

/// Zero-pads by `padding` on every side, then takes a uniformly placed size x size window.
class RandomCrop : public Transform {
 public:
  /// Output `size` x `size` after padding by `padding`.
  RandomCrop(int64_t size, int64_t padding);
  Image apply(Image img, Generator& gen) const override;
  Dims output_dims(Dims in) const override { return {in[0], size_, size_}; }
  std::string describe() const override;

 private:
  int64_t size_, padding_;
};

/// Mirrors the image left-right with probability p.
class RandomHorizontalFlip : public Transform {
 public:
  /// Flips with probability `p`.
  explicit RandomHorizontalFlip(double p = 0.5) : p_(p) {}
  Image apply(Image img, Generator& gen) const override;
  std::string describe() const override;

 private:
  double p_;
};

/// torchvision's RandomResizedCrop: a random area and aspect ratio, resized to size x size.
class RandomResizedCrop : public Transform {
 public:
  /// Crops of area fraction in `scale` and aspect ratio in `ratio`, resized to `size`.
  explicit RandomResizedCrop(int64_t size, std::array<double, 2> scale = {0.08, 1.0},
                             std::array<double, 2> ratio = {3.0 / 4.0, 4.0 / 3.0});
  Image apply(Image img, Generator& gen) const override;
  Dims output_dims(Dims in) const override { return {in[0], size_, size_}; }
  std::string describe() const override;
  /// The box apply() will draw, shrunk until its shorter side is `size` (never enlarged). The box
  /// apply() then draws on the shrunk image is the same one scaled, up to rounding.
  double source_scale(int64_t h, int64_t w, const Generator& gen) const override;
  /// Crops the 8-bit window first and converts only it to float; `img` may hold only that window
  /// (source_window) of the picture.
  Image apply_u8(ImageU8 img, Generator& gen) const override;
  /// The box apply_u8 will draw on an h x w picture.
  CropBox source_window(int64_t h, int64_t w, const Generator& gen) const override;

 private:
  int64_t size_;
  std::array<double, 2> scale_, ratio_;
};

/// Scales so the shorter side becomes `size` (the longer side is truncated, as torchvision does).
/// It needs its source at full size (source_scale 1): torchvision's evaluation protocol decodes in
/// full and resizes with PIL's antialiased bilinear filter, and a DCT-downscaled decode differs
/// from that by more than 1/255 (docs/pretrained.md, tests/data/test_eval_protocol.cpp).
class Resize : public Transform {
 public:
  /// Shorter side to `size`.
  explicit Resize(int64_t size);
  Image apply(Image img, Generator& gen) const override;
  Dims output_dims(Dims in) const override;
  std::string describe() const override;

 private:
  int64_t size_;
};

/// Central size x size window (offsets rounded half-to-even like Python's round); zero-padded
/// when the image is smaller.
class CenterCrop : public Transform {
 public:
  /// A `size` x `size` centre window.
  explicit CenterCrop(int64_t size);
  Image apply(Image img, Generator& gen) const override;
  Dims output_dims(Dims in) const override { return {in[0], size_, size_}; }
  std::string describe() const override;

 private:
  int64_t size_;
};

}  // namespace pfq::data
