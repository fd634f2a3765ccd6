// dataset.cpp — Image helpers and InMemoryDataset (see dataset.h).
// Validation here covers shapes and label ranges; file-level checks live in the readers.
#include "data/dataset.h"

#include "core/error.h"
#include "core/random.h"
#include "data/transforms.h"

namespace pfq::data {

Image::Image(int64_t c, int64_t h, int64_t w, float fill) : channels(c), height(h), width(w) {
  PFQ_CHECK(c >= 0 && h >= 0 && w >= 0, "Image: negative dimensions ", c, "x", h, "x", w);
  data.assign(static_cast<size_t>(c * h * w), fill);
}

std::string Image::dims_str() const { return detail::cat(channels, "x", height, "x", width); }

Sample Dataset::get_transformed(int64_t index, const Transform* transform, Generator& gen) const {
  Sample s = get(index);
  if (transform) s.image = transform->apply(std::move(s.image), gen);
  return s;
}

InMemoryDataset::InMemoryDataset(std::vector<uint8_t> pixels, int64_t n, int64_t c, int64_t h, int64_t w,
                                 std::vector<int64_t> labels, int64_t num_classes, std::string description)
    : u8_(std::move(pixels)), n_(n), c_(c), h_(h), w_(w), labels_(std::move(labels)),
      num_classes_(num_classes), description_(std::move(description)) {
  check_shape(u8_.size());
}

InMemoryDataset::InMemoryDataset(std::vector<float> pixels, int64_t n, int64_t c, int64_t h, int64_t w,
                                 std::vector<int64_t> labels, int64_t num_classes, std::string description)
    : f32_(std::move(pixels)), n_(n), c_(c), h_(h), w_(w), labels_(std::move(labels)),
      num_classes_(num_classes), description_(std::move(description)) {
  check_shape(f32_.size());
}

void InMemoryDataset::check_shape(size_t pixel_count) const {
  PFQ_CHECK(n_ >= 0 && c_ > 0 && h_ > 0 && w_ > 0, description_, ": invalid image shape [", n_, ", ", c_, ", ",
            h_, ", ", w_, "]");
  PFQ_CHECK(static_cast<int64_t>(pixel_count) == n_ * c_ * h_ * w_, description_, ": expected ", n_ * c_ * h_ * w_,
            " pixel values for [", n_, ", ", c_, ", ", h_, ", ", w_, "], got ", pixel_count);
  PFQ_CHECK(static_cast<int64_t>(labels_.size()) == n_, description_, ": expected ", n_, " labels, got ",
            labels_.size());
  PFQ_CHECK(num_classes_ > 0, description_, ": num_classes must be positive, got ", num_classes_);
  for (size_t i = 0; i < labels_.size(); ++i)
    PFQ_CHECK(labels_[i] >= 0 && labels_[i] < num_classes_, description_, ": label ", labels_[i], " of sample ", i,
              " outside [0, ", num_classes_, ")");
}

int64_t InMemoryDataset::label(int64_t index) const {
  PFQ_CHECK(index >= 0 && index < n_, description_, ": index ", index, " outside [0, ", n_, ")");
  return labels_[static_cast<size_t>(index)];
}

Sample InMemoryDataset::get(int64_t index) const {
  Sample s{Image(), label(index)};
  const int64_t per = c_ * h_ * w_;
  s.image.channels = c_;
  s.image.height = h_;
  s.image.width = w_;
  s.image.data.resize(static_cast<size_t>(per));
  if (!u8_.empty() || f32_.empty()) {
    const uint8_t* src = u8_.data() + index * per;
    for (int64_t i = 0; i < per; ++i) s.image.data[static_cast<size_t>(i)] = static_cast<float>(src[i]) / 255.0f;
  } else {
    const float* src = f32_.data() + index * per;
    std::copy(src, src + per, s.image.data.begin());
  }
  return s;
}

}  // namespace pfq::data
