/// \file
/// subset.h — a view of the first N samples of another dataset (smoke tests, --limit-*).
#pragma once
#include <memory>

#include "data/dataset.h"

namespace pfq::data {

/// The first n samples of another dataset (--limit-train, --limit-test).
class SubsetDataset : public Dataset {
 public:
  /// The first `n` samples of `base` (n <= base->size()).
  SubsetDataset(std::shared_ptr<const Dataset> base, int64_t n);
  int64_t size() const override { return n_; }
  Sample get(int64_t index) const override;
  Sample get_transformed(int64_t index, const Transform* transform, Generator& gen) const override;
  int64_t num_classes() const override { return base_->num_classes(); }
  int64_t channels() const override { return base_->channels(); }
  int64_t height() const override { return base_->height(); }
  int64_t width() const override { return base_->width(); }
  std::string description() const override;
  std::vector<std::string> skipped_files() const override;  // the base dataset's

 private:
  std::shared_ptr<const Dataset> base_;
  int64_t n_;
};

}  // namespace pfq::data
