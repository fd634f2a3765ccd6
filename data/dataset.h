/// \file
/// dataset.h — the Dataset interface of pfq::data: (image, label) by index, images as float CHW.
/// Also InMemoryDataset, which holds decoded uint8 or float images in RAM; the IDX and CIFAR
/// readers (idx.h, cifar.h) return one. Lazy on-disk datasets (image_folder.h) derive from
/// Dataset directly. Batching, shuffling and augmentation live in loader.h / transforms.h.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace pfq {
class Generator;
}

namespace pfq::data {

class Transform;

/// A float image in CHW layout: data[(c * height + y) * width + x].
struct Image {
  /// Dimensions of the image.
  ///@{
  int64_t channels = 0, height = 0, width = 0;
  ///@}
  /// Pixels, channels * height * width floats.
  std::vector<float> data;

  Image() = default;
  /// An image of the given size filled with `fill`.
  Image(int64_t c, int64_t h, int64_t w, float fill = 0.0f);
  /// The pixel at channel c, row y, column x.
  float& at(int64_t c, int64_t y, int64_t x) { return data[static_cast<size_t>((c * height + y) * width + x)]; }
  /// The pixel at channel c, row y, column x.
  float at(int64_t c, int64_t y, int64_t x) const { return data[static_cast<size_t>((c * height + y) * width + x)]; }
  std::string dims_str() const;  ///< "3x32x32"
};

/// A crop window: top-left corner and size.
struct CropBox {
  /// Top-left corner and size, in pixels.
  ///@{
  int64_t top, left, height, width;
  ///@}
};

/// An 8-bit RGB image as decoders write it: hwc[(y * width + x) * 3 + c] (image folders hand it
/// to Transform::apply_u8, which converts only what it keeps).
struct ImageU8 {
  /// Dimensions of the stored pixels (the whole picture unless a decoder stored only a window).
  ///@{
  int64_t height = 0, width = 0;
  ///@}
  std::vector<uint8_t> hwc;  ///< height * width * 3 bytes
  /// Where the stored pixels lie in the decoded picture when a decoder was asked for a crop window
  /// only (image_decode.h): their top-left corner and the picture's full size. The default, 0 for
  /// all four, is a whole picture (full size = height x width).
  ///@{
  int64_t top = 0, left = 0, full_height = 0, full_width = 0;
  ///@}
  /// The decoded picture's height (what transforms draw their crops from).
  int64_t picture_height() const { return full_height > 0 ? full_height : height; }
  /// The decoded picture's width.
  int64_t picture_width() const { return full_width > 0 ? full_width : width; }
  /// Whether hwc holds the whole picture.
  bool whole() const { return top == 0 && left == 0 && picture_height() == height && picture_width() == width; }
};

/// One labelled example of a dataset.
struct Sample {
  Image image;    ///< float CHW; values in [0, 1] for uint8 sources (pixel / 255)
  int64_t label;  ///< in [0, num_classes)
};

/// Thread-safety contract: get() may be called concurrently from the loader's worker threads.
class Dataset {
 public:
  virtual ~Dataset() = default;
  /// Number of samples.
  virtual int64_t size() const = 0;
  virtual Sample get(int64_t index) const = 0;  ///< requires 0 <= index < size()
  /// get(index) with `transform` (may be null) applied, drawing from `gen`: what the loader calls.
  /// Datasets that decode files override it to decode at the reduced scale the transform allows
  /// (Transform::source_scale); the default decodes in full.
  virtual Sample get_transformed(int64_t index, const Transform* transform, Generator& gen) const;
  /// Number of classes; labels are in [0, num_classes).
  virtual int64_t num_classes() const = 0;
  /// Shape of get()'s image; height/width are 0 when images differ in size (image folders).
  virtual int64_t channels() const = 0;
  virtual int64_t height() const = 0;  ///< image height; 0 when it varies
  virtual int64_t width() const = 0;   ///< image width; 0 when it varies
  virtual std::string description() const = 0;  ///< e.g. "fashion-mnist test: 10000 images 1x28x28"
  /// Files left out so far because they were not images or could not be decoded (datasets read
  /// with skip_bad set; image_folder.h), in the order met; empty for the others.
  virtual std::vector<std::string> skipped_files() const { return {}; }
};

/// Images stored contiguously as [N, C, H, W], either uint8 (converted to x/255 by get()) or
/// float (returned as is). Labels are checked against num_classes at construction.
class InMemoryDataset : public Dataset {
 public:
  /// From uint8 pixels [n, c, h, w] (get() returns them / 255) and one label per image.
  InMemoryDataset(std::vector<uint8_t> pixels, int64_t n, int64_t c, int64_t h, int64_t w,
                  std::vector<int64_t> labels, int64_t num_classes, std::string description = "in-memory");
  /// From float pixels [n, c, h, w] (returned as is) and one label per image.
  InMemoryDataset(std::vector<float> pixels, int64_t n, int64_t c, int64_t h, int64_t w,
                  std::vector<int64_t> labels, int64_t num_classes, std::string description = "in-memory");

  int64_t size() const override { return n_; }
  Sample get(int64_t index) const override;
  int64_t num_classes() const override { return num_classes_; }
  int64_t channels() const override { return c_; }
  int64_t height() const override { return h_; }
  int64_t width() const override { return w_; }
  std::string description() const override { return description_; }
  int64_t label(int64_t index) const;  ///< without decoding the image

 private:
  void check_shape(size_t pixel_count) const;
  std::vector<uint8_t> u8_;
  std::vector<float> f32_;
  int64_t n_, c_, h_, w_;
  std::vector<int64_t> labels_;
  int64_t num_classes_;
  std::string description_;
};

}  // namespace pfq::data
