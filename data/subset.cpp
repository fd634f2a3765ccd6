// subset.cpp — SubsetDataset.
#include "data/subset.h"

#include "core/error.h"

namespace pfq::data {

SubsetDataset::SubsetDataset(std::shared_ptr<const Dataset> base, int64_t n) : base_(std::move(base)), n_(n) {
  PFQ_CHECK(n > 0 && n <= base_->size(), "subset of ", n, " samples from a dataset of ", base_->size(), " (", base_->description(), ")");
}

Sample SubsetDataset::get(int64_t index) const {
  PFQ_CHECK(index >= 0 && index < n_, "subset: index ", index, " outside [0, ", n_, ")");
  return base_->get(index);
}

Sample SubsetDataset::get_transformed(int64_t index, const Transform* transform, Generator& gen) const {
  PFQ_CHECK(index >= 0 && index < n_, "subset: index ", index, " outside [0, ", n_, ")");
  return base_->get_transformed(index, transform, gen);
}

std::vector<std::string> SubsetDataset::skipped_files() const { return base_->skipped_files(); }

std::string SubsetDataset::description() const {
  return base_->description() + " (first " + std::to_string(n_) + ")";
}

}  // namespace pfq::data
